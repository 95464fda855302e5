/* The gannet binary: everything lives in libgannet. */
#include <gannet/gannet.h>

int main(int argc, char **argv)
{
	return gn_main(argc, argv);
}
