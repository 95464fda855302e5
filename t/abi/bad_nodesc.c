/* t/abi/bad_nodesc.c: a shared object without gannet_module_v1 (the loader
 * must refuse it: "no gannet_module_v1 descriptor"). */
#include <gannet/module.h>

int bad_nodesc_unused(void);

__attribute__((visibility("hidden"))) int bad_nodesc_unused(void)
{
	return 42;
}
