/*
 * modules/webhooks/send.c: delivering hooks (mox.md 1.4).  The runner's
 * job calls webhooks_send_pass() every second, and again as soon as an
 * attempt ends (webhooks_send_chain()): it claims the due hooks
 * (hooks.c: the next attempt is persisted first), at most the free part
 * of the concurrency limit and one a URL (also counting the URLs in
 * flight here), resolves each URL's host (gannet/dns.h: A, then AAAA),
 * and POSTs the payload with the core's HTTPS client.  Success is a 200
 * and nothing else; the result keeps the first 512 bytes of the answer.
 *
 * Each request is signed the Standard Webhooks way (beyond mox):
 * webhook-id (the hook's id, the same for each attempt),
 * webhook-timestamp (seconds since the epoch) and webhook-signature
 * "v1,<base64 HMAC-SHA256>" over "id.timestamp.body" with the key of the
 * account's secret ("whsec_<base64>").
 */
#include "webhooks.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

struct attempt {
	struct attempt *next;
	struct gn_pool *pool;
	struct webhooks_claim c;
	const char *host, *path;
	unsigned port;
	const char **addrs;
	size_t n_addrs;
	struct gn_dns_query *query;
	struct gn_httpclient *http;
	double start, start_mono;
};

static struct attempt *flying;
static unsigned n_flying;
static gn_timer_fn *idle_fn;
/* In the runner, an attempt that ends starts another pass at once (as
 * mox's hook queue launches work after each result), so that the hooks
 * of one URL, one in flight at a time, follow each other without waiting
 * for the job's next second.  A one-shot timer of 0 ms, so that the pass
 * runs from the loop, not inside the ending attempt's callback. */
static bool chain;
static struct gn_timer *chain_timer;

void webhooks_send_chain(bool on)
{
	chain = on;
}

static void chain_fire(void *data)
{
	(void)data;
	gn_timer_free(&chain_timer);
	webhooks_send_pass();
}

unsigned webhooks_in_flight(void)
{
	return n_flying;
}

void webhooks_send_on_idle(gn_timer_fn *fn)
{
	idle_fn = fn;
}

int webhooks_url_parse(struct gn_pool *pool, const char *url, const char **host_r, unsigned *port_r,
		       const char **path_r, const char **error_r)
{
	if (strlen(url) > WEBHOOKS_URL_MAX) {
		*error_r = "URL too long";
		return -1;
	}
	/* mox allows http:// as well as https://. */
	bool plain = strncmp(url, "http://", 7) == 0;
	if (!plain && strncmp(url, "https://", 8) != 0) {
		*error_r = "URL must start with https:// or http://";
		return -1;
	}
	const char *h = url + (plain ? 7 : 8);
	size_t hl = strcspn(h, ":/?#");
	if (hl == 0) {
		*error_r = "URL without a host";
		return -1;
	}
	for (const char *c = url; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			*error_r = "URL with a space or control character";
			return -1;
		}
	*host_r = gn_pool_strndup(pool, h, hl);
	*port_r = plain ? 80 : 443;
	const char *rest = h + hl;
	if (*rest == ':') {
		char *end;
		unsigned long port = strtoul(rest + 1, &end, 10);
		if (end == rest + 1 || port == 0 || port > 65535 || (*end != '\0' && *end != '/' && *end != '?')) {
			*error_r = "URL with a bad port";
			return -1;
		}
		*port_r = (unsigned)port;
		rest = end;
	}
	if (*rest == '#' || strchr(rest, '#') != NULL) {
		*error_r = "URL with a fragment";
		return -1;
	}
	*path_r = *rest == '\0' ? "/" : *rest == '?' ? gn_pool_printf(pool, "/%s", rest) : gn_pool_strdup(pool, rest);
	return 0;
}

