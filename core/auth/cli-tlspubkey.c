/*
 * core/auth/cli-tlspubkey.c: `gannet config tlspubkey list|get|add|rm|gen`
 * over the TLS public keys of tlspubkey.c (gannet/tlspubkey.h), as mox's
 * `mox config tlspubkey` (mox.md 4.6).
 */
#include "auth/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CERT_READ_MAX (1024 * 1024)

static int usage_err(const char *usage)
{
	fprintf(stderr, "usage: gannet config tlspubkey %s\n", usage);
	return 2;
}

static char *pem_of(const unsigned char *der, size_t len)
{
	gnutls_datum_t in = { (unsigned char *)der, (unsigned)len }, out;
	if (gnutls_pem_base64_encode2("CERTIFICATE", &in, &out) < 0)
		return gn_strdup("");
	char *s = gn_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

static int cmd_list(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	int64_t account_id = 0;
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return usage_err("list [ACCOUNT]");
	struct gn_pool *pool = gn_pool_new();
	int ret = 1;
	if (argc == 2) {
		const char *params[] = { argv[1] };
		PGresult *res = db_query("SELECT id FROM gn_accounts WHERE name = $1",
					 1, params, &error);
		if (res == NULL) {
			fprintf(stderr, "gannet: database: %s\n", error);
			goto out;
		}
		if (PQntuples(res) == 0) {
			PQclear(res);
			fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
			goto out;
		}
		account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	struct gn_tlspubkey **keys;
	int n = gn_tlspubkey_list(pool, account_id, &keys, &error);
	if (n < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		goto out;
	}
	printf("# fingerprint\ttype\tname\taccount\taddress\tno-imap-preauth\n");
	for (int i = 0; i < n; i++)
		printf("%s\t%s\t%s\t%s\t%s\t%s\n", gn_tlspubkey_fingerprint(keys[i]),
		       gn_tlspubkey_type(keys[i]), gn_tlspubkey_name(keys[i]),
		       gn_tlspubkey_account(keys[i]), gn_tlspubkey_login_address(keys[i]),
		       gn_tlspubkey_no_imap_preauth(keys[i]) ? "yes" : "no");
	ret = 0;
out:
	gn_pool_free(&pool);
	return ret;
}

static int cmd_get(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	struct gn_tlspubkey *k;
	/* A fingerprint may start with "-" (base64url): no options here. */
	if (argc != 2)
		return usage_err("get FINGERPRINT");
	struct gn_pool *pool = gn_pool_new();
	int r = gn_tlspubkey_get(pool, argv[1], &k, &error);
	if (r < 0)
		fprintf(stderr, "gannet: database: %s\n", error);
	else if (r == 0)
		fprintf(stderr, "gannet: no such key: %s\n", argv[1]);
	if (r <= 0) {
		gn_pool_free(&pool);
		return 1;
	}
	char created[32] = "";
	struct tm tm;
	time_t when = gn_tlspubkey_created(k);
	if (gmtime_r(&when, &tm) != NULL)
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const unsigned char *der;
	size_t der_len;
	gn_tlspubkey_cert(k, &der, &der_len);
	char *pem = pem_of(der, der_len);
	printf("fingerprint: %s\ntype: %s\nname: %s\naccount: %s\naddress: %s\n"
	       "no imap preauth: %s\ncreated: %s\n\n%s", gn_tlspubkey_fingerprint(k),
	       gn_tlspubkey_type(k), gn_tlspubkey_name(k), gn_tlspubkey_account(k),
	       gn_tlspubkey_login_address(k), gn_tlspubkey_no_imap_preauth(k) ? "yes" : "no",
	       created, pem);
	gn_free(pem);
	gn_pool_free(&pool);
	return 0;
}

/* Reads all of stdin (at most CERT_READ_MAX bytes).  NULL when too long
 * or unreadable. */
static char *read_stdin(size_t *len_r)
{
	size_t cap = 8192, len = 0;
	char *buf = gn_malloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= CERT_READ_MAX) {
				gn_free(buf);
				return NULL;
			}
			cap *= 2;
			buf = gn_realloc(buf, cap + 1);
		}
		ssize_t r = read(0, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			gn_free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* Exactly one PEM block, of type CERTIFICATE (as mox). */
static int one_certificate(const char *pem, size_t len, gnutls_datum_t *der_r,
			   const char **error_r)
{
	int blocks = 0;
	const char *p = pem, *end = pem + len;
	while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
		if (p == pem || p[-1] == '\n') {
			blocks++;
			if (strncmp(p, "-----BEGIN CERTIFICATE-----", 27) != 0)
				return auth_err(error_r, "the PEM block is not a CERTIFICATE");
		}
		p += 11;
	}
	if (blocks != 1)
		return auth_err(error_r, blocks == 0 ? "no PEM CERTIFICATE block on stdin"
			       : "more than one PEM block on stdin: give one CERTIFICATE");
	gnutls_datum_t in = { (unsigned char *)pem, (unsigned)len };
	if (gnutls_pem_base64_decode2("CERTIFICATE", &in, der_r) < 0)
		return auth_err(error_r, "bad PEM CERTIFICATE block");
	return 0;
}

static int cmd_add(int argc, char **argv, void *data)
{
	(void)data;
	const char *usage = "add [--no-imap-preauth] ADDRESS [NAME] < cert.pem";
	const char *error;
	bool no_preauth = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--no-imap-preauth") == 0 ||
		    strcmp(argv[i], "-no-imap-preauth") == 0) {
			no_preauth = true;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
			return usage_err(usage);
		}
	}
	if (argc - i < 1 || argc - i > 2)
		return usage_err(usage);
	const char *address = argv[i], *name = argc - i == 2 ? argv[i + 1] : NULL;

	size_t len;
	char *pem = read_stdin(&len);
	if (pem == NULL) {
		fprintf(stderr, "gannet: cannot read the certificate from stdin (at most 1 MB)\n");
		return 1;
	}
	gnutls_datum_t der;
	if (one_certificate(pem, len, &der, &error) < 0) {
		gn_free(pem);
		fprintf(stderr, "gannet: %s\n", error);
		return 1;
	}
	gn_free(pem);
	struct gn_pool *pool = gn_pool_new();
	struct gn_tlspubkey *key;
	int ret = 0;
	if (gn_tlspubkey_add(pool, address, name, no_preauth, der.data, der.size,
			     &key, &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		ret = 1;
	} else {
		printf("%s\n", gn_tlspubkey_fingerprint(key));
	}
	gnutls_free(der.data);
	gn_pool_free(&pool);
	return ret;
}

