/* t/abi/bad_major.c: built for the next ABI major (always one more than the
 * core's). */
#include <gannet/module.h>

GN_EXPORT const struct gn_module gannet_module_v1 = {
	.magic = GN_MODULE_MAGIC,
	.size = sizeof(struct gn_module),
	.abi_major = GN_ABI_MAJOR + 1,
	.abi_minor = 0,
	.name = "bad_major",
	.version = "9.9",
};
