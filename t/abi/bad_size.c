/* t/abi/bad_size.c: a descriptor smaller than the ABI 1.0 one (only the
 * header fields): the loader must refuse it before reading past its end. */
#include <stdint.h>
#include <gannet/module.h>

struct small_descriptor {
	uint32_t magic;
	uint32_t size;
	uint16_t abi_major;
	uint16_t abi_minor;
};

GN_EXPORT const struct small_descriptor gannet_module_v1 = {
	.magic = GN_MODULE_MAGIC,
	.size = sizeof(struct small_descriptor),
	.abi_major = GN_ABI_MAJOR,
	.abi_minor = GN_ABI_MINOR,
};
