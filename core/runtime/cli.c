/*
 * core/runtime/cli.c: the registry of gannet's commands (gannet/cli.h).
 *
 * One registry holds every command: gannet's own (serve, migrate, help...,
 * registered by core/main.c before anything else), the core areas' (config
 * domain add, import mbox..., registered before the modules) and the
 * modules'.  Each says what it needs before it can run (enum cli_needs):
 * nothing, the database, or the modules started; core/main.c prepares
 * that much and no more, so a command that only talks to the database
 * starts without loading a module.
 *
 * Commands are word sequences ("config tlspubkey list"); cli_lookup()
 * picks the longest registered sequence that prefixes the command line, so
 * "config tlspubkey list" and "config tlspubkey" can both exist.  Before a
 * command runs, the registry answers --help and checks the number of
 * arguments (cli_usage_check()), so usage errors never wait for a database
 * or a module.
 */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>

#define CLI_MAX_WORDS 8

struct cli_cmd {
	const char *words;	/* the registry entry's name: single spaces */
	char *argv[CLI_MAX_WORDS];
	int n_words;
	char *usage;		/* "" when none */
	char *help;		/* NULL when none */
	int min_args, max_args;	/* max -1: unbounded */
	enum cli_needs needs;
	gn_cli_fn *fn;
	void *data;
};

/* Names are the words joined by single spaces.  item: struct cli_cmd. */
static struct registry cmds = {
	.kind = "CLI command", .verb = "registered",
};

/* What the commands that core areas register through gn_cli_register()
 * need (cli_set_core_needs()). */
static enum cli_needs core_needs = CLI_NEEDS_MODULES;

void cli_set_core_needs(enum cli_needs needs)
{
	core_needs = needs;
}

/* Splits words at spaces into cmd->argv and cmd->n_words; returns the
 * count or -1 (what was split stays for cmd_free()). */
static int split_words(struct cli_cmd *cmd, const char *words)
{
	int n = 0;
	const char *p = words;
	cmd->n_words = 0;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e != '\0' && *e != ' ')
			e++;
		if (n == CLI_MAX_WORDS || *p == '-')
			return -1;
		cmd->argv[n++] = gn_strndup(p, (size_t)(e - p));
		cmd->n_words = n;
		p = e;
	}
	return n;
}

static void cmd_free(void *item)
{
	struct cli_cmd *cmd = item;
	for (int i = 0; i < cmd->n_words; i++)
		gn_free(cmd->argv[i]);
	gn_free(cmd->usage);
	gn_free(cmd->help);
	gn_free(cmd);
}

static int add(struct gn_module_ctx *ctx, const char *api, const struct gn_cli_command *c,
	       enum cli_needs needs, const char **error_r)
{
	if (modules_check_register(api, error_r) < 0)
		return -1;
	if (c == NULL || c->words == NULL || c->fn == NULL)
		return registry_fail(error_r, "%s: needs words and a function", api);
	if (c->min_args < 0 || (c->max_args >= 0 && c->max_args < c->min_args))
		return registry_fail(error_r, "CLI command \"%s\": min_args %d and max_args %d do not make a range (max_args -1: no bound)",
				     c->words, c->min_args, c->max_args);

	struct cli_cmd *cmd = gn_calloc(1, sizeof(*cmd));
	if (split_words(cmd, c->words) <= 0) {
		cmd_free(cmd);
		return registry_fail(error_r, "CLI command \"%s\": 1 to %d words, none starting with '-'",
				     c->words, CLI_MAX_WORDS);
	}
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < cmd->n_words; i++)
		gn_buf_printf(b, "%s%s", i > 0 ? " " : "", cmd->argv[i]);
	if (registry_check(&cmds, api, ctx, gn_buf_data(b), error_r) < 0) {
		gn_buf_free(&b);
		cmd_free(cmd);
		return -1;
	}
	cmd->usage = gn_strdup(c->usage != NULL ? c->usage : "");
	cmd->help = c->help != NULL && *c->help != '\0' ? gn_strdup(c->help) : NULL;
	cmd->min_args = c->min_args;
	cmd->max_args = c->max_args < 0 ? -1 : c->max_args;
	cmd->fn = c->fn;
	cmd->data = c->data;
	/* A module's command needs its module started; so do the others'. */
	cmd->needs = ctx == modules_core_ctx() ? needs : CLI_NEEDS_MODULES;
	cmd->words = registry_add(&cmds, ctx, gn_buf_data(b), cmd)->name;
	gn_buf_free(&b);
	return 0;
}

int gn_cli_command_register(struct gn_module_ctx *ctx, const struct gn_cli_command *cmd,
			    const char **error_r)
{
	/* Older, smaller structs would be read past their end: the core's
	 * copy takes only what the module's size covers.  Every member of
	 * the first version is required, so anything smaller is refused. */
	struct gn_cli_command c = { 0 };
	if (cmd != NULL && cmd->size >= sizeof(c))
		memcpy(&c, cmd, sizeof(c));
	else if (cmd != NULL)
		return registry_fail(error_r, "gn_cli_command_register: struct gn_cli_command of %zu bytes, core wants at least %zu",
				     cmd->size, sizeof(c));
	return add(ctx, "gn_cli_command_register", cmd != NULL ? &c : NULL, core_needs, error_r);
}

