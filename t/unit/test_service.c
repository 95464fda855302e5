/*
 * t/unit/test_service.c: services (core/runtime/service.c) and the other
 * registries of the register phase (core/runtime/registry.c): runner jobs
 * (core/runtime/runner.c) and CLI commands (core/runtime/cli.c).
 */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>
#include "tap.h"

struct demo_v1 {
	size_t size;
	int (*twice)(int);
};

/* What an older provider (built before `twice` existed) would have. */
struct demo_v1_old {
	size_t size;
};

static int twice(int x)
{
	return 2 * x;
}

static const struct demo_v1 demo_ops = { sizeof(struct demo_v1), twice };
static const struct demo_v1_old old_ops = { sizeof(struct demo_v1_old) };

static char cli_seen[256];

static int cli_fn(int argc, char **argv, void *data)
{
	size_t n = 0;
	n += (size_t)snprintf(cli_seen + n, sizeof(cli_seen) - n, "%s:%d", (const char *)data, argc);
	for (int i = 0; i < argc && n < sizeof(cli_seen); i++)
		n += (size_t)snprintf(cli_seen + n, sizeof(cli_seen) - n, " %s", argv[i]);
	return 3;
}

static int job_runs;

static void job_fn(void *data)
{
	(void)data;
	job_runs++;
}

static bool guard_fired;

static void guard_cb(void *data)
{
	(void)data;
	guard_fired = true;
}

