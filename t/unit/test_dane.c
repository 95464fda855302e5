/*
 * t/unit/test_dane.c: DANE matching for SMTP (core/dns/dane.c, RFC 7672)
 * against certificates made here with GnuTLS: which records are usable
 * (DANE-TA and DANE-EE only), DANE-EE by certificate and by public key
 * with SHA-256, SHA-512 and in full, without a name or date check;
 * DANE-TA through a test CA in the chain, with the name and the chain
 * checked; DANE-TA by a key or certificate in full that the chain does
 * not carry (RFC 7672 3.2.2: the chain's signature checked with it);
 * the reference identifiers (MX host, its CNAME expansion, the next-hop
 * domain); and what does not match.
 */
#include "dns/internal.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

static void bail(const char *why)
{
	printf("Bail out! %s\n", why);
	exit(1);
}

struct cert {
	gnutls_x509_crt_t crt;
	gnutls_x509_privkey_t key;
	gnutls_datum_t der;
	gnutls_datum_t spki;
};

/* A certificate for name (a CA when ca), signed by issuer (self-signed
 * when NULL), valid from not_before for lifetime seconds. */
static void make_cert(struct cert *c, const char *name, const struct cert *issuer, bool ca,
		      time_t not_before, time_t lifetime)
{
	static unsigned serial = 1;
	unsigned char sn[4] = { 0, 0, 0, (unsigned char)serial++ };
	gnutls_pubkey_t pk;

	if (gnutls_x509_privkey_init(&c->key) < 0 ||
	    gnutls_x509_privkey_generate(c->key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&c->crt) < 0)
		bail("gnutls: cannot make a key");
	gnutls_x509_crt_set_version(c->crt, 3);
	gnutls_x509_crt_set_serial(c->crt, sn, sizeof(sn));
	gnutls_x509_crt_set_activation_time(c->crt, not_before);
	gnutls_x509_crt_set_expiration_time(c->crt, not_before + lifetime);
	gnutls_x509_crt_set_dn_by_oid(c->crt, GNUTLS_OID_X520_COMMON_NAME, 0, name, (unsigned)strlen(name));
	gnutls_x509_crt_set_key(c->crt, c->key);
	gnutls_x509_crt_set_basic_constraints(c->crt, ca ? 1 : 0, -1);
	if (ca)
		gnutls_x509_crt_set_key_usage(c->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	else
		gnutls_x509_crt_set_subject_alt_name(c->crt, GNUTLS_SAN_DNSNAME, name,
						     (unsigned)strlen(name), GNUTLS_FSAN_SET);
	if (gnutls_x509_crt_sign2(c->crt, issuer != NULL ? issuer->crt : c->crt,
				  issuer != NULL ? issuer->key : c->key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_DER, &c->der) < 0)
		bail("gnutls: cannot sign a certificate");
	if (gnutls_pubkey_init(&pk) < 0 || gnutls_pubkey_import_x509(pk, c->crt, 0) < 0 ||
	    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &c->spki) < 0)
		bail("gnutls: cannot export a public key");
	gnutls_pubkey_deinit(pk);
}

static void cert_free(struct cert *c)
{
	gnutls_x509_crt_deinit(c->crt);
	gnutls_x509_privkey_deinit(c->key);
	gnutls_free(c->der.data);
	gnutls_free(c->spki.data);
}

static unsigned char hashes[16][64];
static unsigned n_hashes;

/* A TLSA record over c: selector 0 the certificate, 1 its public key;
 * matching 0 in full, 1 SHA-256, 2 SHA-512. */
static struct gn_dns_tlsa rec(uint8_t usage, uint8_t selector, uint8_t mtype, const struct cert *c)
{
	struct gn_dns_tlsa r = { usage, selector, mtype, NULL, 0 };
	const gnutls_datum_t *d = selector == 0 ? &c->der : &c->spki;
	if (mtype == 0) {
		r.data = d->data;
		r.len = d->size;
		return r;
	}
	unsigned char *h = hashes[n_hashes++ % 16];
	gnutls_hash_fast(mtype == 1 ? GNUTLS_DIG_SHA256 : GNUTLS_DIG_SHA512, d->data, d->size, h);
	r.data = h;
	r.len = mtype == 1 ? 32 : 64;
	return r;
}

