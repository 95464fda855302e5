/*
 * t/unit/test_spf_eval.c: the SPF evaluator's life on the loop
 * (modules/mailauth/spf.c) with the core's real resolver: the callback
 * runs once and never from inside spf_check(); spf_cancel() before the
 * loop runs and while a query is in flight stops it for good (the query
 * cancelled in the resolver too), also with an mx's host lookups in
 * flight together; the whole evaluation's deadline gives a
 * temperror without waiting for the resolver.  What the evaluator answers
 * is t/integration/300-mailauth-spf.t's subject, against pyspf.
 */
#include "dns/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spf.h"

struct got {
	int calls;
	int result;
	const char *mechanism;
	const char *problem;
	unsigned lookups;
};

static bool in_spf_check;
static bool called_inside;

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_done(const struct spf_result *r, void *data)
{
	struct got *g = data;
	if (in_spf_check)
		called_inside = true;
	g->calls++;
	g->result = r->result;
	g->mechanism = r->mechanism;
	g->problem = r->problem;
	g->lookups = r->lookups;
	ev_break(core_loop, EVBREAK_ALL);
}

/* Runs the loop until a callback breaks it or ms passed. */
static void run_for(unsigned long ms)
{
	struct gn_timer *t = gn_timer_new(ms, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&t);
}

static struct spf_request request(const char *domain)
{
	struct spf_request req = { .family = 4, .helo = "helo.example.org" };
	inet_pton(AF_INET, "192.0.2.10", req.ip);
	req.sender = domain;	/* no '@': postmaster@domain */
	return req;
}

static void test_local(void)
{
	ok(conf_load_string("test", "dns = { trust_anchor = \"\"; local_data = [\n"
			    "\"a.example. IN TXT \\\"v=spf1 include:b.example mx -all\\\"\",\n"
			    "\"b.example. IN TXT \\\"v=spf1 ip4:198.51.100.0/24 -all\\\"\",\n"
			    "\"a.example. IN MX 10 mx.a.example.\",\n"
			    "\"mx.a.example. IN A 192.0.2.10\" ]; };") == 0 &&
	   conf_error_count() == 0, "a config with local data");
	struct gn_pool *pool = gn_pool_new();
	struct got g = { 0 };
	struct spf_request req = request("a.example");
	in_spf_check = true;
	struct spf_eval *e = spf_check(pool, &req, on_done, &g);
	in_spf_check = false;
	ok(e != NULL && g.calls == 0, "spf_check() returns at once");
	run_for(10000);
	ok(!called_inside, "the callback never runs inside spf_check()");
	is_int(g.calls, 1, "the callback ran once");
	is_int(g.result, SPF_PASS, "include (no match), then mx: pass");
	is_str(g.mechanism, "mx", "the mx matched");
	is_int(g.lookups, 2, "two DNS-querying terms");
	run_for(100);
	is_int(g.calls, 1, "and never again");

	/* A bad domain is known at once, and still answered from the loop. */
	memset(&g, 0, sizeof(g));
	req = request("localhost");
	in_spf_check = true;
	(void)spf_check(pool, &req, on_done, &g);
	in_spf_check = false;
	is_int(g.calls, 0, "a single-label domain: not answered inside spf_check()");
	run_for(10000);
	ok(g.calls == 1 && g.result == SPF_NONE, "but from the loop: none (RFC 7208 4.3)");

	/* Cancelled before the loop runs. */
	memset(&g, 0, sizeof(g));
	req = request("a.example");
	e = spf_check(pool, &req, on_done, &g);
	spf_cancel(&e);
	ok(e == NULL, "spf_cancel() sets the handle to NULL");
	run_for(300);
	is_int(g.calls, 0, "cancelled before the loop ran: no callback");
	spf_cancel(&e);
	spf_cancel(NULL);
	ok(true, "spf_cancel() accepts NULL and a NULL handle");
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
		 "\"mx.example. IN TXT \\\"v=spf1 mx -all\\\"\",\n"
		 "\"mx.example. IN MX 10 h1.slow.example.\",\n"
		 "\"mx.example. IN MX 20 h2.slow.example.\",\n"
		 "\"mx.example. IN MX 30 h3.slow.example.\" ]; };", ntohs(sin.sin_port));
	ok(conf_load_string("test", conf) == 0 && conf_error_count() == 0, "a config with it");

	struct gn_pool *pool = gn_pool_new();
	struct got g = { 0 };
	struct spf_request req = request("slow.example");
	struct spf_eval *e = spf_check(pool, &req, on_done, &g);
	run_for(200);
	is_int((long long)dns_outstanding(), 1, "the record's query is in flight");
	spf_cancel(&e);
	is_int((long long)dns_outstanding(), 0, "spf_cancel() cancels it in the resolver");
	run_for(300);
	is_int(g.calls, 0, "and the callback never runs");

	/* mx: the hosts' addresses are asked all at once (local data answers
	 * the record and the MX, the silent resolver the rest). */
	memset(&g, 0, sizeof(g));
	req = request("mx.example");
	e = spf_check(pool, &req, on_done, &g);
	run_for(300);
	is_int((long long)dns_outstanding(), 3, "mx: the three hosts' lookups are in flight together");
	spf_cancel(&e);
	is_int((long long)dns_outstanding(), 0, "spf_cancel() cancels all three");
	run_for(200);
	is_int(g.calls, 0, "and the callback never runs");
	req = request("slow.example");

	/* The deadline: 300 ms against a resolver that would wait 10 s. */
	memset(&g, 0, sizeof(g));
	req.timeout_ms = 300;
	double t0 = gn_now();
	(void)spf_check(pool, &req, on_done, &g);
	run_for(5000);
	ok(g.calls == 1 && g.result == SPF_TEMPERROR, "past the deadline: temperror");
	is_str(g.problem, "no result within 300 ms", "saying so");
	ev_now_update(core_loop);
	ok(gn_now() - t0 < 3.0, "without waiting for the resolver (%.1f s)", gn_now() - t0);
	is_int((long long)dns_outstanding(), 0, "its query was cancelled");
	gn_pool_free(&pool);
	dns_shutdown();
	conf_free();
	close(fd);
}

int main(void)
{
	log_init("test_spf_eval");
	log_set_ceiling(GN_LOG_ERROR);
	loop_init();
	test_local();
	test_silent();
	return done_testing();
}
