/*
 * modules/aliases/cli.c: `gannet config alias list | print ADDR | add ADDR
 * MEMBER... [flags] | update ADDR flags | rm ADDR | addaddr ADDR MEMBER...
 * | rmaddr ADDR MEMBER...`, the words of mox's `mox config alias` (mox.md
 * 5), over alias.c.  Flags: --post-public, --list-members,
 * --allow-msg-from, and for update also their --no-... forms.
 */
#include "aliases.h"

#include <stdio.h>
#include <string.h>

static int fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

static int usage(const char *u)
{
	fprintf(stderr, "gannet: usage: gannet config alias %s\n", u);
	return 2;
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

/* Takes the flags out of argv (from 1 on), leaving the other arguments in
 * args (*n_r of them).  Each flag is -1 when absent, 1 or 0.  Returns 0, or
 * -1 for an unknown option (or a --no- form when negatives is false). */
static int parse_flags(int argc, char **argv, bool negatives, const char **args, size_t *n_r,
		       int flags[3])
{
	static const char *const names[3] = { "post-public", "list-members", "allow-msg-from" };
	size_t n = 0;
	flags[0] = flags[1] = flags[2] = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			args[n++] = a;
			continue;
		}
		bool neg = negatives && strncmp(a + 2, "no-", 3) == 0;
		const char *name = a + 2 + (neg ? 3 : 0);
		int k = -1;
		for (int j = 0; j < 3; j++)
			if (strcmp(name, names[j]) == 0)
				k = j;
		if (k < 0) {
			fprintf(stderr, "gannet: unknown option %s\n", a);
			return -1;
		}
		flags[k] = neg ? 0 : 1;
	}
	*n_r = n;
	return 0;
}

static int cmd_list(int argc, char **argv, void *data)
{
	(void)argc;
	(void)argv;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct alias *list = NULL;
	size_t *counts = NULL, n = 0;
	const char *err = NULL;
	int ret = 0;
	if (alias_list(pool, &list, &counts, &n, &err) < 0) {
		ret = fail(err);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s members=%zu post-public=%s list-members=%s allow-msg-from=%s\n",
			       gn_addr_to_display(pool, list[i].addr), counts[i],
			       yes(list[i].flags.post_public), yes(list[i].flags.list_members),
			       yes(list[i].flags.allow_msg_from));
	}
	gn_pool_free(&pool);
	return ret;
}

static int cmd_print(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	struct gn_addr *a = NULL;
	struct alias *al = NULL;
	struct alias_member *m = NULL;
	size_t n = 0;
	const char *err = NULL;
	int ret = 0, r;
	if (gn_addr_parse(pool, argv[1], strlen(argv[1]), &a, &err) < 0) {
		ret = fail(gn_pool_printf(pool, "invalid address \"%s\": %s", argv[1], err));
		goto out;
	}
	/* Exactly the alias: print shows configuration, not where a
	 * tagged address would go. */
	r = alias_find(pool, a, &al, &err);
	if (r > 0 && strcmp(gn_addr_fold(pool, al->addr)->localpart,
			    gn_addr_fold(pool, a)->localpart) != 0)
		r = 0;
	if (r < 0) {
		ret = fail(err);
		goto out;
	}
	if (r == 0) {
		ret = fail(gn_pool_printf(pool, "unknown alias: %s", gn_addr_to_display(pool, a)));
		goto out;
	}
	if (alias_members(pool, al->id, &m, &n, &err) < 0) {
		ret = fail(err);
		goto out;
	}
	printf("address: %s\npost-public: %s\nlist-members: %s\nallow-msg-from: %s\nmembers:\n",
	       gn_addr_to_display(pool, al->addr), yes(al->flags.post_public),
	       yes(al->flags.list_members), yes(al->flags.allow_msg_from));
	for (size_t i = 0; i < n; i++)
		printf("  %s (account %s)\n", gn_addr_to_display(pool, m[i].addr), m[i].account);
out:
	gn_pool_free(&pool);
	return ret;
}

