/*
 * t/unit/test_dmarc_eval.c: the DMARC policy lookup's life on the loop
 * (modules/mailauth/dmarc.c, dmarc_lookup()) with the core's real
 * resolver: the callback runs once and never from inside dmarc_lookup();
 * the fallback to the organisational domain's record; dmarc_lookup_cancel()
 * before the loop runs, while the first query and while the fallback's
 * query is in flight stops it for good (the query cancelled in the
 * resolver too).  What the lookup answers is
 * t/integration/310-mailauth-dmarc.t's subject.
 */
#include "dns/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmarc.h"

struct got {
	int calls;
	int status;
	const char *record_domain;
	const char *problem;
};

static bool inside;
static bool called_inside;

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_done(const struct dmarc_lookup_result *r, void *data)
{
	struct got *g = data;
	if (inside)
		called_inside = true;
	g->calls++;
	g->status = r->status;
	g->record_domain = r->record_domain;
	g->problem = r->problem;
	ev_break(core_loop, EVBREAK_ALL);
}

static void run_for(unsigned long ms)
{
	struct gn_timer *t = gn_timer_new(ms, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&t);
}

static struct dmarc_psl *psl;

static void test_local(void)
{
	ok(conf_load_string("test", "dns = { trust_anchor = \"\"; local_data = [\n"
			    "\"_dmarc.org.example. IN TXT \\\"v=DMARC1; p=reject\\\"\" ]; };") == 0 &&
	   conf_error_count() == 0, "a config with local data");
	struct gn_pool *pool = gn_pool_new();
	struct got g = { 0 };
	inside = true;
	struct dmarc_lookup *l = dmarc_lookup(pool, psl, "a.b.org.example", on_done, NULL, &g);
	inside = false;
	ok(l != NULL && g.calls == 0, "dmarc_lookup() returns at once");
	run_for(10000);
	ok(!called_inside, "the callback never runs inside dmarc_lookup()");
	is_int(g.calls, 1, "the callback ran once");
	ok(g.status == DMARC_PASS && g.record_domain != NULL &&
	   strcmp(g.record_domain, "org.example") == 0,
	   "no record at the From domain: the organisational domain's");
	run_for(100);
	is_int(g.calls, 1, "and never again");

	memset(&g, 0, sizeof(g));
	inside = true;
	(void)dmarc_lookup(pool, psl, "bad..name", on_done, NULL, &g);
	inside = false;
	is_int(g.calls, 0, "a malformed domain: not answered inside dmarc_lookup()");
	run_for(10000);
	ok(g.calls == 1 && g.status == DMARC_NONE, "but from the loop: none");

	memset(&g, 0, sizeof(g));
	l = dmarc_lookup(pool, psl, "org.example", on_done, NULL, &g);
	dmarc_lookup_cancel(&l);
	ok(l == NULL, "dmarc_lookup_cancel() sets the handle to NULL");
	run_for(300);
	is_int(g.calls, 0, "cancelled before the loop ran: no callback");
	dmarc_lookup_cancel(&l);
	dmarc_lookup_cancel(NULL);
	ok(true, "dmarc_lookup_cancel() accepts NULL and a NULL handle");
	gn_pool_free(&pool);
	dns_shutdown();
	conf_free();
}

static void test_silent(void)
{
	/* A resolver that never answers: a UDP socket nobody reads. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	   getsockname(fd, (struct sockaddr *)&sin, &sl) == 0, "a silent resolver on loopback");
	char conf[1024];
	snprintf(conf, sizeof(conf), "dns = { resolvers = [ \"127.0.0.1@%u\" ]; "
		 "trust_anchor = \"\"; timeout = \"10s\"; local_data = [\n"
		 "\"_dmarc.x.slow.example. IN TXT \\\"not dmarc\\\"\" ]; };", ntohs(sin.sin_port));
	ok(conf_load_string("test", conf) == 0 && conf_error_count() == 0, "a config with it");
	struct gn_pool *pool = gn_pool_new();
	struct got g = { 0 };
	struct dmarc_lookup *l = dmarc_lookup(pool, psl, "slow.example", on_done, NULL, &g);
	run_for(200);
	is_int((long long)dns_outstanding(), 1, "the record's query is in flight");
	dmarc_lookup_cancel(&l);
	is_int((long long)dns_outstanding(), 0, "dmarc_lookup_cancel() cancels it in the resolver");
	run_for(300);
	is_int(g.calls, 0, "and the callback never runs");

	/* The From domain's answer is local (no DMARC record), the fallback
	 * goes to the silent resolver. */
	l = dmarc_lookup(pool, psl, "x.slow.example", on_done, NULL, &g);
	run_for(300);
	is_int((long long)dns_outstanding(), 1, "the fallback's query is in flight");
	dmarc_lookup_cancel(&l);
	is_int((long long)dns_outstanding(), 0, "dmarc_lookup_cancel() cancels it");
	run_for(200);
	is_int(g.calls, 0, "and the callback never runs");
	gn_pool_free(&pool);
	dns_shutdown();
	conf_free();
	close(fd);
}

int main(void)
{
	log_init("test_dmarc_eval");
	log_set_ceiling(GN_LOG_ERROR);
	loop_init();
	const char *err;
	if (!ok(dmarc_psl_parse("com\nuk\nco.uk\n", 13, &psl, &err) == 0, "a public suffix list"))
		return done_testing();
	test_local();
	test_silent();
	dmarc_psl_free(&psl);
	return done_testing();
}
