/*
 * t/fuzz/fuzz_imap.c: libFuzzer target for the imap module's command
 * reader and parser (modules/imap/parser.c).
 *
 * Besides not crashing (under AddressSanitizer and UBSan), the input must
 * give the same events fed whole and in chunks (the first byte picks the
 * chunk size, the second small limits), every command the reader frames
 * must fit the limits, and every argument the parser returns must lie
 * within them.  Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_args(const struct imap_arg *args, unsigned count, unsigned depth,
		       const struct imap_limits *lim, unsigned *total)
{
	if (depth > lim->max_depth)
		abort();
	for (unsigned i = 0; i < count; i++) {
		if (++*total > lim->max_args)
			abort();
		if (args[i].type == IMAP_ARG_LIST)
			check_args(args[i].list, args[i].count, depth + 1, lim, total);
		else if (args[i].str == NULL || args[i].str[args[i].len] != '\0')
			abort();
	}
}

/* Runs the reader over the input in chunks of step; the events as text. */
static char *run(const struct imap_limits *lim, const uint8_t *in, size_t len, size_t step)
{
	struct imap_reader *r = imap_reader_new(lim);
	struct gn_buf *out = gn_buf_new(0);
	struct gn_pool *pool = gn_pool_new();
	size_t pos = 0, avail = 0;
	while (pos < len) {
		size_t before = avail;
		avail = avail + step > len - pos ? len - pos : avail + step;
		size_t used = 0;
		enum imap_read rd = imap_reader_feed(r, (const char *)in + pos, avail, &used);
		if (used > avail)
			abort();
		pos += used;
		avail -= used;
		if (rd == IMAP_READ_COMMAND) {
			size_t n;
			const char *c = imap_reader_command(r, &n);
			if (n > lim->max_command + 2)
				abort();
			struct imap_command cmd;
			const char *code, *err;
			int pr = imap_parse(pool, lim, c, n, &cmd, &code, &err);
			unsigned total = 0;
			if (pr == 0)
				check_args(cmd.args, cmd.count, 0, lim, &total);
			(void)gn_buf_printf(out, "C%zu:%d:%s|", n, pr, pr == 0 ? cmd.name : err);
			gn_pool_clear(pool);
			imap_reader_next(r);
		} else if (rd == IMAP_READ_LITERAL) {
			if (imap_reader_literal_size(r) > lim->max_literal)
				abort();
			(void)gn_buf_printf(out, "L%zu|", imap_reader_literal_size(r));
			if (imap_reader_literal_size(r) % 3 == 1) {
				/* Refused: as the session does when it answers. */
				imap_reader_reject(r);
				(void)gn_buf_append_str(out, "R|");
			} else {
				imap_reader_literal_go(r);
			}
		} else if (rd == IMAP_READ_MESSAGE) {
			/* APPEND's message: taken, refused or skipped by its size,
			 * as the session does (cmd-append.c). */
			const char *args;
			size_t args_len, msize;
			bool sync, l8;
			imap_reader_message(r, &args, &args_len, &msize, &sync, &l8);
			struct imap_arg *a;
			unsigned na;
			const char *code, *err;
			int pr = imap_parse_args(pool, lim, args, args_len, &a, &na, &code, &err);
			gn_pool_clear(pool);
			(void)gn_buf_printf(out, "M%zu:%d|", msize, pr);
			if (msize % 3 == 1 && sync) {
				imap_reader_reject(r);
			} else if (msize % 3 == 1) {
				if (!imap_reader_skip(r, "t", "NO", "TOOBIG", "refused"))
					break;
			} else {
				imap_reader_message_go(r);
			}
		} else if (rd == IMAP_READ_DATA) {
			const char *d;
			size_t n;
			bool last = imap_reader_data(r, &d, &n);
			if (n > used || d + n != (const char *)in + pos)
				abort();
			/* A message holding "!" fails, wherever its chunks end. */
			if (memchr(d, '!', n) != NULL)
				(void)imap_reader_skip(r, "t", "NO", "UNAVAILABLE", "failed");
			else if (last)
				(void)gn_buf_append_str(out, "D|");
		} else if (rd == IMAP_READ_ERROR) {
			(void)gn_buf_printf(out, "E%s%s|", imap_reader_error_status(r), imap_reader_error_tag(r));
			imap_reader_next(r);
		} else if (rd == IMAP_READ_FATAL) {
			(void)gn_buf_append_str(out, "F|");
			break;
		} else if (used == 0 && avail == len - pos && before == avail) {
			break;
		}
	}
	imap_reader_free(&r);
	gn_pool_free(&pool);
	return gn_buf_steal(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = (size_t)data[0] % 13 + 1;
	struct imap_limits lim;
	imap_limits_init(&lim);
	if (data[1] & 1) {
		lim.max_line = 8 + (size_t)data[1];
		lim.max_command = 16 + (size_t)data[1] * 2;
		lim.max_literal = (size_t)data[1] / 2;
		lim.max_skip = (size_t)data[1] * 3;
		lim.max_depth = 1 + data[1] % 5;
		lim.max_args = 1 + data[1] % 11;
	}
	if (data[1] & 2)
		lim.max_nonsync = (size_t)data[0];	/* LITERAL- */
	data += 2;
	size -= 2;
	char *whole = run(&lim, data, size, size > 0 ? size : 1);
	char *chunked = run(&lim, data, size, step);
	if (strcmp(whole, chunked) != 0) {
		fprintf(stderr, "step %zu differs:\n%s\n%s\n", step, whole, chunked);
		abort();
	}
	gn_free(whole);
	gn_free(chunked);
	return 0;
}