static int cmd_add(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	const char **args = gn_pool_alloc(pool, (size_t)argc * sizeof(*args));
	size_t n = 0;
	int f[3], ret = 0;
	const char *err = NULL;
	if (parse_flags(argc, argv, false, args, &n, f) < 0 || n < 2) {
		ret = usage("add ADDRESS MEMBER... [--post-public] [--list-members] [--allow-msg-from]");
		goto out;
	}
	struct alias_flags flags = { f[0] == 1, f[1] == 1, f[2] == 1 };
	if (alias_add(pool, args[0], args + 1, n - 1, &flags, &err) < 0)
		ret = fail(err);
out:
	gn_pool_free(&pool);
	return ret;
}

static int cmd_update(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	const char **args = gn_pool_alloc(pool, (size_t)argc * sizeof(*args));
	size_t n = 0;
	int f[3], ret = 0;
	const char *err = NULL;
	if (parse_flags(argc, argv, true, args, &n, f) < 0 || n != 1 ||
	    (f[0] < 0 && f[1] < 0 && f[2] < 0)) {
		ret = usage("update ADDRESS [--[no-]post-public] [--[no-]list-members] "
			    "[--[no-]allow-msg-from]");
		goto out;
	}
	if (alias_update(pool, args[0], f[0], f[1], f[2], &err) < 0)
		ret = fail(err);
out:
	gn_pool_free(&pool);
	return ret;
}

static int cmd_rm(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	int ret = alias_remove(pool, argv[1], &err) < 0 ? fail(err) : 0;
	gn_pool_free(&pool);
	return ret;
}

static int cmd_addaddr(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	int ret = alias_members_add(pool, argv[1], (const char *const *)argv + 2,
				    (size_t)argc - 2, &err) < 0 ? fail(err) : 0;
	gn_pool_free(&pool);
	return ret;
}

static int cmd_rmaddr(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	int ret = alias_members_remove(pool, argv[1], (const char *const *)argv + 2,
				       (size_t)argc - 2, &err) < 0 ? fail(err) : 0;
	gn_pool_free(&pool);
	return ret;
}

int aliases_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command cmds[] = {
		{ sizeof(struct gn_cli_command), "config alias list", NULL,
		  "List the aliases with their member counts and flags.", 0, 0, cmd_list, NULL },
		{ sizeof(struct gn_cli_command), "config alias print", "ADDRESS",
		  "Show an alias: its flags and members.", 1, 1, cmd_print, NULL },
		{ sizeof(struct gn_cli_command), "config alias add",
		  "ADDRESS MEMBER... [--post-public] [--list-members] [--allow-msg-from]",
		  "Add an alias on a hosted domain whose mail goes to its members (addresses of\n"
		  "accounts).  --post-public: anyone may send to it (else only members, judged by\n"
		  "the message's From); --list-members: members may see the list;\n"
		  "--allow-msg-from: members may send as the alias.", 2, -1, cmd_add, NULL },
		{ sizeof(struct gn_cli_command), "config alias update",
		  "ADDRESS [--[no-]post-public] [--[no-]list-members] [--[no-]allow-msg-from]",
		  "Change an alias's flags; those not named stay.", 2, 4, cmd_update, NULL },
		{ sizeof(struct gn_cli_command), "config alias rm", "ADDRESS",
		  "Remove an alias.", 1, 1, cmd_rm, NULL },
		{ sizeof(struct gn_cli_command), "config alias addaddr", "ADDRESS MEMBER...",
		  "Add members to an alias.", 2, -1, cmd_addaddr, NULL },
		{ sizeof(struct gn_cli_command), "config alias rmaddr", "ADDRESS MEMBER...",
		  "Remove members from an alias (never its last one).", 2, -1, cmd_rmaddr, NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (gn_cli_command_register(ctx, &cmds[i], error_r) < 0)
			return -1;
	return 0;
}
