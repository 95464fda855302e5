/*
 * t/modules/clitest/clitest.c: a module with commands, for the command line
 * tests (t/integration/025-cli.t).
 *
 *   gannet clitest greet NAME [GREETING]   declared: 1 or 2 arguments, help
 *   gannet clitest plain [ANYTHING...]     gn_cli_register(): no declaration
 *
 * Both print what they were given and what the module saw ("started=1
 * kind=cli").  The register phase logs event=clitest_register with the
 * effective uid it ran as, the start phase event=clitest_start (both info:
 * visible with gannet -v), so a test can tell whether, and as whom, module
 * code ran.
 */
#include <stdio.h>
#include <unistd.h>
#include <gannet/gannet.h>

static int started;

static int cmd_greet(int argc, char **argv, void *data)
{
	(void)data;
	printf("%s %s started=%d kind=%s\n", argc > 2 ? argv[2] : "hello", argv[1], started,
	       gn_module_process_kind());
	return 0;
}

static int cmd_plain(int argc, char **argv, void *data)
{
	(void)data;
	printf("plain args=%d started=%d\n", argc - 1, started);
	(void)argv;
	return 0;
}

static int clitest_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command greet = {
		.size = sizeof(struct gn_cli_command),
		.words = "clitest greet",
		.usage = "NAME [GREETING]",
		.help = "Greets NAME (with GREETING, default hello) and says whether the\n"
			"module was started.",
		.min_args = 1,
		.max_args = 2,
		.fn = cmd_greet,
	};
	gn_log(GN_LOG_INFO, "clitest", "event=clitest_register euid=%u", (unsigned)geteuid());
	if (gn_cli_command_register(ctx, &greet, error_r) < 0 ||
	    gn_cli_register(ctx, "clitest plain", "[ANYTHING...]", cmd_plain, NULL, error_r) < 0)
		return -1;
	return 0;
}

static int clitest_start(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx, (void)error_r;
	started = 1;
	gn_log(GN_LOG_INFO, "clitest", "event=clitest_start process=%s", gn_module_process_kind());
	return 0;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "clitest",
	.version = "1",
	.register_fn = clitest_register,
	.start_fn = clitest_start,
};
