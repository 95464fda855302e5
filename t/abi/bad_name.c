/* t/abi/bad_name.c: a descriptor whose name is not the file's. */
#include <gannet/module.h>

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "other_name",
	.version = "1",
};