static int cmd_rm(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	/* A fingerprint may start with "-" (base64url): no options here. */
	if (argc != 2)
		return usage_err("rm FINGERPRINT");
	int r = gn_tlspubkey_remove(argv[1], &error);
	if (r < 0)
		fprintf(stderr, "gannet: database: %s\n", error);
	else if (r == 0)
		fprintf(stderr, "gannet: no such key: %s\n", argv[1]);
	return r > 0 ? 0 : 1;
}

/* Writes data to a new file of mode 0600 (never over an existing one). */
static int write_new(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
		return -1;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* An ed25519 key and a minimal self-signed certificate for it: serial =
 * the unix time, no subject, as mox's `config tlspubkey gen`. */
static int cmd_gen(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0')
		return usage_err("gen STEM");
	const char *stem = argv[1];
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t key_pem = { NULL, 0 }, crt_pem = { NULL, 0 }, crt_der = { NULL, 0 };
	gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 }, k = { NULL, 0 };
	struct gn_pool *pool = gn_pool_new();
	int ret = 1, r;
	const char *what = "";

	time_t now = time(NULL);
	unsigned char serial[8];
	for (int i = 0; i < 8; i++)
		serial[i] = (unsigned char)((unsigned long long)now >> (56 - 8 * i));
	size_t skip = 0;
	while (skip < 7 && serial[skip] == 0)
		skip++;

#define TRY(call, msg) do { what = (msg); if ((r = (call)) < 0) goto fail; } while (0)
	TRY(gnutls_x509_privkey_init(&key), "key");
	TRY(gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0, 0), "generating the key");
	TRY(gnutls_x509_crt_init(&crt), "certificate");
	TRY(gnutls_x509_crt_set_version(crt, 3), "certificate version");
	TRY(gnutls_x509_crt_set_serial(crt, serial + skip, sizeof(serial) - skip), "serial");
	TRY(gnutls_x509_crt_set_activation_time(crt, now), "activation time");
	TRY(gnutls_x509_crt_set_expiration_time(crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION),
	    "expiration time");
	TRY(gnutls_x509_crt_set_key(crt, key), "certificate key");
	TRY(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0), "signing");
	TRY(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
					      GNUTLS_PKCS_PLAIN, &key_pem), "exporting the key");
	TRY(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), "exporting the certificate");
	TRY(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &crt_der), "exporting the certificate");
