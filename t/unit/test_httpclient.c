/*
 * t/unit/test_httpclient.c: the HTTPS client (gannet/httpclient.h,
 * core/net/http-client.c) against t/lib/policyserver.py, a Python HTTPS
 * server (http.server + ssl) with a certificate made here and trusted
 * through gn_conn_tls_client_trust().
 *
 * GET with Content-Length, chunked and up to the end of the connection;
 * POST with a body and request headers (the server records what it got);
 * a status other than 200 is a response, not an error; a certificate for
 * another name, a body or header over its limit and a server slower than
 * the timeout each fail with an error that says so; requests that are
 * wrong fail at once; a cancelled request never calls back.
 */
#include "net/internal.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gannet/httpclient.h>

static char dir[] = "/tmp/gannet-test-httpc-XXXXXX";
static char script[300], record[300];
static unsigned port;

struct outcome {
	bool done;
	char *error;
	int status;
	char *body;
	size_t body_len;
	char *ctype;
};

static void cb(const struct gn_httpclient_response *r, void *data)
{
	struct outcome *o = data;
	o->done = true;
	o->error = r->error != NULL ? gn_strdup(r->error) : NULL;
	o->status = r->status;
	o->body = r->body != NULL ? gn_strndup(r->body, r->body_len) : NULL;
	o->body_len = r->body_len;
	const char *ct = r->error == NULL ? gn_httpclient_header(r, "content-type") : NULL;
	o->ctype = ct != NULL ? gn_strdup(ct) : NULL;
}

static void outcome_clear(struct outcome *o)
{
	gn_free(o->error);
	gn_free(o->body);
	gn_free(o->ctype);
	memset(o, 0, sizeof(*o));
}

static void set_script(const char *json)
{
	FILE *f = fopen(script, "w");
	if (f != NULL) {
		fputs(json, f);
		fclose(f);
	}
}

/* Runs one request to completion (10 s at most). */
static struct gn_httpclient *req_start(struct outcome *o, const char *host, const char *method,
					const char *body, size_t max_body, size_t max_header,
					unsigned long timeout_ms, const char **error_r)
{
	static const char *addrs[] = { "127.0.0.1" };
	static const char *headers[] = { "X-Test: one two", "Content-Type: application/json" };
	struct gn_httpclient_request req;
	gn_httpclient_request_init(&req);
	req.method = method;
	req.host = host;
	req.port = port;
	req.path = "/hook?x=1";
	req.addrs = addrs;
	req.n_addrs = 1;
	if (body != NULL) {
		req.headers = headers;
		req.n_headers = 2;
		req.body = body;
		req.body_len = strlen(body);
	}
	req.max_body = max_body;
	req.max_header = max_header;
	req.timeout_ms = timeout_ms;
	return gn_httpclient_start(&req, cb, o, error_r);
}

static void run(struct outcome *o)
{
	double end = gn_now() + 10;
	while (!o->done && gn_now() < end)
		ev_run(core_loop, EVRUN_ONCE);
}

