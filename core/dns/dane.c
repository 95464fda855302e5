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
 *             trust anchor), and the leaf names one of the reference
 *             identifiers (RFC 7672 3.2.2, 3.2.3): the caller passes the
 *             MX host name, its CNAME expansion and the next-hop domain.
 *             A TA given as a public key in full (2 1 0) that the chain
 *             does not carry (RFC 7672 3.2.2 allows it): some certificate
 *             of the chain must be signed by that key (its signature
 *             checked over its TBSCertificate), be within its dates and,
 *             above the leaf, be a CA; the chain below it verifies up to
 *             it as above.  A TA given by digest (2 x 1, 2 x 2) can only
 *             match a certificate of the chain: without it there is no
 *             key to check a signature with, and that is a failure that
 *             says so.  A TA certificate in full (2 0 0) that the chain
 *             does not carry is the trust anchor itself: the whole chain
 *             must verify up to it.
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
#include <time.h>
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

/* Whether the leaf names one of the reference identifiers (RFC 7672
 * 3.2.3: wildcards only as the whole leftmost label, which is GnuTLS's
 * rule). */
static bool names_host(gnutls_x509_crt_t leaf, const char *const *names, size_t n_names)
{
	for (size_t i = 0; i < n_names; i++)
		if (names[i] != NULL && gnutls_x509_crt_check_hostname2(leaf, names[i], 0))
			return true;
	return false;
}

/* DANE-TA: crts (the chain's first n, leaf first) verify up to anchor
 * alone, and the leaf names a reference identifier.  The anchor is
 * consumed.  0, or -1 with *why. */
