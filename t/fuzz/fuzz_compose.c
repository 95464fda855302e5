/*
 * t/fuzz/fuzz_compose.c: libFuzzer target for core/mail/compose.c.  What
 * the composer writes must read back: the core's MIME parser finds no
 * problem, every line is CRLF-terminated and at most 78 octets, the
 * subject and every filename decode to what was given,
 * and every file's decoded size is its length.  Input the composer
 * refuses (not UTF-8, control characters) is fine; a crash or a message
 * that does not read back is a finding.
 *
 *   t/fuzz/build.sh $OUT
 *   $OUT/fuzz_compose -max_total_time=600 -max_len=4096 $OUT/corpus-compose t/fuzz/corpus/compose
 *
 * The first input byte chooses the parts: bit 0 text, bit 1 HTML, bits
 * 2-3 alternative files, 4-5 inline files, 6-7 attached files (0 to 3
 * each).  The rest is split at NUL bytes into the subject, the display
 * name, the text, the HTML, then a filename and data per file.
 */
#include "mail/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gannet/compose.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fields {
	const char *v[32];
	size_t n;
};

static void split(struct gn_pool *pool, const uint8_t *d, size_t n, struct fields *f)
{
	size_t start = 0;
	f->n = 0;
	for (size_t i = 0; i <= n && f->n < 32; i++) {
		if (i == n || d[i] == 0) {
			f->v[f->n++] = gn_pool_strndup(pool, (const char *)d + start, i - start);
			start = i + 1;
		}
	}
}

static const char *field(const struct fields *f, size_t i)
{
	return i < f->n ? f->v[i] : "";
}

static void leaves(const struct gn_mime_part *p, const struct gn_mime_part **out, size_t *n)
{
	size_t c = gn_mime_part_child_count(p);
	if (c == 0) {
		if (*n < 16)
			out[*n] = p;
		(*n)++;
		return;
	}
	for (size_t i = 0; i < c; i++)
		leaves(gn_mime_part_child(p, i), out, n);
}

static bool same_trimmed(const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return true;
	while (*want == ' ' || *want == '\t')
		want++;
	size_t n = strlen(want);
	while (n > 0 && (want[n - 1] == ' ' || want[n - 1] == '\t'))
		n--;
	return strlen(got) == n && memcmp(got, want, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct gn_pool *pool = gn_pool_new();
	struct fields f;
	split(pool, data + 1, size - 1, &f);
	unsigned flags = data[0];
	size_t nalt = (flags >> 2) & 3, ninl = (flags >> 4) & 3, natt = (flags >> 6) & 3;
	struct gn_compose_file files[9];
	for (size_t i = 0; i < nalt + ninl + natt; i++) {
		const char *d = field(&f, 5 + 2 * i);
		files[i] = (struct gn_compose_file){ field(&f, 4 + 2 * i), NULL,
						     i < nalt + ninl ? "<cid@fuzz>" : NULL, d, strlen(d) };
	}
	struct gn_compose_address from = { field(&f, 1), "a@example.com" };
	struct gn_compose_address to = { NULL, "b@example.org" };
	struct gn_compose c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.from = &from;
	c.to = &to;
	c.n_to = 1;
	c.subject = field(&f, 0);
	c.text = (flags & 1) || !(flags & 2) ? field(&f, 2) : NULL;
	c.html = flags & 2 ? field(&f, 3) : NULL;
	c.alternative_files = files;
	c.n_alternative_files = nalt;
	c.inline_files = files + nalt;
	c.n_inline_files = ninl;
	c.attached_files = files + nalt + ninl;
	c.n_attached_files = natt;
	c.host = "fuzz.example";
	c.date = 1700000000;
	struct gn_compose_result r;
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	if (gn_compose(pool, &c, &r) < 0) {
		if (r.error != GN_COMPOSE_USER || r.data != NULL)
			abort();
		gn_pool_free(&pool);
		return 0;
	}
	/* CRLF lines of at most 78 octets. */
	size_t line = 0;
	for (size_t i = 0; i < r.len; i++) {
		if (r.data[i] == '\r' && i + 1 < r.len && r.data[i + 1] == '\n') {
			i++;
			line = 0;
		} else if (r.data[i] == '\r' || r.data[i] == '\n' || ++line > 78) {
			abort();
		}
	}
	struct gn_mime_message *m = gn_mime_parse(r.data, r.len, NULL);
	if (gn_mime_message_problem_count(m) != 0)
		abort();
	const char *subj = gn_mime_message_field(m, GN_MIME_SUBJECT);
	if (c.subject[0] != '\0' && !same_trimmed(subj != NULL ? subj : "", c.subject))
		abort();
	const struct gn_mime_part *lv[16];
	size_t nl = 0, ntext = (c.text != NULL) + (c.html != NULL);
	leaves(gn_mime_message_root(m), lv, &nl);
	if (nl != ntext + nalt + ninl + natt)
		abort();
	for (size_t i = 0; i < nalt + ninl + natt; i++) {
		const char *fn = gn_mime_part_filename(lv[ntext + i]);
		if (files[i].name[0] != '\0' && (fn == NULL || strcmp(fn, files[i].name) != 0))
			abort();
		if (gn_mime_part_decoded_size(lv[ntext + i]) != files[i].len)
			abort();
	}
	gn_mime_message_free(&m);
	gn_free(r.data);
	gn_pool_free(&pool);
	return 0;
}
