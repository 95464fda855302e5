/*
 * core/queue/cli.c: `gannet queue ...`, the queue's command line: list,
 * dump, hold, release, schedule, fail, drop, add (a message from stdin),
 * run (attempt what is due now, in this process), and the registration of
 * every queue command (the hold rules and retired history are in
 * cli-rules.c).  IDs are recipients' queue ids, as `queue list` shows.
 */
#include "queue/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int queue_cli_usage(const char *usage)
{
	fprintf(stderr, "gannet: usage: gannet %s\n", usage);
	return 2;
}

int queue_cli_fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

long long queue_parse_duration(const char *s)
{
	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "now") == 0)
		return 0;
	if (*s == '+')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	long long mul = 1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (v > 100LL * 365 * 86400 / mul)
		return -1;
	return v * mul;
}

static int parse_id(const char *s, int64_t *id_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v <= 0)
		return -1;
	*id_r = v;
	return 0;
}

/* The account named name: its id, 0 none (said on stderr), -1 error. */
static int64_t account_id(struct gn_pool *pool, const char *name)
{
	struct gn_store_account *a = NULL;
	const char *err;
	int r = gn_store_account_find(pool, name, &a, &err);
	if (r < 0) {
		queue_cli_fail(err);
		return -1;
	}
	if (r == 0) {
		fprintf(stderr, "gannet: no such account: %s\n", name);
		return 0;
	}
	return gn_store_account_id(a);
}

/* ---- list ---- */

static int cli_list(int argc, char **argv, void *data)
{
	(void)data;
	static const char usage[] = "queue list [--account ACCOUNT] [--from ADDRESS] [--to ADDRESS] "
		"[--domain DOMAIN] [--held]";
	const char *acc = NULL, *from = NULL, *to = NULL, *dom = NULL, *held = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--account") == 0 ? &acc
			: strcmp(argv[i], "--from") == 0 ? &from
			: strcmp(argv[i], "--to") == 0 ? &to
			: strcmp(argv[i], "--domain") == 0 ? &dom : NULL;
		if (strcmp(argv[i], "--held") == 0) {
			held = "t";
			continue;
		}
		if (slot == NULL || i + 1 >= argc) {
			if (slot == NULL)
				fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
			return queue_cli_usage(usage);
		}
		*slot = argv[++i];
	}
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	/* Addresses and domains compared in canonical form. */
	if (from != NULL) {
		struct gn_addr *a;
		if (gn_addr_parse(pool, from, strlen(from), &a, &err) == 0)
			from = gn_addr_to_string(pool, a);
	}
	if (to != NULL) {
		struct gn_addr *a;
		if (gn_addr_parse(pool, to, strlen(to), &a, &err) == 0)
			to = gn_addr_to_string(pool, a);
	}
	if (dom != NULL && gn_addr_parse_domain(pool, dom, strlen(dom), &dom, NULL, &err) < 0) {
		gn_pool_free(&pool);
		return queue_cli_fail(err);
	}
	const char *p[5] = { acc, from, to, dom, held };
	PGresult *res = store_q("SELECT r.id, r.message_id, a.name, m.sender, r.rcpt, r.state, r.held, "
				"r.attempts, " QUEUE_TS("r.next_attempt") ", coalesce(r.last_code::text, ''), "
				"coalesce(r.last_enhanced, ''), coalesce(r.last_text, ''), "
				"coalesce(" QUEUE_TS("m.release_at") ", ''), coalesce(r.from_id, ''), "
				"CASE WHEN m.extra = '{}' THEN '' ELSE m.extra::text END, "
				"CASE m.require_tls WHEN true THEN 'requiretls' WHEN false THEN 'relaxed' "
				"ELSE '' END "
				"FROM gn_queue_recipients r JOIN gn_queue_messages m ON m.account_id = r.account_id "
				"AND m.id = r.message_id JOIN gn_accounts a ON a.id = r.account_id "
				"WHERE ($1::text IS NULL OR a.name = $1) AND ($2::text IS NULL OR m.sender = $2) "
				"AND ($3::text IS NULL OR r.rcpt = $3) AND ($4::text IS NULL OR r.rcpt_domain = $4) "
				"AND ($5::boolean IS NULL OR r.held) ORDER BY r.next_attempt, r.id", 5, p, &err);
	gn_pool_free(&pool);
	if (res == NULL)
		return queue_cli_fail(err);
	for (int i = 0; i < PQntuples(res); i++) {
		printf("%s message=%s account=%s from=<%s> to=<%s> state=%s%s attempts=%s next=%s",
		       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
		       PQgetvalue(res, i, 6)[0] == 't' ? " held" : "", PQgetvalue(res, i, 7),
		       PQgetvalue(res, i, 8));
		if (PQgetvalue(res, i, 12)[0] != '\0')
			printf(" release=%s", PQgetvalue(res, i, 12));
		if (PQgetvalue(res, i, 13)[0] != '\0')
			printf(" fromid=%s", PQgetvalue(res, i, 13));
		if (PQgetvalue(res, i, 14)[0] != '\0')
			printf(" extra=%s", PQgetvalue(res, i, 14));
		/* RFC 8689: REQUIRETLS, or "TLS-Required: No" (relaxed). */
		if (PQgetvalue(res, i, 15)[0] != '\0')
			printf(" tls=%s", PQgetvalue(res, i, 15));
		if (PQgetvalue(res, i, 9)[0] != '\0' || PQgetvalue(res, i, 11)[0] != '\0')
			printf(" last=\"%s%s%s%s%s\"", PQgetvalue(res, i, 9), PQgetvalue(res, i, 9)[0] ? " " : "",
			       PQgetvalue(res, i, 10), PQgetvalue(res, i, 10)[0] ? " " : "", PQgetvalue(res, i, 11));
		printf("\n");
	}
	PQclear(res);
	return 0;
}