static int anchor_verify(gnutls_x509_crt_t *crts, size_t n, gnutls_x509_crt_t anchor,
			 const char *const *names, size_t n_names, const char **why)
{
	gnutls_x509_trust_list_t list = NULL;
	unsigned status = 0;
	int ret = -1;

	if (gnutls_x509_trust_list_init(&list, 0) < 0) {
		gnutls_x509_crt_deinit(anchor);
		*why = "DANE-TA: out of memory";
		return -1;
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
	if (!names_host(crts[0], names, n_names)) {
		*why = "DANE-TA: the certificate names neither the MX host nor the next-hop domain";
		goto out;
	}
	ret = 0;
out:
	gnutls_x509_trust_list_deinit(list, 1);
	return ret;
}

/* The chain's first n certificates parsed into crts.  0, or -1 (none
 * left to free). */
static int import_chain(const gnutls_datum_t *chain, size_t n, gnutls_x509_crt_t *crts)
{
	for (size_t i = 0; i < n; i++) {
		if (gnutls_x509_crt_init(&crts[i]) < 0)
			crts[i] = NULL;
		if (crts[i] == NULL || gnutls_x509_crt_import(crts[i], &chain[i], GNUTLS_X509_FMT_DER) < 0) {
			for (size_t k = 0; k <= i; k++)
				if (crts[k] != NULL)
					gnutls_x509_crt_deinit(crts[k]);
			return -1;
		}
	}
	return 0;
}

static void free_chain(gnutls_x509_crt_t *crts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
}

/* A TA certificate of the chain, chain[ta] (ta > 0): chain[0..ta-1]
 * verifies up to it and the leaf names a reference identifier. */
static int ta_verify(const gnutls_datum_t *chain, size_t ta, const char *const *names, size_t n_names,
		     const char **why)
{
	gnutls_x509_crt_t crts[DNS_DANE_MAX_CHAIN], anchor;
	*why = "DANE-TA: a certificate of the chain does not parse";
	if (import_chain(chain, ta, crts) < 0)
		return -1;
	if (gnutls_x509_crt_init(&anchor) < 0) {
		free_chain(crts, ta);
		return -1;
	}
	if (gnutls_x509_crt_import(anchor, &chain[ta], GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(anchor);
		free_chain(crts, ta);
		return -1;
	}
	int ret = anchor_verify(crts, ta, anchor, names, n_names, why);
	free_chain(crts, ta);
	return ret;
}

/* A TA certificate in full (2 0 0) that the chain does not carry: the
 * whole chain verifies up to it. */
static int ta_cert_verify(const gnutls_datum_t *chain, size_t n, const struct gn_dns_tlsa *r,
			  const char *const *names, size_t n_names, const char **why)
{
	gnutls_x509_crt_t crts[DNS_DANE_MAX_CHAIN], anchor;
	gnutls_datum_t der = { (unsigned char *)r->data, (unsigned)r->len };
	if (gnutls_x509_crt_init(&anchor) < 0)
		return -1;
	if (gnutls_x509_crt_import(anchor, &der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(anchor);
		*why = "DANE-TA: the TLSA record's certificate does not parse";
		return -1;
	}
	if (import_chain(chain, n, crts) < 0) {
		gnutls_x509_crt_deinit(anchor);
		*why = "DANE-TA: a certificate of the chain does not parse";
		return -1;
	}
	int ret = anchor_verify(crts, n, anchor, names, n_names, why);
	free_chain(crts, n);
	return ret;
}

/* A DER length at p (avail bytes): the header's size (tag included, p
 * is at the tag) and the content's.  0, or -1 when it does not fit. */
static int der_tlv(const unsigned char *p, size_t avail, unsigned char tag, size_t *hdr_r, size_t *len_r)
{
	if (avail < 2 || p[0] != tag)
		return -1;
	size_t len = p[1], hdr = 2;
	if (len & 0x80) {
		size_t k = len & 0x7f;
		if (k == 0 || k > 4 || avail < 2 + k)
			return -1;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = (len << 8) | p[2 + i];
		hdr += k;
	}
	if (len > avail - hdr)
		return -1;
	*hdr_r = hdr;
	*len_r = len;
	return 0;
}

/* Whether pk signed crt (der its encoding): its signature checked over
 * its TBSCertificate, the first element of the Certificate SEQUENCE
 * (RFC 5280 4.1). */
static bool signed_by(gnutls_pubkey_t pk, gnutls_x509_crt_t crt, const gnutls_datum_t *der)
{
	size_t hdr, len, thdr, tlen;
	if (der_tlv(der->data, der->size, 0x30, &hdr, &len) < 0 ||
	    der_tlv(der->data + hdr, len, 0x30, &thdr, &tlen) < 0)
		return false;
	gnutls_datum_t tbs = { der->data + hdr, (unsigned)(thdr + tlen) };
	int algo = gnutls_x509_crt_get_signature_algorithm(crt);
	size_t siglen = 0;
	if (algo <= 0 || gnutls_x509_crt_get_signature(crt, NULL, &siglen) != GNUTLS_E_SHORT_MEMORY_BUFFER ||
	    siglen == 0 || siglen > der->size)
		return false;
	char *buf = gn_malloc(siglen);
	bool ok = false;
	if (gnutls_x509_crt_get_signature(crt, buf, &siglen) == 0) {
		gnutls_datum_t sig = { (unsigned char *)buf, (unsigned)siglen };
		ok = gnutls_pubkey_verify_data2(pk, (gnutls_sign_algorithm_t)algo, 0, &tbs, &sig) >= 0;
	}
	gn_free(buf);
	return ok;
}

/* A TA public key in full (2 1 0) that the chain does not carry: a
 * certificate of the chain, chain[k], is signed by it, within its dates
 * and (above the leaf) a CA; chain[0..k-1] verifies up to chain[k] and
 * the leaf names a reference identifier. */
static int ta_key_verify(const gnutls_datum_t *chain, size_t n, const struct gn_dns_tlsa *r,
			 const char *const *names, size_t n_names, const char **why)
{
	gnutls_pubkey_t pk;
	gnutls_x509_crt_t crts[DNS_DANE_MAX_CHAIN];
	gnutls_datum_t der = { (unsigned char *)r->data, (unsigned)r->len };
	time_t now = time(NULL);
	int ret = -1;

	if (gnutls_pubkey_init(&pk) < 0)
		return -1;
	if (gnutls_pubkey_import(pk, &der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_pubkey_deinit(pk);
		*why = "DANE-TA: the TLSA record's public key does not parse";
		return -1;
	}
	if (import_chain(chain, n, crts) < 0) {
		gnutls_pubkey_deinit(pk);
		*why = "DANE-TA: a certificate of the chain does not parse";
		return -1;
	}
	*why = "DANE-TA: no certificate of the chain is signed by the trust anchor's public key";
	for (size_t k = 0; k < n; k++) {
		if (!signed_by(pk, crts[k], &chain[k]))
			continue;
		unsigned ca = 0;
		if (gnutls_x509_crt_get_activation_time(crts[k]) > now ||
		    gnutls_x509_crt_get_expiration_time(crts[k]) < now) {
			*why = "DANE-TA: the certificate the trust anchor's key signed is outside its dates";
			continue;
		}
		if (k == 0) {
			if (!names_host(crts[0], names, n_names)) {
				*why = "DANE-TA: the certificate names neither the MX host nor the next-hop domain";
				continue;
			}
			ret = 0;
			break;
		}
		if (gnutls_x509_crt_get_basic_constraints(crts[k], NULL, &ca, NULL) < 0 || !ca) {
			*why = "DANE-TA: the certificate the trust anchor's key signed is not a CA";
			continue;
		}
		if (ta_verify(chain, k, names, n_names, why) == 0) {
			ret = 0;
			break;
		}
	}
	free_chain(crts, n);
	gnutls_pubkey_deinit(pk);
	return ret;
}

int dns_dane_match(const struct gn_dns_tlsa *recs, size_t n_recs, const unsigned char *const *certs,
		   const size_t *lens, size_t n_certs, const char *const *names, size_t n_names,
		   int *usage_r, const char **error_r)
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
		bool in_chain = false;
		for (size_t k = 1; k < n_certs; k++) {
			if (!rec_match(&recs[i], &chain[k]))
				continue;
			in_chain = true;
			if (ta_verify(chain, k, names, n_names, &ta_why) == 0) {
				*usage_r = DNS_DANE_TA;
				return 1;
			}
		}
		if (in_chain)
			continue;
		/* RFC 7672 3.2.2: a TA the chain does not carry. */
		int r = -1;
		if (recs[i].matching_type == 0 && recs[i].selector == 1)
			r = ta_key_verify(chain, n_certs, &recs[i], names, n_names, &ta_why);
		else if (recs[i].matching_type == 0 && recs[i].selector == 0)
			r = ta_cert_verify(chain, n_certs, &recs[i], names, n_names, &ta_why);
		else if (ta_why == NULL)
			ta_why = "DANE-TA: the trust anchor is not in the server's chain and the TLSA "
				 "record holds only its digest (RFC 7672 3.2.2)";
		if (r == 0) {
			*usage_r = DNS_DANE_TA;
			return 1;
		}
	}
	*error_r = ta_why != NULL ? ta_why : "DANE: no TLSA record matches the server's certificate";
	return 0;
}
