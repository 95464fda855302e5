/*
 * t/fuzz/fuzz_imap_search.c: libFuzzer target for the imap module's
 * search keys (modules/imap/search-parse.c), behind its command parser.
 *
 * The first input byte makes the selected view (how many messages, their
 * UIDs spaced by the second byte, and a saved "$" result); the rest is
 * the text after "t SEARCH ", a CRLF added when it has none.  Besides not
 * crashing, a search that parses must be a well-formed tree: AND with at
 * least one key, OR with two, NOT with one, nesting within
 * SEARCH_DEPTH_MAX, UID ranges with lo <= hi, scan keys within
 * SEARCH_SCAN_KEYS_MAX and each used by its index.  A refused one must say why.  Build and run:
 * t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const struct search_key *k, const struct search_program *prog, unsigned depth,
		      const struct imap_view *v, bool *used)
{
	/* The root is depth 0; a key the parser took at its depth d sits at
	 * d + 1, and the parser takes none past SEARCH_DEPTH_MAX. */
	if (depth > SEARCH_DEPTH_MAX + 1)
		abort();
	switch (k->kind) {
	case SK_AND:
		if (k->n_sub == 0)
			abort();
		break;
	case SK_OR:
		if (k->n_sub != 2)
			abort();
		break;
	case SK_NOT:
		if (k->n_sub != 1)
			abort();
		break;
	case SK_UIDS:
		for (size_t i = 0; i < k->n_ranges; i++)
			if (k->ranges[2 * i] > k->ranges[2 * i + 1])
				abort();
		break;
	case SK_SCAN:
		if (k->scan >= prog->n_scan)
			abort();
		used[k->scan] = true;
		break;
	case SK_KEYWORD:
	case SK_COLUMN:
		if (k->text == NULL)
			abort();
		break;
	default:
		break;
	}
	(void)v;
	for (size_t i = 0; i < k->n_sub; i++)
		check_key(k->sub[i], prog, depth + 1, v, used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	/* The view: up to 15 messages, UIDs 1 + step * i; "$" every other. */
	uint32_t uids[16], saved[16];
	uint64_t modseqs[16] = { 0 };
	struct imap_view v = { 0 };
	v.count = data[0] & 15;
	uint32_t step = (uint32_t)data[1] % 7 + 1;
	for (size_t i = 0; i < v.count; i++) {
		uids[i] = 1 + step * (uint32_t)i;
		if (i % 2 == 0)
			saved[v.n_saved++] = uids[i];
	}
	v.uids = uids;
	v.modseqs = modseqs;
	v.saved = (data[0] & 16) ? saved : NULL;
	if (v.saved == NULL)
		v.n_saved = 0;
	data += 2;
	size -= 2;

	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "t SEARCH ");
	(void)gn_buf_append(b, data, size);
	if (size < 2 || memcmp(data + size - 2, "\r\n", 2) != 0)
		(void)gn_buf_append_str(b, "\r\n");
	struct imap_limits lim;
	imap_limits_init(&lim);
	struct gn_pool *pool = gn_pool_new();
	struct imap_command cmd;
	const char *code, *error;
	if (imap_parse(pool, &lim, gn_buf_data(b), gn_buf_len(b), &cmd, &code, &error) == 0) {
		struct search_program prog;
		code = error = NULL;
		if (search_parse(pool, &v, cmd.args, cmd.count, 1700000000, &prog, &code, &error) == 0) {
			bool used[SEARCH_SCAN_KEYS_MAX] = { false };
			if (prog.root == NULL || prog.n_scan > SEARCH_SCAN_KEYS_MAX)
				abort();
			check_key(prog.root, &prog, 0, &v, used);
			for (size_t i = 0; i < prog.n_scan; i++)
				if (!used[i] || prog.scan[i].text == NULL ||
				    (prog.scan[i].kind == SCAN_HEADER && prog.scan[i].field == NULL))
					abort();
		} else if (error == NULL || (code != NULL && strcmp(code, "LIMIT") != 0)) {
			abort();
		}
	}
	gn_pool_free(&pool);
	gn_buf_free(&b);
	return 0;
}