static bool request(struct outcome *o, const char *host, const char *method, const char *body,
		    size_t max_body, size_t max_header, unsigned long timeout_ms)
{
	const char *err;
	outcome_clear(o);
	if (req_start(o, host, method, body, max_body, max_header, timeout_ms, &err) == NULL) {
		diag("not started: %s", err);
		return false;
	}
	run(o);
	return o->done;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return gn_strdup("");
	char *buf = gn_calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(void)
{
	char cmd[2048], cert[300], key[300];
	signal(SIGPIPE, SIG_IGN);
	log_init("test_httpclient");
	if (getenv("GANNET_TEST_VERBOSE") == NULL)
		log_set_level(NULL, GN_LOG_WARN);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cert, sizeof(cert), "%s/a.pem", dir);
	snprintf(key, sizeof(key), "%s/a.key", dir);
	snprintf(script, sizeof(script), "%s/script.json", dir);
	snprintf(record, sizeof(record), "%s/record.jsonl", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -nodes -days 2 -subj /CN=a.test -addext subjectAltName=DNS:a.test "
		 "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout %s -out %s >/dev/null 2>&1", key, cert);
	if (!ok(system(cmd) == 0, "certificate made with openssl"))
		return done_testing();
	set_script("{\"*\": {\"body\": \"hello\\n\"}}");
	char server_py[300];
	snprintf(server_py, sizeof(server_py), "%s/t/lib/policyserver.py", GN_TEST_SRCDIR);
	int pfd[2];
	if (pipe(pfd) < 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		/* The server goes with the test, however the test ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		close(pfd[0]);
		execlp("python3", "python3", server_py, "--port", "0", "--cert", cert, "--key", key, "--script",
		       script, "--record", record, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *srv = fdopen(pfd[0], "r");
	char line[100] = "";
	if (!ok(srv != NULL && fgets(line, sizeof(line), srv) != NULL && sscanf(line, "ready %u", &port) == 1,
		"the Python HTTPS server listens (port %u)", port)) {
		kill(pid, SIGKILL);
		return done_testing();
	}
	const char *err;
	ok(gn_conn_tls_client_trust(cert, &err) == 0, "its certificate trusted");
	loop_init();

	struct outcome o = { 0 };
	ok(request(&o, "a.test", NULL, NULL, 0, 0, 5000), "GET: the callback ran");
	is_str(o.error, NULL, "GET: no error");
	is_int(o.status, 200, "GET: 200");
	is_str(o.body, "hello\n", "GET: the body (Content-Length)");
	is_str(o.ctype, "text/plain", "a header field by name, case-insensitive");

	ok(request(&o, "a.test", "POST", "{\"event\": \"delivered\"}", 0, 0, 5000), "POST: the callback ran");
	is_int(o.status, 200, "POST: 200");
	char *rec = slurp(record);
	like(rec, "\"method\": \"POST\", \"path\": \"/hook?x=1\", \"host\": \"a.test\"",
	     "POST: the server got the method, path and host");
	like(rec, "\"body\": \"{\\\"event\\\": \\\"delivered\\\"}\"", "POST: and the body");
	like(rec, "\"X-Test\": \"one two\"", "POST: and the request's header fields");
	like(rec, "\"Content-Length\": \"22\"", "POST: with its Content-Length");
	gn_free(rec);

	set_script("{\"*\": {\"body\": \"0123456789abcdefghij\", \"chunked\": true}}");
	request(&o, "a.test", NULL, NULL, 0, 0, 5000);
	is_str(o.body, "0123456789abcdefghij", "chunked: the body decoded (chunks of 7, a trailer)");
	set_script("{\"*\": {\"body\": \"to the end\", \"no_length\": true}}");
	request(&o, "a.test", NULL, NULL, 0, 0, 5000);
	is_str(o.body, "to the end", "no length: the body up to the end of the connection");
	set_script("{\"*\": {\"status\": 404, \"body\": \"nope\"}}");
	request(&o, "a.test", NULL, NULL, 0, 0, 5000);
	ok(o.error == NULL && o.status == 404, "404 is a response, not an error (%d)", o.status);
	set_script("{\"*\": {\"status\": 302, \"location\": \"https://b.test/\", \"body\": \"\"}}");
	request(&o, "a.test", NULL, NULL, 0, 0, 5000);
	is_int(o.status, 302, "a redirect is not followed");

	set_script("{\"*\": {\"body\": \"x\", \"repeat\": 1000}}");
	request(&o, "a.test", NULL, NULL, 999, 0, 5000);
	like(o.error, "response body larger than 999 bytes", "Content-Length over max_body: %s", o.error);
	set_script("{\"*\": {\"body\": \"x\", \"repeat\": 1000, \"chunked\": true}}");
	request(&o, "a.test", NULL, NULL, 999, 0, 5000);
	like(o.error, "response body larger than 999 bytes", "chunked over max_body: %s", o.error);
	set_script("{\"*\": {\"body\": \"x\", \"repeat\": 1000, \"no_length\": true}}");
	request(&o, "a.test", NULL, NULL, 999, 0, 5000);
	like(o.error, "response body larger than 999 bytes", "to the end over max_body: %s", o.error);
	set_script("{\"*\": {\"body\": \"x\"}}");
	request(&o, "a.test", NULL, NULL, 0, 60, 5000);
	like(o.error, "response header larger than 60 bytes", "a header over max_header: %s", o.error);

	set_script("{\"*\": {\"body\": \"slow\", \"delay\": 3}}");
	double t0 = gn_now();
	request(&o, "a.test", NULL, NULL, 0, 0, 500);
	is_str(o.error, "timeout", "a server slower than the timeout: timeout");
	ok(gn_now() - t0 < 2.5, "after the timeout, not the server (%.1f s)", gn_now() - t0);

	set_script("{\"*\": {\"body\": \"x\"}}");
	request(&o, "b.test", NULL, NULL, 0, 0, 5000);
	like(o.error, "certificate does not verify for b.test", "a certificate for another name: %s", o.error);

	/* The first address refuses (nothing listens on 127.0.0.2): the next. */
	{
		static const char *two[] = { "127.0.0.2", "127.0.0.1" };
		struct gn_httpclient_request req;
		gn_httpclient_request_init(&req);
		req.host = "a.test";
		req.port = port;
		req.path = "/";
		req.addrs = two;
		req.n_addrs = 2;
		outcome_clear(&o);
		ok(gn_httpclient_start(&req, cb, &o, &err) != NULL, "two addresses: started");
		run(&o);
		ok(o.done && o.error == NULL && o.status == 200,
		   "the first refused, the second answered: no error, 200 (%s)", o.error != NULL ? o.error : "-");
		req.addrs = (const char *[]){ "127.0.0.2" };
		req.n_addrs = 1;
		outcome_clear(&o);
		ok(gn_httpclient_start(&req, cb, &o, &err) != NULL, "one refusing address: started");
		run(&o);
		like(o.error, "127.0.0.2 port", "every address refused: the error names it (%s)",
		     o.error != NULL ? o.error : "-");
	}

	static const char *none[] = { NULL };
	struct gn_httpclient *h0;
	struct gn_httpclient_request bad;
	gn_httpclient_request_init(&bad);
	bad.host = "a.test";
	bad.path = "/x y";
	bad.addrs = (const char **)none;
	bad.n_addrs = 0;
	err = NULL;
	h0 = gn_httpclient_start(&bad, cb, &o, &err);
	ok(h0 == NULL && err != NULL, "no address: refused at once (%s)", err != NULL ? err : "-");
	bad.n_addrs = 1;
	bad.addrs = (const char *[]){ "127.0.0.1" };
	err = NULL;
	h0 = gn_httpclient_start(&bad, cb, &o, &err);
	ok(h0 == NULL && err != NULL, "a path with a space: refused at once (%s)", err != NULL ? err : "-");
	bad.path = "/x";
	bad.headers = (const char *[]){ "X-Evil: a\r\nInjected: b" };
	bad.n_headers = 1;
	err = NULL;
	h0 = gn_httpclient_start(&bad, cb, &o, &err);
	ok(h0 == NULL && err != NULL, "a header with CRLF: refused at once (%s)", err != NULL ? err : "-");

	outcome_clear(&o);
	struct gn_httpclient *h = req_start(&o, "a.test", NULL, NULL, 0, 0, 5000, &err);
	gn_httpclient_cancel(&h);
	ok(h == NULL, "cancel clears the handle");
	double end = gn_now() + 1;
	while (gn_now() < end)
		ev_run(core_loop, EVRUN_NOWAIT);
	ok(!o.done, "a cancelled request never calls back");

	outcome_clear(&o);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fclose(srv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
	return done_testing();
}