/* ---- fromid ---- */

/* `gannet queue fromid FROMID`: the queued or retired recipient a FromID
 * (the tag of a bounce's address) belongs to, and the mail that came back
 * to it (incoming=, of which DSNs dsn=). */
static int cli_fromid(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return queue_cli_usage("queue fromid FROMID");
	struct gn_pool *pool = gn_pool_new();
	int64_t id, mid;
	const char *err, *rcpt, *state;
	int r = gn_queue_fromid_find(pool, argv[1], &id, &mid, &rcpt, &state, &err);
	if (r < 0) {
		gn_pool_free(&pool);
		return queue_cli_fail(err);
	}
	if (r == 0) {
		gn_pool_free(&pool);
		fprintf(stderr, "gannet: no queued or retired recipient with FromID %s\n", argv[1]);
		return 1;
	}
	/* What came back to it (fromid.c). */
	const char *p[1] = { argv[1] };
	PGresult *res = store_q("SELECT count(*), count(*) FILTER (WHERE kind = 'dsn') FROM "
				"gn_queue_fromid_incoming WHERE from_id = $1", 1, p, &err);
	if (res == NULL) {
		gn_pool_free(&pool);
		return queue_cli_fail(err);
	}
	bool queued = strcmp(state, "queued") == 0;
	printf("%" PRId64 " message=%" PRId64 " to=<%s> %s%s%s incoming=%s dsn=%s\n", id, mid, rcpt,
	       queued ? "queued" : "retired", queued ? "" : " result=", queued ? "" : state,
	       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	PQclear(res);
	gn_pool_free(&pool);
	return 0;
}

/* ---- dump ---- */

static int cli_dump(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	if (argc != 2 || parse_id(argv[1], &id) < 0)
		return queue_cli_usage("queue dump ID");
	struct gn_pool *pool = gn_pool_new();
	const char *p[1] = { store_i64s(pool, id) }, *err;
	PGresult *res = store_q("SELECT encode(b.hash, 'hex') FROM gn_queue_recipients r JOIN gn_queue_messages m "
				"ON m.account_id = r.account_id AND m.id = r.message_id JOIN gn_blobs b ON "
				"b.id = m.blob_id WHERE r.id = $1", 1, p, &err);
	gn_pool_free(&pool);
	if (res == NULL)
		return queue_cli_fail(err);
	if (PQntuples(res) == 0) {
		PQclear(res);
		fprintf(stderr, "gannet: no queued recipient with id %s\n", argv[1]);
		return 1;
	}
	unsigned char hash[GN_STORE_HASH_SIZE];
	(void)store_hash_from_hex(PQgetvalue(res, 0, 0), hash);
	PQclear(res);
	struct gn_store_body *body = NULL;
	int r = gn_store_blob_open(hash, &body, &err);
	if (r <= 0)
		return queue_cli_fail(r < 0 ? err : "the message's body is gone");
	char *buf = gn_malloc(GN_STORE_CHUNK_SIZE);
	uint64_t off = 0;
	int rc = 0;
	for (;;) {
		size_t got = 0;
		if (gn_store_body_read(body, off, buf, GN_STORE_CHUNK_SIZE, &got, &err) < 0) {
			rc = queue_cli_fail(err);
			break;
		}
		if (got == 0)
			break;
		if (fwrite(buf, 1, got, stdout) != got) {
			rc = queue_cli_fail("cannot write to stdout");
			break;
		}
		off += got;
	}
	gn_free(buf);
	gn_store_body_free(&body);
	return rc;
}

/* ---- hold, release, schedule, fail, drop ---- */

static int one_id(int argc, char **argv, const char *usage, int64_t *id_r)
{
	if (argc != 2 || parse_id(argv[1], id_r) < 0)
		return queue_cli_usage(usage);
	return 0;
}

static int result(int r, const char *err, const char *id, const char *what)
{
	if (r < 0)
		return queue_cli_fail(err);
	if (r == 0) {
		fprintf(stderr, "gannet: no queued recipient with id %s\n", id);
		return 1;
	}
	printf("%s %s\n", id, what);
	return 0;
}

/* RFC 8689 (mox's `queue requiretls`): what the recipient's message asks
 * of the TLS, for its next attempts; the message's other queued
 * recipients share it (one row a message). */
static int cli_requiretls(int argc, char **argv, void *data)
{
	static const char usage[] = "queue requiretls ID yes|no|default";
	(void)data;
	int64_t id;
	if (argc != 3 || parse_id(argv[1], &id) < 0)
		return queue_cli_usage(usage);
	const char *v = strcmp(argv[2], "yes") == 0 ? "t" : strcmp(argv[2], "no") == 0 ? "f" : NULL;
	if (v == NULL && strcmp(argv[2], "default") != 0)
		return queue_cli_usage(usage);
	struct gn_pool *pool = gn_pool_new();
	const char *p[2] = { store_i64s(pool, id), v }, *err = NULL;
	int64_t n = store_q_count("UPDATE gn_queue_messages m SET require_tls = $2::boolean "
				  "FROM gn_queue_recipients r WHERE r.id = $1 AND m.account_id = r.account_id "
				  "AND m.id = r.message_id", 2, p, &err);
	gn_pool_free(&pool);
	return result(n < 0 ? -1 : n > 0, err, argv[1],
		      v == NULL ? "tls=default" : v[0] == 't' ? "tls=requiretls" : "tls=relaxed");
}

static int cli_hold(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	const char *err = NULL;
	if (one_id(argc, argv, "queue hold ID", &id) != 0)
		return 2;
	/* Called first: the order of a call's arguments is unspecified, and
	 * err is set by the call. */
	int r = gn_queue_hold(id, true, &err);
	return result(r, err, argv[1], "held");
}

static int cli_release(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	const char *err = NULL;
	if (one_id(argc, argv, "queue release ID", &id) != 0)
		return 2;
	int r = gn_queue_hold(id, false, &err);
	return result(r, err, argv[1], "released");
}

static int cli_schedule(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	const char *err = NULL;
	long long d = argc == 3 ? queue_parse_duration(argv[2]) : -1;
	if (argc != 3 || parse_id(argv[1], &id) < 0 || d < 0 || (argv[2][0] != '+' && strcmp(argv[2], "now") != 0))
		return queue_cli_usage("queue schedule ID (now|+DURATION)");
	int r = gn_queue_schedule(id, (time_t)(gn_queue_now() + (double)d), &err);
	if (r == 0) {
		fprintf(stderr, "gannet: no queued recipient with id %s (or it is being delivered)\n", argv[1]);
		return 1;
	}
	return result(r, err, argv[1], "scheduled");
}

static int cli_fail(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	const char *err = NULL;
	if (one_id(argc, argv, "queue fail ID", &id) != 0)
		return 2;
	int r = gn_queue_fail(id, &err);
	return result(r, err, argv[1], "failed");
}

static int cli_drop(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	const char *err = NULL;
	if (one_id(argc, argv, "queue drop ID", &id) != 0)
		return 2;
	int r = gn_queue_drop(id, &err);
	return result(r, err, argv[1], "dropped");
}

/* ---- add ---- */

/* Messages given to `queue add`: at most this many bytes. */
#define QUEUE_CLI_MAX_SIZE (100ULL * 1024 * 1024)

/* Writes stdin to w with CRLF line ends (a bare LF becomes CRLF). */
static int read_stdin(struct gn_store_blob_writer *w, const char **error_r)
{
	char in[65536];
	struct gn_buf *b = gn_buf_new(0);
	bool cr = false;
	uint64_t total = 0;
	size_t n;
	while ((n = fread(in, 1, sizeof(in), stdin)) > 0) {
		gn_buf_clear(b);
		for (size_t i = 0; i < n; i++) {
			if (in[i] == '\n' && !cr)
				gn_buf_append(b, "\r", 1);
			cr = in[i] == '\r';
			gn_buf_append(b, &in[i], 1);
		}
		total += gn_buf_len(b);
		if (total > QUEUE_CLI_MAX_SIZE) {
			gn_buf_free(&b);
			*error_r = "the message is larger than 100 MiB";
			return -1;
		}
		if (gn_store_blob_write(w, gn_buf_data(b), gn_buf_len(b), error_r) < 0) {
			gn_buf_free(&b);
			return -1;
		}
	}
	gn_buf_free(&b);
	if (ferror(stdin)) {
		*error_r = "cannot read stdin";
		return -1;
	}
	if (total == 0) {
		*error_r = "no message on stdin";
		return -1;
	}
	return 0;
}

static int cli_add(int argc, char **argv, void *data)
{
	(void)data;
	static const char usage[] = "queue add [--account ACCOUNT] --from ADDRESS --to ADDRESS [--to ADDRESS...] "
		"[--hold-for DURATION] [--require-tls yes|no] < MESSAGE";
	struct gn_pool *pool = gn_pool_new();
	const char *acc = NULL, *from = NULL, *err = NULL;
	long long hold_for = 0;
	enum gn_queue_require_tls require_tls = GN_QUEUE_TLS_DEFAULT;
	struct gn_addr **rcpts = gn_pool_alloc(pool, (size_t)argc * sizeof(*rcpts));
	size_t n = 0;
	int rc = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		if (i + 1 >= argc) {
			rc = queue_cli_usage(usage);
		} else if (strcmp(argv[i], "--account") == 0) {
			acc = argv[++i];
		} else if (strcmp(argv[i], "--from") == 0) {
			from = argv[++i];
		} else if (strcmp(argv[i], "--hold-for") == 0) {
			if ((hold_for = queue_parse_duration(argv[++i])) < 0)
				rc = queue_cli_usage(usage);
		} else if (strcmp(argv[i], "--require-tls") == 0) {
			/* As MAIL FROM ... REQUIRETLS (yes) or "TLS-Required:
			 * No" (no) would (RFC 8689; mox's queue requiretls). */
			const char *v = argv[++i];
			if (strcmp(v, "yes") == 0)
				require_tls = GN_QUEUE_TLS_REQUIRED;
			else if (strcmp(v, "no") == 0)
				require_tls = GN_QUEUE_TLS_RELAXED;
			else
				rc = queue_cli_usage(usage);
		} else if (strcmp(argv[i], "--to") == 0) {
			const char *s = argv[++i];
			if (gn_addr_parse(pool, s, strlen(s), &rcpts[n], &err) < 0) {
				fprintf(stderr, "gannet: invalid address \"%s\": %s\n", s, err);
				rc = 1;
			}
			n++;
		} else {
			fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
			rc = queue_cli_usage(usage);
		}
	}
	if (rc == 0 && (from == NULL || n == 0))
		rc = queue_cli_usage(usage);
	struct gn_addr *sender = NULL;
	if (rc == 0 && strcmp(from, "<>") != 0 && strcmp(from, "") != 0 &&
	    gn_addr_parse(pool, from, strlen(from), &sender, &err) < 0) {
		fprintf(stderr, "gannet: invalid address \"%s\": %s\n", from, err);
		rc = 1;
	}
	int64_t account = 0;
	if (rc == 0 && acc != NULL) {
		account = account_id(pool, acc);
		if (account <= 0)
			rc = 1;
	} else if (rc == 0 && sender != NULL) {
		int r = gn_store_address_lookup(pool, sender, &account, NULL, &err);
		if (r <= 0) {
			fprintf(stderr, "gannet: %s is not an address of an account (use --account)\n",
				r < 0 ? err : from);
			rc = 1;
		}
	} else if (rc == 0) {
		fprintf(stderr, "gannet: a message from <> needs --account\n");
		rc = 1;
	}
	if (rc != 0) {
		gn_pool_free(&pool);
		return rc;
	}
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	unsigned char hash[GN_STORE_HASH_SIZE];
	int64_t mid = 0;
	int held = -1;
	if (read_stdin(w, &err) == 0 && gn_db_begin(&err) == 0) {
		bool smtputf8 = sender != NULL && gn_addr_needs_smtputf8(sender);
		for (size_t i = 0; i < n; i++)
			smtputf8 = smtputf8 || gn_addr_needs_smtputf8(rcpts[i]);
		struct gn_queue_message m = {
			.size = sizeof(m), .account_id = account, .sender = sender,
			.recipients = (const struct gn_addr *const *)rcpts, .n_recipients = n,
			.blob_hash = hash, .smtputf8 = smtputf8, .require_tls = require_tls,
			.release_at = hold_for > 0 ? (time_t)(gn_queue_now() + (double)hold_for) : 0,
		};
		/* The store's lock order: the account before the blob. */
		if (gn_store_account_lock(account, &err) > 0 &&
		    gn_store_blob_finish(w, hash, NULL, &err) == 0 &&
		    (held = gn_queue_add(&m, &mid, &err)) >= 0 && gn_db_commit(&err) < 0)
			held = -1;
		if (held < 0 && gn_db_in_transaction())
			gn_db_rollback();
	}
	gn_store_blob_writer_free(&w);
	gn_pool_free(&pool);
	if (held < 0)
		return queue_cli_fail(err);
	printf("queued message %" PRId64 " for %zu recipient%s", mid, n, n == 1 ? "" : "s");
	if (held > 0)
		printf(", %d held", held);
	printf("\n");
	return 0;
}

