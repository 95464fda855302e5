/* t/abi/bad_magic.c: a descriptor with the wrong magic number. */
#include <gannet/module.h>

GN_EXPORT const struct gn_module gannet_module_v1 = {
	.magic = 0x12345678u,
	.size = sizeof(struct gn_module),
	.abi_major = GN_ABI_MAJOR,
	.abi_minor = GN_ABI_MINOR,
	.name = "bad_magic",
	.version = "1",
};