const char *webhooks_sign(struct gn_pool *pool, const char *secret, const char *id, long long ts,
			  const char *body, size_t len)
{
	if (strncmp(secret, "whsec_", 6) != 0)
		return NULL;
	gnutls_datum_t in = { (unsigned char *)(secret + 6), (unsigned)strlen(secret + 6) }, key = { NULL, 0 };
	if (gnutls_base64_decode2(&in, &key) < 0)
		return NULL;
	gnutls_hmac_hd_t h;
	unsigned char mac[32];
	const char *prefix = gn_pool_printf(pool, "%s.%lld.", id, ts);
	int r = gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, key.data, key.size);
	if (r >= 0) {
		gnutls_hmac(h, prefix, strlen(prefix));
		gnutls_hmac(h, body, len);
		gnutls_hmac_deinit(h, mac);
	}
	gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	if (r < 0)
		return NULL;
	gnutls_datum_t m = { mac, sizeof(mac) }, b64 = { NULL, 0 };
	if (gnutls_base64_encode2(&m, &b64) < 0)
		return NULL;
	const char *s = gn_pool_printf(pool, "v1,%.*s", (int)b64.size, (const char *)b64.data);
	gnutls_free(b64.data);
	return s;
}

static void attempt_end(struct attempt *a, int status, const char *error, const char *body, size_t body_len)
{
	double duration = gn_now() - a->start_mono;
	bool ok = error == NULL && status == 200;	/* mox.md 1.4: 200 only */
	const char *err = error != NULL ? error : ok ? "" : gn_pool_printf(a->pool, "http status %d", status);
	const char *dberr = NULL;
	if (webhooks_result(&a->c, a->start, duration, ok, status, err, body, body_len, &dberr) < 0)
		gn_log(GN_LOG_ERROR, WEBHOOKS_AREA, "event=webhook_result_failed id=%" PRId64 " error=%s", a->c.id,
		       gn_log_quote(0, dberr != NULL ? dberr : "?"));
	gn_log(GN_LOG_INFO, WEBHOOKS_AREA, "event=webhook_attempt id=%" PRId64 " attempt=%u code=%d success=%s%s%s",
	       a->c.id, a->c.attempt, status, ok ? "yes" : "no", ok ? "" : " error=", ok ? "" : gn_log_quote(0, err));
	for (struct attempt **p = &flying; *p != NULL; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
	n_flying--;
	gn_pool_free(&a->pool);
	gn_free(a);
	if (chain && chain_timer == NULL)
		chain_timer = gn_timer_new(0, false, chain_fire, NULL);
	if (n_flying == 0 && idle_fn != NULL)
		idle_fn(NULL);
}

static void http_cb(const struct gn_httpclient_response *r, void *data)
{
	struct attempt *a = data;
	a->http = NULL;
	attempt_end(a, r->error != NULL ? 0 : r->status, r->error, r->body, r->body_len);
}

static void post(struct attempt *a)
{
	struct gn_pool *pool = a->pool;
	long long ts = (long long)time(NULL);
	const char *id = gn_pool_printf(pool, "%" PRId64, a->c.id);
	size_t len = strlen(a->c.payload);
	const char *sig = webhooks_sign(pool, a->c.secret, id, ts, a->c.payload, len);
	if (sig == NULL) {
		attempt_end(a, 0, "the account's webhook secret is malformed", NULL, 0);
		return;
	}
	const char *headers[9];
	size_t nh = 0;
	headers[nh++] = "Content-Type: application/json; charset=utf-8";
	headers[nh++] = gn_pool_printf(pool, "User-Agent: gannet/%s (webhook)", gn_version());
	headers[nh++] = gn_pool_printf(pool, "X-Mox-Webhook-ID: %s", id);
	headers[nh++] = gn_pool_printf(pool, "X-Mox-Webhook-Attempt: %u", a->c.attempt);
	headers[nh++] = gn_pool_printf(pool, "webhook-id: %s", id);
	headers[nh++] = gn_pool_printf(pool, "webhook-timestamp: %lld", ts);
	headers[nh++] = gn_pool_printf(pool, "webhook-signature: %s", sig);
	if (a->c.auth[0] != '\0')
		headers[nh++] = gn_pool_printf(pool, "Authorization: %s", a->c.auth);
	struct gn_httpclient_request req;
	gn_httpclient_request_init(&req);
	req.method = "POST";
	req.host = a->host;
	req.port = a->port;
	req.plain_http = strncmp(a->c.url, "http://", 7) == 0;
	req.path = a->path;
	req.addrs = a->addrs;
	req.n_addrs = a->n_addrs;
	req.headers = headers;
	req.n_headers = nh;
	req.body = a->c.payload;
	req.body_len = len;
	req.max_body = 64 * 1024;	/* 512 bytes are kept */
	req.timeout_ms = webhooks_settings.timeout_ms;
	const char *err = NULL;
	a->http = gn_httpclient_start(&req, http_cb, a, &err);
	if (a->http == NULL)
		attempt_end(a, 0, err != NULL ? err : "the request could not start", NULL, 0);
}

static void addr_cb(const struct gn_dns_result *res, void *data)
{
	struct attempt *a = data;
	a->query = NULL;
	for (size_t i = 0; i < res->n && a->n_addrs < GN_HTTPCLIENT_MAX_ADDRS; i++) {
		char text[INET6_ADDRSTRLEN];
		const void *bin = res->type == GN_DNS_A ? (const void *)&res->a[i] : (const void *)&res->aaaa[i];
		if (inet_ntop(res->type == GN_DNS_A ? AF_INET : AF_INET6, bin, text, sizeof(text)) != NULL)
			a->addrs[a->n_addrs++] = gn_pool_strdup(a->pool, text);
	}
	if (res->type == GN_DNS_A) {
		a->query = gn_dns_lookup(a->host, GN_DNS_AAAA, addr_cb, a);
		return;
	}
	if (a->n_addrs == 0) {
		attempt_end(a, 0, gn_pool_printf(a->pool, "no address for %s: %s", a->host,
						 gn_dns_status_name(res->status)), NULL, 0);
		return;
	}
	post(a);
}

static void start(const struct webhooks_claim *c)
{
	struct attempt *a = gn_calloc(1, sizeof(*a));
	a->pool = gn_pool_new();
	a->c = *c;
	a->c.url = gn_pool_strdup(a->pool, c->url);
	a->c.auth = gn_pool_strdup(a->pool, c->auth);
	a->c.payload = gn_pool_strdup(a->pool, c->payload);
	a->c.secret = gn_pool_strdup(a->pool, c->secret);
	a->start = gn_queue_now();
	a->start_mono = gn_now();
	a->addrs = gn_pool_alloc(a->pool, GN_HTTPCLIENT_MAX_ADDRS * sizeof(*a->addrs));
	a->next = flying;
	flying = a;
	n_flying++;
	const char *err = NULL;
	if (webhooks_url_parse(a->pool, a->c.url, &a->host, &a->port, &a->path, &err) < 0) {
		attempt_end(a, 0, err, NULL, 0);
		return;
	}
	/* An address literal needs no lookup. */
	unsigned char bin[16];
	const char *h = a->host;
	size_t hl = strlen(h);
	if (hl > 2 && h[0] == '[' && h[hl - 1] == ']')
		h = gn_pool_strndup(a->pool, h + 1, hl - 2);
	if (inet_pton(AF_INET, h, bin) == 1 || inet_pton(AF_INET6, h, bin) == 1) {
		a->addrs[a->n_addrs++] = h;
		post(a);
		return;
	}
	a->query = gn_dns_lookup(a->host, GN_DNS_A, addr_cb, a);
}

void webhooks_send_pass(void)
{
	unsigned limit = webhooks_settings.concurrency;
	if (n_flying >= limit)
		return;
	gn_queue_tls_trust_init();
	struct gn_pool *pool = gn_pool_new();
	const char **busy = gn_pool_alloc(pool, (n_flying + 1) * sizeof(*busy));
	size_t nb = 0;
	for (struct attempt *a = flying; a != NULL; a = a->next)
		busy[nb++] = a->c.url;
	struct webhooks_claim *c = NULL;
	size_t n = 0;
	const char *err = NULL;
	if (webhooks_claim(pool, gn_queue_now(), limit - n_flying, busy, nb, &c, &n, &err) < 0)
		gn_log(GN_LOG_WARN, WEBHOOKS_AREA, "event=webhook_claim_failed error=%s", gn_log_quote(0, err));
	for (size_t i = 0; i < n; i++)
		start(&c[i]);
	gn_pool_free(&pool);
}
