/*
 * core/dns/dane.c: DANE for SMTP (RFC 7672): does a server's certificate
 * chain match the TLSA records of its MX host?
 *
 * Only what RFC 7672 3.1.3 allows for SMTP is usable: DANE-TA(2) and
 * DANE-EE(3), selector Cert(0) or SPKI(1), matching Full(0), SHA2-256(1)
 * or SHA2-512(2).  PKIX-TA(0) and PKIX-EE(1) are unusable (there is no
 * trusted CA list for MX hosts), as are unknown values.
 *
 *   DANE-EE   the leaf certificate (or its SubjectPublicKeyInfo) matches;
 *             no name check and no validity dates (RFC 7672 3.1.1).
 *   DANE-TA   a certificate of the chain the server sent, above the leaf,
 *             matches; the chain below it verifies up to it (signatures,
 *             dates, CA flags: GnuTLS with that certificate as the only
 *             trust anchor), and the leaf names the MX host (RFC 7672
 *             3.2.2, 3.2.3; the reference identifier is the MX host name,
 *             the TLSA base domain: the next-hop domain is not accepted).
 *             RFC 7672 3.2.2 says servers with DANE-TA records include
 *             the TA certificate in their chain; a TA given only as a
 *             public key that the chain does not carry is not matched.
 *
 * Matching by hand with GnuTLS (hashes, X.509 parsing, the trust-list
 * verifier) rather than libgnutls-dane: libgnutls-dane does its own DNS
 * lookups or wants its own query objects, applies RFC 6698 semantics
 * (PKIX usages, names for DANE-EE) that RFC 7672 changes for SMTP, and
 * would be a new library for ~150 lines that the unit tests cover
 * (t/unit/test_dane.c).
 */
#include "dns/internal.h"

#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

bool dns_dane_usable(const struct gn_dns_tlsa *r)
{
	if (r->usage != DNS_DANE_TA && r->usage != DNS_DANE_EE)
		return false;
	if (r->selector > 1 || r->matching_type > 2)
		return false;
	/* A digest of the wrong length can never match: unusable too. */
	if (r->matching_type == 1 && r->len != 32)
		return false;
	if (r->matching_type == 2 && r->len != 64)
		return false;
	return r->len > 0;
}

size_t dns_dane_count_usable(const struct gn_dns_tlsa *recs, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += dns_dane_usable(&recs[i]);
	return k;
}

/* The certificate's selected data (the whole DER or its SPKI) compared
 * with the record: 1 match, 0 not. */
static int rec_match(const struct gn_dns_tlsa *r, const gnutls_datum_t *der)
{
	gnutls_datum_t sel = *der, spki = { NULL, 0 };
	int match = 0;
	if (r->selector == 1) {
		gnutls_pubkey_t pk;
		if (gnutls_pubkey_init(&pk) < 0)
			return 0;
		if (gnutls_pubkey_import_x509_raw(pk, der, GNUTLS_X509_FMT_DER, 0) < 0 ||
		    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &spki) < 0) {
			gnutls_pubkey_deinit(pk);
			return 0;
		}
		gnutls_pubkey_deinit(pk);
		sel = spki;
	}
	unsigned char digest[64];
	switch (r->matching_type) {
	case 0:
		match = sel.size == r->len && memcmp(sel.data, r->data, r->len) == 0;
		break;
	case 1:
		match = r->len == 32 && gnutls_hash_fast(GNUTLS_DIG_SHA256, sel.data, sel.size, digest) == 0 &&
			memcmp(digest, r->data, 32) == 0;
		break;
	case 2:
		match = r->len == 64 && gnutls_hash_fast(GNUTLS_DIG_SHA512, sel.data, sel.size, digest) == 0 &&
			memcmp(digest, r->data, 64) == 0;
		break;
	}
	gnutls_free(spki.data);
	return match;
}

/* DANE-TA: chain[0..ta-1] verifies up to chain[ta] alone, and the leaf
 * names host.  0, or -1 with *why. */
