/*
 * t/fuzz/fuzz_dmarc.c: libFuzzer target for the mailauth module's DMARC
 * record parser (modules/mailauth/dmarc-record.c).
 *
 * The input is a TXT record's text.  Besides not crashing (under
 * AddressSanitizer and UBSan):
 *   - a record that parses has v=DMARC1 first, a policy, pct 0..100,
 *     adkim and aspf 'r' or 's', at most DMARC_MAX_TAGS tags;
 *   - it parses again, to the same record, from its tags written back as
 *     "name=value; " (the parser keeps names and values, and nothing
 *     between tags matters);
 *   - what the selection test takes for a DMARC record and parses has
 *     "v" with the value "DMARC1" as its first tag.
 * Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const struct dmarc_record *a, const struct dmarc_record *b)
{
	if (a->p != b->p || a->sp != b->sp || a->pct != b->pct || a->adkim != b->adkim ||
	    a->aspf != b->aspf || a->p_from_rua != b->p_from_rua || a->n_tags != b->n_tags)
		return false;
	for (size_t i = 0; i < a->n_tags; i++)
		if (strcmp(a->tags[i].name, b->tags[i].name) != 0 ||
		    strcmp(a->tags[i].value, b->tags[i].value) != 0 ||
		    a->tags[i].known != b->tags[i].known)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gn_pool *pool = gn_pool_new();
	const char *text = (const char *)data;
	bool selected = dmarc_record_is_dmarc(text, size);
	struct dmarc_record *rec;
	const char *err;
	if (dmarc_record_parse(pool, text, size, &rec, &err) < 0) {
		if (err == NULL || *err == '\0')
			abort();	/* an error without a reason */
		gn_pool_free(&pool);
		return 0;
	}
	if (rec->n_tags == 0 || rec->n_tags > DMARC_MAX_TAGS ||
	    strcmp(rec->tags[0].name, "v") != 0 || strcmp(rec->tags[0].value, "DMARC1") != 0)
		abort();
	if (rec->p == DMARC_POLICY_UNSET || rec->pct > 100 ||
	    (rec->adkim != 'r' && rec->adkim != 's') || (rec->aspf != 'r' && rec->aspf != 's'))
		abort();
	(void)selected;
	struct gn_buf *b = gn_buf_new(0);
	for (size_t i = 0; i < rec->n_tags; i++)
		gn_buf_printf(b, "%s=%s; ", rec->tags[i].name, rec->tags[i].value);
	struct dmarc_record *again;
	if (gn_buf_len(b) <= DMARC_MAX_RECORD) {
		if (dmarc_record_parse(pool, gn_buf_data(b), gn_buf_len(b), &again, &err) < 0 ||
		    !same(rec, again))
			abort();
		if (!dmarc_record_is_dmarc(gn_buf_data(b), gn_buf_len(b)))
			abort();	/* "v=DMARC1; ..." must be selected */
	}
	gn_buf_free(&b);
	gn_pool_free(&pool);
	return 0;
}