#undef TRY

	const unsigned char *spki;
	size_t spki_len;
	if (tlspubkey_cert_spki(crt_der.data, crt_der.size, &spki, &spki_len) < 0) {
		fprintf(stderr, "gannet: the generated certificate does not parse\n");
		goto out;
	}
	const char *fp = gn_tlspubkey_spki_fingerprint(pool, spki, spki_len);

	char ts[32];
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M", &tm);
	char *p_key = gn_pool_printf(pool, "%s.%s.ed25519privatekey.pkcs8.pem", stem, ts);
	char *p_crt = gn_pool_printf(pool, "%s.%s.certificate.pem", stem, ts);
	char *p_both = gn_pool_printf(pool, "%s.%s.ed25519privatekey-certificate.pem", stem, ts);
	struct gn_buf *both = gn_buf_new(0);
	gn_buf_append(both, key_pem.data, key_pem.size);
	gn_buf_append(both, crt_pem.data, crt_pem.size);
	int w = write_new(p_key, key_pem.data, key_pem.size);
	if (w == 0)
		w = write_new(p_crt, crt_pem.data, crt_pem.size);
	if (w == 0)
		w = write_new(p_both, gn_buf_data(both), gn_buf_len(both));
	gnutls_memset((void *)gn_buf_data(both), 0, gn_buf_len(both));
	gn_buf_free(&both);
	if (w < 0)
		goto out;
	fprintf(stderr, "wrote %s\nwrote %s\nwrote %s\n", p_key, p_crt, p_both);
	/* The 32-byte seed, as mox prints it for `sendmail` configs. */
	gnutls_ecc_curve_t curve;
	if (gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &k) == 0 && k.size == 32)
		fprintf(stderr, "ed25519 private key seed (base64url): %s\n",
			tlspubkey_base64url(pool, k.data, k.size));
	printf("%s\n", fp);
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "gannet: %s: %s\n", what, gnutls_strerror(r));
out:
	if (k.data != NULL) {
		gnutls_memset(k.data, 0, k.size);
		gnutls_free(k.data);
	}
	gnutls_free(x.data);
	gnutls_free(y.data);
	if (key_pem.data != NULL) {
		gnutls_memset(key_pem.data, 0, key_pem.size);
		gnutls_free(key_pem.data);
	}
	gnutls_free(crt_pem.data);
	gnutls_free(crt_der.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	gn_pool_free(&pool);
	return ret;
}

/* ---- register ---- */

int cli_tlspubkey_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "config tlspubkey list", "[ACCOUNT]", cmd_list },
		{ "config tlspubkey get", "FINGERPRINT", cmd_get },
		{ "config tlspubkey add", "[--no-imap-preauth] ADDRESS [NAME] < cert.pem", cmd_add },
		{ "config tlspubkey rm", "FINGERPRINT", cmd_rm },
		{ "config tlspubkey gen", "STEM  (writes an ed25519 key and certificate)", cmd_gen },
	};
	int ret = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *error;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage,
				    cmds[i].fn, NULL, &error) < 0) {
			conf_error("%s", error);
			ret = -1;
		}
	}
	return ret;
}