int gn_cli_register(struct gn_module_ctx *ctx, const char *words,
		    const char *usage, gn_cli_fn *fn, void *data,
		    const char **error_r)
{
	const struct gn_cli_command c = {
		.size = sizeof(c), .words = words, .usage = usage,
		.min_args = 0, .max_args = -1, .fn = fn, .data = data,
	};
	return add(ctx, "gn_cli_register", &c, core_needs, error_r);
}

int cli_register_core(const struct gn_cli_command *cmd, enum cli_needs needs,
		      const char **error_r)
{
	return add(modules_core_ctx(), "cli_register_core", cmd, needs, error_r);
}

/* ---- finding and running ---- */

const struct cli_cmd *cli_lookup(int argc, char **argv)
{
	const struct cli_cmd *best = NULL;
	for (size_t i = 0; i < cmds.n; i++) {
		const struct cli_cmd *c = cmds.entries[i].item;
		if (c->n_words > argc || (best != NULL && c->n_words <= best->n_words))
			continue;
		int j;
		for (j = 0; j < c->n_words && strcmp(c->argv[j], argv[j]) == 0; j++)
			;
		if (j == c->n_words)
			best = c;
	}
	return best;
}

static const struct registry_entry *entry_of(const struct cli_cmd *cmd)
{
	for (size_t i = 0; i < cmds.n; i++)
		if (cmds.entries[i].item == cmd)
			return &cmds.entries[i];
	return NULL;
}

enum cli_needs cli_cmd_needs(const struct cli_cmd *cmd)
{
	return cmd->needs;
}

const char *cli_cmd_words(const struct cli_cmd *cmd)
{
	return cmd->words;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

/* "gannet WORDS USAGE" */
static void print_usage_line(FILE *out, const struct cli_cmd *cmd)
{
	fprintf(out, "gannet %s%s%s", cmd->words, *cmd->usage != '\0' ? " " : "", cmd->usage);
}

void cli_cmd_print_help(const struct cli_cmd *cmd, FILE *out)
{
	const struct registry_entry *e = entry_of(cmd);
	fputs("usage: ", out);
	print_usage_line(out, cmd);
	fputc('\n', out);
	if (cmd->help != NULL) {
		fprintf(out, "\n%s", cmd->help);
		if (cmd->help[strlen(cmd->help) - 1] != '\n')
			fputc('\n', out);
	}
	if (e != NULL && e->ctx != modules_core_ctx())
		fprintf(out, "\n(a command of the module %s)\n", gn_module_name(e->ctx));
}

int cli_usage_check(const struct cli_cmd *cmd, int argc, char **argv)
{
	int n = argc - cmd->n_words;
	/* "--" ends the options; it is no argument. */
	for (int i = cmd->n_words; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			n--;
			break;
		}
	}
	if (n >= cmd->min_args && (cmd->max_args < 0 || n <= cmd->max_args))
		return 0;
	if (cmd->max_args == 0)
		fprintf(stderr, "gannet %s: takes no arguments\n", cmd->words);
	else if (n < cmd->min_args)
		fprintf(stderr, "gannet %s: too few arguments\n", cmd->words);
	else
		fprintf(stderr, "gannet %s: too many arguments\n", cmd->words);
	fputs("usage: ", stderr);
	print_usage_line(stderr, cmd);
	fputc('\n', stderr);
	return 2;
}

int cli_cmd_run(const struct cli_cmd *cmd, int argc, char **argv)
{
	const struct registry_entry *e = entry_of(cmd);
	gn_log(GN_LOG_DEBUG, "core", "event=cli_command module=%s command=%s",
	       gn_module_name(e != NULL ? e->ctx : NULL), gn_log_quote(0, cmd->words));
	int skip = cmd->n_words - 1;
	return cmd->fn(argc - skip, argv + skip, cmd->data);
}

int cli_dispatch(int argc, char **argv)
{
	const struct cli_cmd *cmd = cli_lookup(argc, argv);
	return cmd != NULL ? cli_cmd_run(cmd, argc, argv) : -1;
}

bool cli_exists(int argc, char **argv)
{
	return cli_lookup(argc, argv) != NULL;
}

/* ---- listing ---- */

static int entry_cmp(const void *a, const void *b)
{
	const struct registry_entry *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

size_t cli_print_commands(FILE *out, int argc, char **argv, bool with_builtin)
{
	const struct registry_entry **sorted = gn_calloc(cmds.n + 1, sizeof(*sorted));
	size_t n = 0;
	for (size_t i = 0; i < cmds.n; i++) {
		const struct cli_cmd *c = cmds.entries[i].item;
		if (!with_builtin && c->needs == CLI_NEEDS_NOTHING)
			continue;
		int j;
		for (j = 0; j < argc && j < c->n_words && strcmp(c->argv[j], argv[j]) == 0; j++)
			;
		if (j == argc)
			sorted[n++] = &cmds.entries[i];
	}
	qsort(sorted, n, sizeof(*sorted), entry_cmp);
	for (size_t i = 0; i < n && out != NULL; i++) {
		fputs("  ", out);
		print_usage_line(out, sorted[i]->item);
		if (sorted[i]->ctx != modules_core_ctx())
			fprintf(out, "   (module %s)", gn_module_name(sorted[i]->ctx));
		fputc('\n', out);
	}
	gn_free(sorted);
	return n;
}

void cli_print_usage(FILE *out)
{
	cli_print_commands(out, 0, NULL, false);
}

void cli_free(void)
{
	registry_clear(&cmds, cmd_free);
	core_needs = CLI_NEEDS_MODULES;
}
