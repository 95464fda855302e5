/*
 * core/runtime/cli.c: the registry of CLI commands (gannet/cli.h).
 *
 * CLI commands are word sequences ("config tlspubkey"); cli_dispatch()
 * picks the longest registered sequence that prefixes the command line, so
 * "config tlspubkey list" and "config tlspubkey" can both exist.
 */
#include "runtime/internal.h"

#include <stdlib.h>
#include <string.h>

#define CLI_MAX_WORDS 8

struct cli_cmd {
	const char *words;	/* the registry entry's name: single spaces */
	char *argv[CLI_MAX_WORDS];
	int n_words;
	char *usage;
	gn_cli_fn *fn;
	void *data;
};

/* Commands of the gannet binary itself (core/main.c). */
static const char *const builtin_cmds[] = {
	"serve", "localserve", "modules", "migrate", "version", "help",
	"config check",
};

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
	gn_free(cmd);
}

/* Names are the words joined by single spaces, made by
 * gn_cli_register(), which reports bad words itself. */
static struct registry cmds = {
	.kind = "CLI command", .verb = "registered",
};

int gn_cli_register(struct gn_module_ctx *ctx, const char *words,
		    const char *usage, gn_cli_fn *fn, void *data,
		    const char **error_r)
{
	if (modules_check_register("gn_cli_register", error_r) < 0)
		return -1;
	if (words == NULL || fn == NULL)
		return registry_fail(error_r, "gn_cli_register: needs words and a function");

	struct cli_cmd *cmd = gn_calloc(1, sizeof(*cmd));
	cmd->fn = fn;
	cmd->data = data;
	if (split_words(cmd, words) <= 0) {
		cmd_free(cmd);
		return registry_fail(error_r, "CLI command \"%s\": 1 to %d words, none starting with '-'",
				     words, CLI_MAX_WORDS);
	}
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < cmd->n_words; i++)
		gn_buf_printf(b, "%s%s", i > 0 ? " " : "", cmd->argv[i]);
	for (size_t i = 0; i < sizeof(builtin_cmds) / sizeof(builtin_cmds[0]); i++) {
		if (strcmp(gn_buf_data(b), builtin_cmds[i]) == 0) {
			registry_fail(error_r, "CLI command \"%s\" is a command of gannet itself",
				      gn_buf_data(b));
			gn_buf_free(&b);
			cmd_free(cmd);
			return -1;
		}
	}
	if (registry_check(&cmds, "gn_cli_register", ctx, gn_buf_data(b), error_r) < 0) {
		gn_buf_free(&b);
		cmd_free(cmd);
		return -1;
	}
	cmd->usage = gn_strdup(usage != NULL ? usage : "");
	cmd->words = registry_add(&cmds, ctx, gn_buf_data(b), cmd)->name;
	gn_buf_free(&b);
	return 0;
}

static const struct registry_entry *cli_find(int argc, char **argv)
{
	const struct registry_entry *best = NULL;
	int best_words = 0;
	for (size_t i = 0; i < cmds.n; i++) {
		const struct cli_cmd *c = cmds.entries[i].item;
		if (c->n_words > argc || c->n_words <= best_words)
			continue;
		int j;
		for (j = 0; j < c->n_words && strcmp(c->argv[j], argv[j]) == 0; j++)
			;
		if (j == c->n_words) {
			best = &cmds.entries[i];
			best_words = c->n_words;
		}
	}
	return best;
}

bool cli_exists(int argc, char **argv)
{
	return cli_find(argc, argv) != NULL;
}

int cli_dispatch(int argc, char **argv)
{
	const struct registry_entry *e = cli_find(argc, argv);
	if (e == NULL)
		return -1;
	const struct cli_cmd *best = e->item;
	gn_log(GN_LOG_DEBUG, "core", "event=cli_command module=%s command=%s",
	       gn_module_name(e->ctx), gn_log_quote(0, best->words));
	int skip = best->n_words - 1;
	return best->fn(argc - skip, argv + skip, best->data);
}

static int entry_cmp(const void *a, const void *b)
{
	const struct registry_entry *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

void cli_print_usage(FILE *out)
{
	if (cmds.n == 0)
		return;
	const struct registry_entry **sorted = gn_calloc(cmds.n, sizeof(*sorted));
	for (size_t i = 0; i < cmds.n; i++)
		sorted[i] = &cmds.entries[i];
	qsort(sorted, cmds.n, sizeof(*sorted), entry_cmp);
	fprintf(out, "\nmodule commands:\n");
	for (size_t i = 0; i < cmds.n; i++) {
		const struct cli_cmd *c = sorted[i]->item;
		fprintf(out, "  gannet %s%s%s   (%s)\n", c->words,
			*c->usage != '\0' ? " " : "", c->usage, gn_module_name(sorted[i]->ctx));
	}
	gn_free(sorted);
}
