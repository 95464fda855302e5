/*
 * t/fuzz/fuzz_mtasts.c: libFuzzer target for MTA-STS's parsers
 * (core/queue/mtasts-policy.c): the _mta-sts TXT record and the policy
 * text (RFC 8461 3.1, 3.2), and MX matching (4.1).
 *
 * The input is given to both parsers.  Besides not crashing (under
 * AddressSanitizer and UBSan):
 *   - a refusal always says why;
 *   - a TXT record that parses has an id of 1 to 32 letters and digits;
 *   - a policy that parses has a mode, max_age 0..31557600, at most 100 mx
 *     patterns (at least one unless the mode is none), each in lower case;
 *   - each pattern without its wildcard matches itself as an MX host, and
 *     "x." before a wildcard pattern's domain matches it, "a.x." does not.
 * Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gn_pool *pool = gn_pool_new();
	const char *text = (const char *)data, *id = NULL, *err = NULL;
	int r = queue_mtasts_txt_parse(pool, text, size, &id, &err);
	if (r < 0 && (err == NULL || *err == '\0'))
		abort();
	if (r > 0) {
		size_t l = strlen(id);
		if (l == 0 || l > QUEUE_MTASTS_ID_MAX)
			abort();
		for (size_t i = 0; i < l; i++)
			if (!isalnum((unsigned char)id[i]))
				abort();
	}
	struct queue_mtasts_policy p;
	err = NULL;
	if (queue_mtasts_policy_parse(pool, text, size, &p, &err) < 0) {
		if (err == NULL || *err == '\0')
			abort();
		gn_pool_free(&pool);
		return 0;
	}
	if (p.mode < QUEUE_MTASTS_NONE || p.mode > QUEUE_MTASTS_ENFORCE || p.max_age < 0 ||
	    p.max_age > QUEUE_MTASTS_MAX_AGE_MAX || p.n_mx > QUEUE_MTASTS_MAX_MX ||
	    (p.n_mx == 0 && p.mode != QUEUE_MTASTS_NONE))
		abort();
	for (size_t i = 0; i < p.n_mx; i++) {
		const char *m = p.mx[i];
		for (const char *c = m; *c != '\0'; c++)
			if (isupper((unsigned char)*c))
				abort();
		if (strncmp(m, "*.", 2) == 0) {
			const char *one = gn_pool_printf(pool, "x.%s", m + 2);
			const char *two = gn_pool_printf(pool, "a.x.%s", m + 2);
			if (!queue_mtasts_mx_match(&p, one))
				abort();
			/* Two labels may still match another pattern of the list. */
			struct queue_mtasts_policy only = p;
			only.mx = &p.mx[i];
			only.n_mx = 1;
			if (queue_mtasts_mx_match(&only, two))
				abort();
		} else if (!queue_mtasts_mx_match(&p, m)) {
			abort();
		}
	}
	gn_pool_free(&pool);
	return 0;
}