int main(void)
{
	struct gn_module_ctx *core = modules_core_ctx();
	const char *error = NULL;

	/* Services. */
	is_int(gn_service_provide(core, "demo.v1", &demo_ops, &error), 0, "a service is provided");
	const struct demo_v1 *ops = gn_service_lookup("demo.v1");
	ok(ops == &demo_ops, "and found by name");
	ok(GN_OPS_HAS(ops, twice) && ops->twice(21) == 42, "GN_OPS_HAS sees a member the table has");
	is_str(gn_service_provider("demo.v1"), "core", "the provider is named");
	ok(gn_service_lookup("demo.v2") == NULL, "another version is another name: not found");
	ok(gn_service_provider("nothing") == NULL, "no provider for an unknown service");
	ok(gn_service_provide(core, "demo.v1", &demo_ops, &error) < 0, "a name is provided once");
	like(error, "already provided by module core", "the error names the provider");
	is_int(gn_service_provide(core, "old.v1", &old_ops, &error), 0, "an older, smaller table is accepted");
	const struct demo_v1 *old = gn_service_lookup("old.v1");
	ok(!GN_OPS_HAS(old, twice), "GN_OPS_HAS says a member past its size is missing");
	static const size_t zero = 0;
	ok(gn_service_provide(core, "zero.v1", &zero, &error) < 0, "a table must start with its size");
	ok(gn_service_provide(core, "Bad Name", &demo_ops, &error) < 0, "a name has no spaces or capitals");
	ok(gn_service_provide(core, "null.v1", NULL, &error) < 0, "a table is needed");

	/* CLI commands: longest match. */
	is_int(gn_cli_register(core, "config tlspubkey", "list|add", cli_fn, "two", &error), 0,
	       "a two-word command registers");
	is_int(gn_cli_register(core, "config  tlspubkey list", "", cli_fn, "three", &error), 0,
	       "a longer command sharing its words registers");
	is_int(gn_cli_register(core, "queue", "list", cli_fn, "one", &error), 0, "a one-word command registers");
	ok(gn_cli_register(core, "config tlspubkey", "", cli_fn, "dup", &error) < 0, "the same words register once");
	like(error, "already registered", "with an error");
	static const struct gn_cli_command own = {
		sizeof(struct gn_cli_command), "config check", "[FILE]", "Checks.", 0, 1, cli_fn, "own",
	};
	is_int(cli_register_core(&own, CLI_NEEDS_NOTHING, &error), 0, "gannet's own command registers");
	ok(gn_cli_register(core, "config check", "", cli_fn, "x", &error) < 0, "gannet's own commands are taken");
	like(error, "CLI command \"config check\" is already registered by module core", "naming the owner");
	ok(gn_cli_register(core, "", "", cli_fn, "x", &error) < 0, "a command has words");
	ok(gn_cli_register(core, "x --y", "", cli_fn, "x", &error) < 0, "words are not options");

	char *a1[] = { "config", "tlspubkey", "list", "-v" };
	is_int(cli_dispatch(4, a1), 3, "dispatch returns the command's exit code");
	is_str(cli_seen, "three:2 list -v", "the longest matching command runs, argv from its last word");
	char *a2[] = { "config", "tlspubkey", "add", "k" };
	cli_dispatch(4, a2);
	is_str(cli_seen, "two:3 tlspubkey add k", "a shorter command gets the rest");
	char *a3[] = { "queue" };
	cli_dispatch(1, a3);
	is_str(cli_seen, "one:1 queue", "a one-word command without arguments");
	char *a4[] = { "config", "nothing" };
	is_int(cli_dispatch(2, a4), -1, "no matching command: -1");
	char *a5[] = { "config" };
	is_int(cli_dispatch(1, a5), -1, "a prefix of a command is not a command");

	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	cli_print_usage(mem);
	fclose(mem);
	like(buf, "gannet config tlspubkey list|add", "usage lists commands with their arguments");
	like(buf, "gannet queue list", "usage lists every command");
	ok(strstr(buf, "gannet config tlspubkey list|add") < strstr(buf, "gannet queue"),
	   "usage is sorted by command");
	ok(strstr(buf, "config check") == NULL, "usage leaves out gannet's own commands");
	free(buf);

	/* Declared arguments and help, checked before the command runs. */
	static const struct gn_cli_command greet = {
		sizeof(struct gn_cli_command), "greet", "NAME [GREETING]",
		"Greets NAME.\nTwice if asked.", 1, 2, cli_fn, "greet",
	};
	is_int(gn_cli_command_register(core, &greet, &error), 0, "a command with arguments and help registers");
	static const struct gn_cli_command bad_range = {
		sizeof(struct gn_cli_command), "bad range", "", NULL, 2, 1, cli_fn, NULL,
	};
	ok(gn_cli_command_register(core, &bad_range, &error) < 0, "min_args above max_args is refused");
	like(error, "min_args 2 and max_args 1 do not make a range", "saying why");
	struct gn_cli_command small = greet;
	small.size = sizeof(size_t);
	small.words = "small";
	ok(gn_cli_command_register(core, &small, &error) < 0, "a struct smaller than ABI 1.0's is refused");
	like(error, "struct gn_cli_command of 8 bytes", "naming its size");
	ok(gn_cli_command_register(core, NULL, &error) < 0, "no command: refused");

	char *g0[] = { "greet", NULL };
	char *g1[] = { "greet", "ann", NULL };
	char *g3[] = { "greet", "ann", "hi", "again", NULL };
	const struct cli_cmd *gc = cli_lookup(2, g1);
	ok(gc != NULL && strcmp(cli_cmd_words(gc), "greet") == 0, "lookup finds the command");
	is_int(cli_usage_check(gc, 2, g1), 0, "one argument is within 1..2");
	is_int(cli_usage_check(gc, 1, g0), 2, "none is too few: exit code 2");
	is_int(cli_usage_check(gc, 4, g3), 2, "three are too many");
	ok(cli_cmd_needs(gc) == CLI_NEEDS_MODULES, "a command registered without a declared need needs the modules");
	cli_set_core_needs(CLI_NEEDS_DATABASE);
	is_int(gn_cli_register(core, "domains", "", cli_fn, "d", &error), 0, "an area's command registers");
	cli_set_core_needs(CLI_NEEDS_MODULES);
	char *d1[] = { "domains", NULL };
	ok(cli_cmd_needs(cli_lookup(1, d1)) == CLI_NEEDS_DATABASE, "it needs what its area declared");
	char *h1[] = { "greet", "x", "--help", NULL };
	char *h2[] = { "greet", "-h", NULL };
	char *h3[] = { "greet", "--", "--help", NULL };
	ok(cli_wants_help(3, h1) && cli_wants_help(2, h2), "--help and -h ask for help");
	ok(!cli_wants_help(3, h3), "not after --");
	mem = open_memstream(&buf, &len);
	cli_cmd_print_help(gc, mem);
	fclose(mem);
	is_str(buf, "usage: gannet greet NAME [GREETING]\n\nGreets NAME.\nTwice if asked.\n",
	       "--help prints the usage line and the help");
	free(buf);
	mem = open_memstream(&buf, &len);
	char *cfg[] = { "config", NULL };
	is_int((long long)cli_print_commands(mem, 1, cfg, true), 3, "three commands start with config");
	fclose(mem);
	like(buf, "  gannet config check [FILE]\n", "with gannet's own when asked");
	free(buf);

	/* Runner jobs. */
	ok(gn_runner_job_register(core, "tick", 0, job_fn, NULL, &error) < 0, "a job needs an interval");
	is_int(gn_runner_job_register(core, "tick", 10, job_fn, NULL, &error), 0, "a job registers");
	ok(gn_runner_job_register(core, "tick", 10, job_fn, NULL, &error) < 0, "a job name is registered once per module");
	like(error, "runner job \"tick\" of module core is already registered", "the error names the job and its module");
	ok(gn_runner_job_register(core, "", 10, job_fn, NULL, &error) < 0, "a job needs a name");
	like(error, "gn_runner_job_register: invalid runner job name \"\"", "the error names the function");
	loop_init();
	runner_jobs_start();
	struct gn_timer *guard = gn_timer_new(5000, false, guard_cb, NULL);
	while (job_runs < 3 && !guard_fired)
		ev_run(core_loop, EVRUN_ONCE);
	ok(job_runs >= 3, "a started job runs repeatedly");
	runner_jobs_stop();
	int runs = job_runs;
	gn_timer_free(&guard);
	guard = gn_timer_new(50, false, guard_cb, NULL);
	guard_fired = false;
	while (!guard_fired)
		ev_run(core_loop, EVRUN_ONCE);
	gn_timer_free(&guard);
	is_int(job_runs, runs, "a stopped job runs no more");

	/* After the register phase everything is refused. */
	modules_register();
	ok(gn_service_provide(core, "late.v1", &demo_ops, &error) < 0, "gn_service_provide after register fails");
	like(error, "gn_service_provide called after the register phase", "saying why");
	ok(gn_cli_register(core, "late", "", cli_fn, "x", &error) < 0, "gn_cli_register after register fails");
	ok(gn_runner_job_register(core, "late", 10, job_fn, NULL, &error) < 0,
	   "gn_runner_job_register after register fails");
	ok(gn_service_lookup("demo.v1") == &demo_ops, "lookups still work");

	services_free();
	ok(gn_service_lookup("demo.v1") == NULL, "services_free forgets the services");
	return done_testing();
}