/* ---- run ---- */

static int cli_run(int argc, char **argv, void *data)
{
	(void)argc;
	(void)argv;
	(void)data;
	const char *err;
	int total = 0;
	/* What is due now, group by group; bounded, so a queue that keeps
	 * filling cannot keep the command running. */
	for (int round = 0; round < 1000; round++) {
		int r = gn_queue_run(1, &err);
		if (r < 0)
			return queue_cli_fail(err);
		if (r == 0)
			break;
		total += r;
		/* The transport works on the loop: wait for this delivery's
		 * end (its own timeouts bound it). */
		while (queue_in_flight() > 0)
			ev_run(core_loop, EVRUN_ONCE);
	}
	queue_smtp_shutdown();
	printf("%d deliver%s attempted\n", total, total == 1 ? "y" : "ies");
	return 0;
}

int queue_cli_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "queue list", "[--account ACCOUNT] [--from ADDRESS] [--to ADDRESS] [--domain DOMAIN] [--held]",
		  cli_list },
		{ "queue dump", "ID", cli_dump },
		{ "queue fromid", "FROMID", cli_fromid },
		{ "queue hold", "ID", cli_hold },
		{ "queue release", "ID", cli_release },
		{ "queue schedule", "ID (now|+DURATION)", cli_schedule },
		{ "queue fail", "ID", cli_fail },
		{ "queue drop", "ID", cli_drop },
		{ "queue add", "[--account ACCOUNT] --from ADDRESS --to ADDRESS... [--hold-for DURATION] "
		  "[--require-tls yes|no] < MESSAGE",
		  cli_add },
		{ "queue requiretls", "ID yes|no|default", cli_requiretls },
		{ "queue run", "", cli_run },
		{ "queue holdrules list", "", queue_cli_holdrules_list },
		{ "queue holdrules add", "[--account ACCOUNT] [--sender-domain DOMAIN] [--recipient-domain DOMAIN]",
		  queue_cli_holdrules_add },
		{ "queue holdrules rm", "ID", queue_cli_holdrules_rm },
		{ "queue retired list", "[--account ACCOUNT]", queue_cli_retired_list },
		{ "queue retired print", "ID", queue_cli_retired_print },
		{ "queue retired keep", "ACCOUNT [DURATION|default]", queue_cli_retired_keep },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *err;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage, cmds[i].fn, NULL, &err) < 0) {
			conf_error("queue: %s", err);
			return -1;
		}
	}
	return 0;
}
