/*
 * t/abi/layout.c: prints the layout of what modules compile into
 * themselves: the structs they fill or read (member offsets and sizes, each
 * struct's size) and the constants of the public headers.  Built twice, as
 * t/abi/layout-1.0 against the frozen ABI 1.0 headers and as
 * t/abi/layout-current against core/include; t/integration/021-abi.t
 * checks that every 1.0 line is unchanged in the current headers.
 * (abidiff only sees types reachable from libgannet's functions, and the
 * descriptor is not: modules hand it over through dlsym().)
 *
 *   member STRUCT.MEMBER OFFSET SIZE
 *   sizeof STRUCT SIZE
 *   const NAME VALUE
 */
#include <stdio.h>
#include <gannet/module.h>
#include <gannet/hook.h>
#include <gannet/conn.h>
#include <gannet/log.h>
#include <gannet/loop.h>

#include <gannet/gannet.h>	/* gn_migration: db.h in 1.0, migrate.h now */

#define MEMBER(s, m) \
	printf("member %s.%s %zu %zu\n", #s, #m, offsetof(struct s, m), sizeof(((struct s *)0)->m))
#define SIZEOF(s) printf("sizeof %s %zu\n", #s, sizeof(struct s))
#define CONST(c) printf("const %s %lld\n", #c, (long long)(c))

int main(void)
{
	MEMBER(gn_module, magic);
	MEMBER(gn_module, size);
	MEMBER(gn_module, abi_major);
	MEMBER(gn_module, abi_minor);
	MEMBER(gn_module, name);
	MEMBER(gn_module, version);
	MEMBER(gn_module, requires);
	MEMBER(gn_module, register_fn);
	MEMBER(gn_module, start_fn);
	MEMBER(gn_module, stop_fn);
	SIZEOF(gn_module);
	MEMBER(gn_module_require, name);
	MEMBER(gn_module_require, flags);
	SIZEOF(gn_module_require);
	MEMBER(gn_hook_reply, code);
	MEMBER(gn_hook_reply, enhanced);
	MEMBER(gn_hook_reply, text);
	MEMBER(gn_hook_reply, module);
	SIZEOF(gn_hook_reply);
	MEMBER(gn_protocol, size);
	MEMBER(gn_protocol, name);
	MEMBER(gn_protocol, flags);
	MEMBER(gn_protocol, max_input);
	MEMBER(gn_protocol, idle_timeout_ms);
	MEMBER(gn_protocol, open);
	MEMBER(gn_protocol, input);
	MEMBER(gn_protocol, input_full);
	MEMBER(gn_protocol, writable);
	MEMBER(gn_protocol, tls_done);
	MEMBER(gn_protocol, timeout);
	MEMBER(gn_protocol, shutdown);
	MEMBER(gn_protocol, close);
	SIZEOF(gn_protocol);
	MEMBER(gn_migration, version);
	MEMBER(gn_migration, name);
	MEMBER(gn_migration, sql);
	SIZEOF(gn_migration);

	CONST(GN_ABI_MAJOR);
	CONST(GN_MODULE_MAGIC);
	CONST(GN_REQUIRE_OPTIONAL);
	CONST(GN_HOOK_CONTINUE);
	CONST(GN_HOOK_ACCEPT);
	CONST(GN_HOOK_REJECT);
	CONST(GN_HOOK_TEMPFAIL);
	CONST(GN_HOOK_DISCONNECT);
	CONST(GN_HOOK_PENDING);
	CONST(GN_HOOK_OPTIONAL_POINT);
	CONST(GN_PROTO_CLIENT_CERT);
	CONST(GN_LOG_ERROR);
	CONST(GN_LOG_WARN);
	CONST(GN_LOG_INFO);
	CONST(GN_LOG_DEBUG);
	CONST(GN_IO_READ);
	CONST(GN_IO_WRITE);
	return 0;
}
