/*
 * core/runtime/cli.c: the registry of CLI commands (gannet/cli.h).
 *
 * CLI commands are word sequences ("config tlspubkey"); cli_dispatch()
 * picks the longest registered sequence that prefixes the command line, so
 * "config tlspubkey list" and "config tlspubkey" can both exist.
 */
#include "runtime/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_WORDS 8

struct cli_cmd {
	struct gn_module_ctx *ctx;
	char *words;		/* as registered, single spaces */
	char *argv[CLI_MAX_WORDS];
	int n_words;
	char *usage;
	gn_cli_fn *fn;
	void *data;
};

static struct cli_cmd *cmds;
static size_t n_cmds;
static char error_buf[512];

/* Commands of the gannet binary itself (core/main.c). */
static const char *const builtin_cmds[] = {
	"serve", "localserve", "modules", "migrate", "version", "help",
	"config check",
};

static int set_error(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);

static int set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = error_buf;
	return -1;
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

static void cmd_free(struct cli_cmd *cmd)
{
	for (int i = 0; i < cmd->n_words; i++)
		gn_free(cmd->argv[i]);
	gn_free(cmd->words);
	gn_free(cmd->usage);
}

static bool same_words(const struct cli_cmd *a, const struct cli_cmd *b)
{
	if (a->n_words != b->n_words)
		return false;
	for (int i = 0; i < a->n_words; i++)
		if (strcmp(a->argv[i], b->argv[i]) != 0)
			return false;
	return true;
}

int gn_cli_register(struct gn_module_ctx *ctx, const char *words,
		    const char *usage, gn_cli_fn *fn, void *data,
		    const char **error_r)
{
	if (modules_check_register("gn_cli_register", error_r) < 0)
		return -1;
	if (words == NULL || fn == NULL)
		return set_error(error_r, "gn_cli_register: needs words and a function");

	struct cli_cmd cmd = { .ctx = ctx, .fn = fn, .data = data };
	if (split_words(&cmd, words) <= 0) {
		cmd_free(&cmd);
		return set_error(error_r, "CLI command \"%s\": 1 to %d words, none starting with '-'",
				 words, CLI_MAX_WORDS);
	}
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 0; i < cmd.n_words; i++)
		gn_buf_printf(b, "%s%s", i > 0 ? " " : "", cmd.argv[i]);
	cmd.words = gn_buf_steal(&b);
	for (size_t i = 0; i < sizeof(builtin_cmds) / sizeof(builtin_cmds[0]); i++) {
		if (strcmp(cmd.words, builtin_cmds[i]) == 0) {
			set_error(error_r, "CLI command \"%s\" is a command of gannet itself", cmd.words);
			cmd_free(&cmd);
			return -1;
		}
	}
	for (size_t i = 0; i < n_cmds; i++) {
		if (same_words(&cmds[i], &cmd)) {
			set_error(error_r, "CLI command \"%s\" is already registered by module %s",
				  cmd.words, gn_module_name(cmds[i].ctx));
			cmd_free(&cmd);
			return -1;
		}
	}
	cmd.usage = gn_strdup(usage != NULL ? usage : "");
	cmds = gn_realloc(cmds, (n_cmds + 1) * sizeof(*cmds));
	cmds[n_cmds++] = cmd;
	return 0;
}

static const struct cli_cmd *cli_find(int argc, char **argv)
{
	const struct cli_cmd *best = NULL;
	for (size_t i = 0; i < n_cmds; i++) {
		const struct cli_cmd *c = &cmds[i];
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

bool cli_exists(int argc, char **argv)
{
	return cli_find(argc, argv) != NULL;
}

int cli_dispatch(int argc, char **argv)
{
	const struct cli_cmd *best = cli_find(argc, argv);
	if (best == NULL)
		return -1;
	gn_log(GN_LOG_DEBUG, "core", "event=cli_command module=%s command=%s",
	       gn_module_name(best->ctx), gn_log_quote(0, best->words));
	int skip = best->n_words - 1;
	return best->fn(argc - skip, argv + skip, best->data);
}

static int cmd_cmp(const void *a, const void *b)
{
	const struct cli_cmd *const *x = a, *const *y = b;
	return strcmp((*x)->words, (*y)->words);
}

void cli_print_usage(FILE *out)
{
	if (n_cmds == 0)
		return;
	const struct cli_cmd **sorted = gn_calloc(n_cmds, sizeof(*sorted));
	for (size_t i = 0; i < n_cmds; i++)
		sorted[i] = &cmds[i];
	qsort(sorted, n_cmds, sizeof(*sorted), cmd_cmp);
	fprintf(out, "\nmodule commands:\n");
	for (size_t i = 0; i < n_cmds; i++)
		fprintf(out, "  gannet %s%s%s   (%s)\n", sorted[i]->words,
			*sorted[i]->usage != '\0' ? " " : "", sorted[i]->usage,
			gn_module_name(sorted[i]->ctx));
	gn_free(sorted);
}
