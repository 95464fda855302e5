/* core/main.c: gn_main (placeholder until the subcommands land). */
#include "core.h"

const char *gn_version(void)
{
	return PACKAGE_VERSION;
}

int gn_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 2;
}