static int match(const struct gn_dns_tlsa *recs, size_t n, const struct cert *const *chain, size_t nc,
		 const char *host, int *usage_r, const char **error_r)
{
	const unsigned char *certs[16];
	size_t lens[16];
	for (size_t i = 0; i < nc && i < 16; i++) {
		certs[i] = chain[i]->der.data;
		lens[i] = chain[i]->der.size;
	}
	*usage_r = -1;
	*error_r = NULL;
	const char *names[1] = { host };
	return dns_dane_match(recs, n, certs, lens, nc, names, 1, usage_r, error_r);
}

static int match_names(const struct gn_dns_tlsa *recs, size_t n, const struct cert *const *chain,
		       size_t nc, const char *const *names, size_t n_names, int *usage_r,
		       const char **error_r)
{
	const unsigned char *certs[16];
	size_t lens[16];
	for (size_t i = 0; i < nc && i < 16; i++) {
		certs[i] = chain[i]->der.data;
		lens[i] = chain[i]->der.size;
	}
	*usage_r = -1;
	*error_r = NULL;
	return dns_dane_match(recs, n, certs, lens, nc, names, n_names, usage_r, error_r);
}

static bool says(const char *err, const char *what)
{
	return err != NULL && strstr(err, what) != NULL;
}

int main(void)
{
	time_t now = time(NULL);
	struct cert ca, other_ca, leaf, leaf_other, expired, self, stranger;
	const char *err;
	int usage;

	make_cert(&ca, "Test DANE CA", NULL, true, now - 3600, 86400 * 30);
	make_cert(&other_ca, "Other CA", NULL, true, now - 3600, 86400 * 30);
	make_cert(&leaf, "mx.dane.example", &ca, false, now - 3600, 86400);
	make_cert(&leaf_other, "mx.dane.example", &other_ca, false, now - 3600, 86400);
	make_cert(&expired, "mx.dane.example", &ca, false, now - 86400 * 10, 86400);
	make_cert(&self, "whatever.invalid", NULL, false, now - 86400 * 10, 86400);
	make_cert(&stranger, "mx.dane.example", NULL, false, now - 3600, 86400);

	/* ---- usable records (RFC 7672 3.1.3) ---- */
	struct gn_dns_tlsa r = rec(3, 1, 1, &leaf);
	ok(dns_dane_usable(&r), "3 1 1 (DANE-EE, SPKI, SHA-256) is usable");
	r = rec(2, 0, 1, &ca);
	ok(dns_dane_usable(&r), "2 0 1 (DANE-TA, certificate, SHA-256) is usable");
	r = rec(3, 0, 2, &leaf);
	ok(dns_dane_usable(&r), "3 0 2 (SHA-512) is usable");
	r = rec(3, 1, 0, &leaf);
	ok(dns_dane_usable(&r), "3 1 0 (the key in full) is usable");
	r = rec(1, 1, 1, &leaf);
	ok(!dns_dane_usable(&r), "1 1 1 (PKIX-EE) is not usable for SMTP");
	r = rec(0, 0, 1, &ca);
	ok(!dns_dane_usable(&r), "0 0 1 (PKIX-TA) is not usable for SMTP");
	r = rec(3, 2, 1, &leaf);
	ok(!dns_dane_usable(&r), "selector 2 is unknown: not usable");
	r = rec(3, 1, 1, &leaf);
	r.matching_type = 3;
	ok(!dns_dane_usable(&r), "matching type 3 is unknown: not usable");
	r = rec(3, 1, 1, &leaf);
	r.len = 20;
	ok(!dns_dane_usable(&r), "a SHA-256 record of 20 bytes is not usable");
	struct gn_dns_tlsa mixed[3] = { rec(1, 1, 1, &leaf), rec(3, 1, 1, &leaf), rec(0, 0, 1, &ca) };
	ok(dns_dane_count_usable(mixed, 3) == 1, "one usable record of three");

	/* ---- DANE-EE ---- */
	const struct cert *chain1[] = { &leaf, &ca };
	static const uint8_t ee[][3] = { { 3, 1, 1 }, { 3, 0, 1 }, { 3, 1, 2 }, { 3, 0, 2 }, { 3, 1, 0 }, { 3, 0, 0 } };
	for (size_t i = 0; i < sizeof(ee) / sizeof(ee[0]); i++) {
		r = rec(ee[i][0], ee[i][1], ee[i][2], &leaf);
		ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_EE,
		   "DANE-EE %u %u %u matches the leaf", ee[i][0], ee[i][1], ee[i][2]);
	}
	const struct cert *chain_self[] = { &self };
	r = rec(3, 1, 1, &self);
	ok(match(&r, 1, chain_self, 1, "mx.dane.example", &usage, &err) == 1,
	   "DANE-EE: an expired self-signed certificate for another name matches (no name, no dates)");
	r = rec(3, 1, 1, &stranger);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0 && err != NULL &&
	   strstr(err, "no TLSA record matches") != NULL, "DANE-EE: another key does not match");
	r = rec(3, 1, 1, &ca);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0,
	   "DANE-EE: a record for a certificate above the leaf does not match");
	r = rec(1, 1, 1, &leaf);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0,
	   "PKIX-EE for the very leaf: not matched (unusable for SMTP)");
	r = rec(3, 1, 1, &leaf);
	((uint8_t *)r.data)[0] ^= 1;
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0,
	   "DANE-EE: a digest one bit off does not match");

	/* ---- DANE-TA ---- */
	r = rec(2, 0, 1, &ca);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "DANE-TA 2 0 1: the CA in the chain, the leaf names the host");
	r = rec(2, 1, 1, &ca);
	ok(match(&r, 1, chain1, 2, "MX.Dane.Example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "DANE-TA 2 1 1: by the CA's key; names compare without case");
	r = rec(2, 0, 2, &ca);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 1, "DANE-TA 2 0 2 (SHA-512)");
	r = rec(2, 0, 1, &ca);
	ok(match(&r, 1, chain1, 2, "mx2.dane.example", &usage, &err) == 0 && err != NULL &&
	   strstr(err, "names neither the MX host nor the next-hop domain") != NULL,
	   "DANE-TA: a leaf for another name does not match");
	const struct cert *chain_leaf_only[] = { &leaf };
	ok(match(&r, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "holds only its digest"),
	   "DANE-TA 2 0 1: a chain without the TA certificate does not match, and says why");
	const struct cert *chain_wrong[] = { &leaf_other, &ca };
	ok(match(&r, 1, chain_wrong, 2, "mx.dane.example", &usage, &err) == 0 && err != NULL &&
	   strstr(err, "does not verify") != NULL,
	   "DANE-TA: a leaf another CA signed, with the TA appended, does not match");
	const struct cert *chain_expired[] = { &expired, &ca };
	ok(match(&r, 1, chain_expired, 2, "mx.dane.example", &usage, &err) == 0 && err != NULL &&
	   strstr(err, "expired") != NULL, "DANE-TA: an expired leaf does not match");
	r = rec(2, 0, 1, &leaf);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0,
	   "DANE-TA: a record for the leaf itself is no trust anchor");
	r = rec(0, 0, 1, &ca);
	ok(match(&r, 1, chain1, 2, "mx.dane.example", &usage, &err) == 0,
	   "PKIX-TA for the CA: not matched (unusable for SMTP)");

	/* ---- DANE-TA in full, not in the chain (RFC 7672 3.2.2) ---- */
	struct cert inter, leaf_inter, notca, leaf_notca, hop;
	make_cert(&inter, "Test Intermediate", &ca, true, now - 3600, 86400 * 20);
	make_cert(&leaf_inter, "mx.dane.example", &inter, false, now - 3600, 86400);
	make_cert(&notca, "not-a-ca.dane.example", &ca, false, now - 3600, 86400 * 20);
	make_cert(&leaf_notca, "mx.dane.example", &notca, false, now - 3600, 86400);
	make_cert(&hop, "hop.example", &ca, false, now - 3600, 86400);
	r = rec(2, 1, 0, &ca);
	ok(match(&r, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "DANE-TA 2 1 0: the leaf alone, signed by the TA's key");
	ok(match(&r, 1, chain_leaf_only, 1, "mx2.dane.example", &usage, &err) == 0 &&
	   says(err, "names neither"), "DANE-TA 2 1 0: the leaf must still name the host");
	const struct cert *chain_other_only[] = { &leaf_other };
	ok(match(&r, 1, chain_other_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "no certificate of the chain is signed by the trust anchor's public key"),
	   "DANE-TA 2 1 0: a leaf another CA signed does not match, and says why");
	const struct cert *chain_inter[] = { &leaf_inter, &inter };
	ok(match(&r, 1, chain_inter, 2, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "DANE-TA 2 1 0: leaf and intermediate, the intermediate signed by the TA's key");
	const struct cert *chain_inter_leaf[] = { &leaf_inter };
	ok(match(&r, 1, chain_inter_leaf, 1, "mx.dane.example", &usage, &err) == 0,
	   "DANE-TA 2 1 0: without the intermediate the leaf does not reach the key");
	const struct cert *chain_notca[] = { &leaf_notca, &notca };
	ok(match(&r, 1, chain_notca, 2, "mx.dane.example", &usage, &err) == 0 && says(err, "not a CA"),
	   "DANE-TA 2 1 0: an issuer that is no CA does not count");
	const struct cert *chain_exp_only[] = { &expired };
	ok(match(&r, 1, chain_exp_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "outside its dates"), "DANE-TA 2 1 0: an expired leaf does not match");
	const struct cert *chain_inter_bad[] = { &leaf_other, &inter };
	ok(match(&r, 1, chain_inter_bad, 2, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "does not verify"), "DANE-TA 2 1 0: a leaf the intermediate did not sign does not match");
	struct gn_dns_tlsa junk = r;
	unsigned char garbage[40];
	memset(garbage, 0x30, sizeof(garbage));
	junk.data = garbage;
	junk.len = sizeof(garbage);
	ok(match(&junk, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "does not parse"), "DANE-TA 2 1 0: a record that is no public key does not match");
	r = rec(2, 1, 0, &other_ca);
	ok(match(&r, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 0,
	   "DANE-TA 2 1 0: another CA's key does not match");
	r = rec(2, 0, 0, &ca);
	ok(match(&r, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "DANE-TA 2 0 0: the TA certificate in the record, the leaf alone in the chain");
	ok(match(&r, 1, chain_other_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "does not verify"), "DANE-TA 2 0 0: a leaf another CA signed does not match");
	r = rec(2, 1, 1, &ca);
	ok(match(&r, 1, chain_leaf_only, 1, "mx.dane.example", &usage, &err) == 0 &&
	   says(err, "holds only its digest"), "DANE-TA 2 1 1 not in the chain: a failure that says why");

	/* ---- reference identifiers (RFC 7672 3.2.2) ---- */
	const char *cname_names[] = { "alias.dane.example", "mx.dane.example", "dane.example" };
	r = rec(2, 0, 1, &ca);
	ok(match_names(&r, 1, chain1, 2, cname_names, 3, &usage, &err) == 1,
	   "DANE-TA: the leaf names the CNAME expansion, not the MX host name: matches");
	const char *hop_names[] = { "mx.hop.example", NULL, "hop.example" };
	const struct cert *chain_hop[] = { &hop, &ca };
	ok(match_names(&r, 1, chain_hop, 2, hop_names, 3, &usage, &err) == 1,
	   "DANE-TA: the leaf names the next-hop domain: matches (no expansion: NULL skipped)");
	ok(match_names(&r, 1, chain_hop, 2, hop_names, 1, &usage, &err) == 0 && says(err, "names neither"),
	   "DANE-TA: without the next-hop domain among the names it does not");
	r = rec(3, 1, 1, &hop);
	ok(match_names(&r, 1, chain_hop, 2, hop_names, 1, &usage, &err) == 1 && usage == DNS_DANE_EE,
	   "DANE-EE: no name check at all");

	/* ---- several records, limits ---- */
	struct gn_dns_tlsa set[3] = { rec(3, 1, 1, &stranger), rec(1, 1, 1, &leaf), rec(2, 0, 1, &ca) };
	ok(match(set, 3, chain1, 2, "mx.dane.example", &usage, &err) == 1 && usage == DNS_DANE_TA,
	   "a set: one record that matches is enough");
	ok(match(set, 3, chain1, 0, "mx.dane.example", &usage, &err) == 0 && err != NULL &&
	   strstr(err, "no certificate") != NULL, "no certificate: no match");
	const struct cert *longchain[DNS_DANE_MAX_CHAIN + 1];
	for (size_t i = 0; i <= DNS_DANE_MAX_CHAIN; i++)
		longchain[i] = i == 0 ? &leaf : &ca;
	r = rec(3, 1, 1, &leaf);
	ok(match(&r, 1, longchain, DNS_DANE_MAX_CHAIN + 1, "mx.dane.example", &usage, &err) == 0 &&
	   err != NULL && strstr(err, "too long") != NULL, "a chain of %d certificates is refused",
	   DNS_DANE_MAX_CHAIN + 1);
	ok(match(&r, 0, chain1, 2, "mx.dane.example", &usage, &err) == 0, "no records: no match");

	cert_free(&ca);
	cert_free(&other_ca);
	cert_free(&leaf);
	cert_free(&leaf_other);
	cert_free(&expired);
	cert_free(&self);
	cert_free(&stranger);
	cert_free(&inter);
	cert_free(&leaf_inter);
	cert_free(&notca);
	cert_free(&leaf_notca);
	cert_free(&hop);
	return done_testing();
}
