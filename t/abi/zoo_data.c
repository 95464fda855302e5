/*
 * t/abi/zoo_data.c: a zoo module (ABI 1.0 headers) that uses the data
 * API the way a module must: store objects through their accessors and
 * lists of handle pointers, its own table through a migration and
 * struct gn_db_result, a stored message's structure as JSON text, an
 * address header through pointers to its items.  `gannet zoo data
 * ACCOUNT` prints what it read and wrote; t/integration/024-abi-zoo-data.t
 * checks it, so a core that breaks any of these for a module built against
 * ABI 1.0 fails there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <gannet/module.h>
#include <gannet/addr.h>
#include <gannet/cli.h>
#include <gannet/db.h>
#include <gannet/mem.h>
#include <gannet/migrate.h>
#include <gannet/mime.h>
#include <gannet/store.h>

static const struct gn_migration migrations[] = {
	{ 1, "001_notes", "CREATE TABLE zoo_data_notes (id serial PRIMARY KEY, "
			  "note text NOT NULL, data bytea NOT NULL)" },
};

/* The first message of the mailbox: its structure and its From field. */
static int print_first(struct gn_pool *pool, const struct gn_store_mailbox *mb,
		       uint32_t uid, const char **err)
{
	struct gn_store_message *m;
	if (gn_store_message_get(pool, gn_store_mailbox_account_id(mb), gn_store_mailbox_id(mb),
				 uid, &m, err) != 1)
		return -1;
	const char *json = gn_store_message_mime_json(m);
	struct gn_mime_message *mime = NULL;
	if (json == NULL || gn_mime_from_json_string(json, strlen(json), &mime, err) < 0)
		return -1;
	const struct gn_mime_part *root = gn_mime_message_root(mime);
	printf("mime %s/%s parts=%zu\n", gn_mime_part_type(root), gn_mime_part_subtype(root),
	       gn_mime_part_child_count(root));
	gn_mime_message_free(&mime);
	const char *from = gn_store_message_from(m);
	struct gn_addr_list list;
	if (from == NULL || gn_addr_parse_header(pool, from, strlen(from), &list, err) < 0 ||
	    list.count == 0)
		return -1;
	const struct gn_addr_item *it = list.items[0];
	printf("from %s <%s>\n", it->name, gn_addr_to_string(pool, it->addr));
	return 0;
}

static int print_store(struct gn_pool *pool, const char *name, const char **err)
{
	struct gn_store_domain **doms;
	size_t n;
	if (gn_store_domain_list(pool, &doms, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		printf("domain %s %s\n", gn_store_domain_name(doms[i]),
		       gn_store_domain_name_utf8(doms[i]));
	struct gn_store_account *acct;
	int r = gn_store_account_find(pool, name, &acct, err);
	if (r <= 0) {
		if (r == 0)
			*err = "no such account";
		return -1;
	}
	printf("account %s full_name=%s\n", gn_store_account_name(acct),
	       gn_store_account_full_name(acct));
	int64_t id = gn_store_account_id(acct);
	struct gn_store_address **addrs;
	if (gn_store_address_list(pool, id, &addrs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		printf("address %s\n", gn_store_address_canonical(addrs[i]));
	struct gn_store_mailbox **mbs;
	if (gn_store_mailbox_list(pool, id, &mbs, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct gn_store_mailbox *mb = mbs[i];
		printf("mailbox %s messages=%" PRIu64 " unseen=%" PRIu64 " uidnext=%" PRIu32 "\n",
		       gn_store_mailbox_name(mb), gn_store_mailbox_messages(mb),
		       gn_store_mailbox_unseen(mb), gn_store_mailbox_uidnext(mb));
		if (strcmp(gn_store_mailbox_name(mb), "Inbox") != 0)
			continue;
		struct gn_store_message **msgs;
		size_t nm;
		if (gn_store_message_list(pool, id, gn_store_mailbox_id(mb), 1, 0, &msgs, &nm, err) < 0)
			return -1;
		for (size_t j = 0; j < nm; j++) {
			size_t nk;
			gn_store_message_keywords(msgs[j], &nk);
			printf("message %" PRIu32 " size=%" PRIu64 " flags=%u keywords=%zu subject=%s\n",
			       gn_store_message_uid(msgs[j]), gn_store_message_size(msgs[j]),
			       gn_store_message_flags(msgs[j]), nk, gn_store_message_subject(msgs[j]));
		}
		if (nm > 0 && print_first(pool, mb, gn_store_message_uid(msgs[0]), err) < 0)
			return -1;
	}
	return 0;
}

/* Its own table: a row added, then read back in text and binary form. */
static int use_db(const char *note, const char **err)
{
	const char *p[1] = { note };
	struct gn_db_result *res = gn_db_query("INSERT INTO zoo_data_notes (note, data) "
					       "VALUES ($1, '\\x00ff'::bytea)", 1, p, err);
	if (res == NULL)
		return -1;
	printf("inserted %" PRIu64 "\n", gn_db_result_affected_rows(res));
	gn_db_result_free(&res);
	res = gn_db_query("SELECT count(*) AS n, max(note) AS last FROM zoo_data_notes", 0, NULL, err);
	if (res == NULL)
		return -1;
	printf("notes %s last=%s\n", gn_db_result_value(res, 0, 0),
	       gn_db_result_value(res, 0, (size_t)gn_db_result_column_index(res, "last")));
	gn_db_result_free(&res);
	res = gn_db_query_params("SELECT data FROM zoo_data_notes ORDER BY id LIMIT 1", 0, NULL,
				 NULL, NULL, 1, err);
	if (res == NULL)
		return -1;
	size_t len;
	const unsigned char *b = gn_db_result_binary(res, 0, 0, &len);
	printf("bytes %zu %02x%02x\n", len, len == 2 ? b[0] : 0, len == 2 ? b[1] : 0);
	gn_db_result_free(&res);
	return 0;
}

static int cmd_data(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2) {
		fprintf(stderr, "usage: gannet zoo data ACCOUNT\n");
		return 2;
	}
	struct gn_pool *pool = gn_pool_new();
	const char *err = "?";
	int ret = print_store(pool, argv[1], &err) < 0 || use_db(argv[1], &err) < 0;
	if (ret != 0)
		fprintf(stderr, "gannet: zoo data: %s\n", err);
	gn_pool_free(&pool);
	return ret;
}

static int zoo_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_migrate_register(ctx, migrations, sizeof(migrations) / sizeof(migrations[0]),
				error_r) < 0 ||
	    gn_cli_register(ctx, "zoo data", "ACCOUNT", cmd_data, NULL, error_r) < 0)
		return -1;
	return 0;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "zoo_data",
	.version = "1.0",
	.register_fn = zoo_register,
};