static int ta_verify(const gnutls_datum_t *chain, size_t ta, const char *host, const char **why)
{
	gnutls_x509_crt_t crts[DNS_DANE_MAX_CHAIN], anchor = NULL;
	gnutls_x509_trust_list_t list = NULL;
	size_t n = 0;
	int ret = -1;
	unsigned status = 0;

	*why = "DANE-TA: a certificate of the chain does not parse";
	for (; n < ta; n++) {
		if (gnutls_x509_crt_init(&crts[n]) < 0)
			goto out;
		if (gnutls_x509_crt_import(crts[n], &chain[n], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[n]);
			goto out;
		}
	}
	if (gnutls_x509_crt_init(&anchor) < 0)
		goto out;
	if (gnutls_x509_crt_import(anchor, &chain[ta], GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(anchor);
		goto out;
	}
	if (gnutls_x509_trust_list_init(&list, 0) < 0) {
		gnutls_x509_crt_deinit(anchor);
		goto out;
	}
	/* The list owns the anchor from here. */
	if (gnutls_x509_trust_list_add_cas(list, &anchor, 1, 0) != 1) {
		gnutls_x509_crt_deinit(anchor);
		*why = "DANE-TA: the trust anchor is not usable";
		goto out;
	}
	if (gnutls_x509_trust_list_verify_crt2(list, crts, (unsigned)n, NULL, 0, 0, &status, NULL) < 0 ||
	    status != 0) {
		*why = (status & GNUTLS_CERT_EXPIRED) ? "DANE-TA: the chain to the trust anchor has expired"
			: (status & GNUTLS_CERT_NOT_ACTIVATED) ? "DANE-TA: the chain to the trust anchor is not yet valid"
			: "DANE-TA: the chain does not verify up to the trust anchor";
		goto out;
	}
	/* RFC 7672 3.2.3: with DANE-TA the leaf must name the host. */
	if (!gnutls_x509_crt_check_hostname2(crts[0], host, 0)) {
		*why = "DANE-TA: the certificate does not name the MX host";
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (list != NULL)
		gnutls_x509_trust_list_deinit(list, 1);
	return ret;
}

int dns_dane_match(const struct gn_dns_tlsa *recs, size_t n_recs, const unsigned char *const *certs,
		   const size_t *lens, size_t n_certs, const char *host, int *usage_r,
		   const char **error_r)
{
	gnutls_datum_t chain[DNS_DANE_MAX_CHAIN];
	const char *ta_why = NULL;

	if (n_certs == 0) {
		*error_r = "DANE: the server sent no certificate";
		return 0;
	}
	if (n_certs > DNS_DANE_MAX_CHAIN) {
		*error_r = "DANE: the server's certificate chain is too long";
		return 0;
	}
	for (size_t i = 0; i < n_certs; i++) {
		chain[i].data = (unsigned char *)certs[i];
		chain[i].size = (unsigned)lens[i];
	}
	/* DANE-EE first: the cheapest, and enough when it matches. */
	for (size_t i = 0; i < n_recs; i++) {
		if (dns_dane_usable(&recs[i]) && recs[i].usage == DNS_DANE_EE &&
		    rec_match(&recs[i], &chain[0])) {
			*usage_r = DNS_DANE_EE;
			return 1;
		}
	}
	for (size_t i = 0; i < n_recs; i++) {
		if (!dns_dane_usable(&recs[i]) || recs[i].usage != DNS_DANE_TA)
			continue;
		for (size_t k = 1; k < n_certs; k++) {
			if (!rec_match(&recs[i], &chain[k]))
				continue;
			if (ta_verify(chain, k, host, &ta_why) == 0) {
				*usage_r = DNS_DANE_TA;
				return 1;
			}
		}
	}
	*error_r = ta_why != NULL ? ta_why : "DANE: no TLSA record matches the server's certificate";
	return 0;
}
