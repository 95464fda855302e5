/* t/abi/bad_minor.c: built for a minor newer than the core's, with the
 * bigger descriptor such a minor would have. */
#include <gannet/module.h>

struct newer_descriptor {
	struct gn_module m;
	void (*newer_fn)(void);
};

GN_EXPORT const struct newer_descriptor gannet_module_v1 = {
	.m = {
		.magic = GN_MODULE_MAGIC,
		.size = sizeof(struct newer_descriptor),
		.abi_major = GN_ABI_MAJOR,
		.abi_minor = GN_ABI_MINOR + 1,
		.name = "bad_minor",
		.version = "1.1",
	},
};
