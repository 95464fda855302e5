/*
 * t/fuzz/fuzz_smtp.c: libFuzzer target for the SMTP server engine
 * (core/smtp/, all of it): the command parser, pipelining, DATA with
 * dot-stuffing, BDAT chunks, over-long lines, bare CR and LF, and around
 * them STARTTLS, the error delay, idle timeouts, the session and data
 * time limits (profile 1) and server shutdown; and the extensions a policy
 * adds (gannet/smtp.h): EHLO keywords (offered or not, with good and bad
 * parameters), MAIL and RCPT parameters with checks, and commands with
 * continuation lines (an AUTH that answers 334 or ends, a command that
 * starts the session over, one that has no line callback).
 *
 * The seam: the engine reaches its connection only through the public
 * gannet/conn.h API and its timers through gannet/loop.h, so this file
 * links the files of core/smtp/ (unchanged) against fakes of those: a connection
 * with no socket, whose input buffer the target fills with the client's
 * bytes, whose output is checked reply by reply, and a small deterministic
 * loop that interleaves the client's reads with the policy's late answers,
 * the error-delay timer, the STARTTLS handshake, the idle timeout and a
 * shutdown.  The fakes keep the rules of core/net/conn.c that the engine
 * relies on: input() is called when new input came or after a resume,
 * never while paused and never after gn_conn_close(); close() comes once,
 * from the loop, possibly after timers and policy answers (the flush of
 * the last output takes time); STARTTLS drops the buffered input.
 *
 * Input: 6 header octets, then what the client sends.
 *   [0]    bits 0-1: the settings profile (profiles[] below); bit 2: the
 *          listener offers STARTTLS; bit 3: the TLS handshake fails; bits
 *          4-5: how the session ends once all is sent (0, 3: the client
 *          closes; 1: idle timeout; 2: the server stops); bit 6: the
 *          server may stop at any moment; bit 7: the idle timeout may
 *          come at any moment.
 *   [1]    the largest read: the client's octets arrive in reads of
 *          1..[1] octets (0: as much as fits at once).
 *   [2..5] the seed of the generator that picks the policy's answers
 *          (accept, refuse, defer, disconnect, odd codes and texts) and the
 *          order of events.
 *
 * What is checked, besides "no crash, no leak, no undefined behaviour"
 * (abort() with a message on failure):
 *   - every output line is a reply: "[2-5]dd" then " " or "-", no control
 *     characters, CRLF; at most 512 octets; the lines of a multi-line
 *     reply share their code; an enhanced status code's class is the
 *     reply's (RFC 3463); no output after the connection was closed;
 *   - amplification: at most (line ends received + 3) replies and
 *     1024 + 64 octets of output per octet of input;
 *   - DATA ends exactly at the first CRLF "." CRLF (RFC 5321 4.1.1.4; the
 *     start of the text counts as a line start): never earlier (SMTP
 *     smuggling), never later;
 *   - a DATA message given to data_end() has CRLF line endings only and
 *     is exactly the text dot-unstuffed (RFC 5321 4.5.2); its size is
 *     gn_smtp_tx_size(); a BDAT message has no bare CR or LF;
 *   - the policy's calls: never one while an answer is awaited; MAIL,
 *     RCPT, DATA with a transaction, data_begin() with a recipient,
 *     data_chunk() only after an accepted data_begin() and never after it
 *     returned -1; disconnect() exactly once and last;
 *   - added commands: start() only when no command is active, line() only
 *     after a 334, cancel() only for an active command and never after its
 *     final answer, none left active at disconnect(); parameter values
 *     handed to checks are esmtp-values (no "=", no control characters);
 *   - no stall: when nothing else can happen, input is not paused and
 *     another input() call changes nothing; the input buffer never fills.
 *
 * Build and run: t/fuzz/build.sh, t/fuzz/README; seeds in
 * t/fuzz/corpus/smtp/.
 */
#include "smtp/internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fail(const char *fmt, ...) GN_PRINTF(1, 2) __attribute__((noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;
	fputs("fuzz_smtp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- the generator (xorshift32) ---- */

static uint32_t rnd_state;

static uint32_t rnd(void)
{
	uint32_t x = rnd_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	rnd_state = x;
	return x;
}

static unsigned pick(unsigned n)
{
	return n > 0 ? rnd() % n : 0;
}

/* ---- fakes of the core: log, config, module, loop ---- */

/* smtp_register() (core/smtp/tap.c: the point "smtp.data_end") runs in
 * the core's register phase, never here: these only link it. */
struct gn_module_ctx *modules_core_ctx(void)
{
	return NULL;
}

int gn_hook_point_define(struct gn_module_ctx *ctx, const char *name, unsigned long timeout_ms,
			 enum gn_hook_result default_result, const char **error_r)
{
	(void)ctx;
	(void)name;
	(void)timeout_ms;
	(void)default_result;
	*error_r = "not in the fuzz target";
	return -1;
}

void conf_error(const char *fmt, ...)
{
	(void)fmt;
	fail("conf_error called");
}

void gn_logv(enum gn_log_level level, const char *area, const char *fmt, va_list ap)
{
	char line[2048];
	(void)area;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* The engine logs "event=bug" (at error level) when its own rules
	 * break, e.g. an answer with no call pending. */
	if (level == GN_LOG_ERROR)
		fail("error logged: %s", line);
}

void gn_log(enum gn_log_level level, const char *area, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gn_logv(level, area, fmt, ap);
	va_end(ap);
}

int gn_log_enabled(enum gn_log_level level, const char *area)
{
	(void)level;
	(void)area;
	return 1;
}

const char *gn_log_quote(unsigned slot, const char *s)
{
	(void)slot;
	return s != NULL ? s : "-";
}

const char *gn_config_hostname(void)
{
	return "mx.fuzz.test";
}

/* gn_smtp_settings_read() is not fuzzed here: the config getters keep the
 * defaults. */
int gn_config_int(struct gn_config *sect, const char *name, long long def,
		  long long min, long long max, long long *value_r)
{
	(void)sect, (void)name, (void)min, (void)max;
	*value_r = def;
	return 0;
}

int gn_config_bool(struct gn_config *sect, const char *name, bool def, bool *value_r)
{
	(void)sect, (void)name;
	*value_r = def;
	return 0;
}

int gn_config_duration_ms(struct gn_config *sect, const char *name, long long def_ms,
			  long long *value_r)
{
	(void)sect, (void)name;
	*value_r = def_ms;
	return 0;
}

int gn_config_size(struct gn_config *sect, const char *name, unsigned long long def,
		   unsigned long long *value_r)
{
	(void)sect, (void)name;
	*value_r = def;
	return 0;
}

void gn_config_error(struct gn_config *sect, const char *name, const char *fmt, ...)
{
	(void)sect, (void)name, (void)fmt;
}

const char *gn_config_path(const struct gn_config *sect)
{
	(void)sect;
	return "fuzz";
}

/* The store's copy of a message's check results (gn_smtp_tx_set_auth(),
 * which only an end-of-data hook calls: none here). */
struct gn_store_message_auth *gn_store_message_auth_copy(struct gn_pool *pool,
							 const struct gn_store_message_auth *auth)
{
	(void)pool;
	if (auth != NULL)
		fail("gn_store_message_auth_copy: no hook sets results in the fuzzer");
	return NULL;
}

const char *gn_module_name(const struct gn_module_ctx *ctx)
{
	(void)ctx;
	return "fuzz";
}

double gn_now(void)
{
	return 1700000000.0;
}

/* Timers: fired by the loop below, in no particular order of time. */
struct gn_timer {
	bool active, repeat;
	unsigned long ms;
	gn_timer_fn *fn;
	void *data;
};

/* Timers of 10 minutes and more (the default time limits) never fire: a
 * random one would end almost every session early.  Profile 1 has short
 * time limits, which do. */
#define LONG_TIMER_MS (10ul * 60 * 1000)

#define MAX_TIMERS 8
static struct gn_timer *timers[MAX_TIMERS];

struct gn_timer *gn_timer_new(unsigned long ms, bool repeat, gn_timer_fn *fn, void *data)
{
	struct gn_timer *t = gn_calloc(1, sizeof(*t));
	t->ms = ms;
	t->active = true;
	t->repeat = repeat;
	t->fn = fn;
	t->data = data;
	for (size_t i = 0; i < MAX_TIMERS; i++) {
		if (timers[i] == NULL) {
			timers[i] = t;
			return t;
		}
	}
	fail("more than %d timers", MAX_TIMERS);
}

void gn_timer_reset(struct gn_timer *t)
{
	t->active = true;
}

void gn_timer_free(struct gn_timer **tp)
{
	if (*tp == NULL)
		return;
	for (size_t i = 0; i < MAX_TIMERS; i++)
		if (timers[i] == *tp)
			timers[i] = NULL;
	gn_free(*tp);
	*tp = NULL;
}

static struct gn_timer *timer_due(void)
{
	for (size_t i = 0; i < MAX_TIMERS; i++)
		if (timers[i] != NULL && timers[i]->active && timers[i]->ms < LONG_TIMER_MS)
			return timers[i];
	return NULL;
}

/* ---- the fake connection ---- */

#define MAX_PROTOS 4

static struct {
	const struct gn_protocol *proto;
	void *data;
} protos[MAX_PROTOS];
static size_t n_protos;

int gn_protocol_register(struct gn_module_ctx *ctx, const struct gn_protocol *proto,
			 void *data, const char **error_r)
{
	(void)ctx;
	if (n_protos == MAX_PROTOS) {
		*error_r = "too many protocols";
		return -1;
	}
	protos[n_protos].proto = proto;
	protos[n_protos].data = data;
	n_protos++;
	return 0;
}

struct gn_conn {
	const struct gn_protocol *proto;
	void *proto_data;
	void *data;
	size_t in_limit;
	struct gn_buf *in;
	size_t in_off;
	bool opened, closing, finished, paused, input_pending;
	bool can_tls, tls, handshake;
	bool in_input;			/* inside proto->input() */
	/* Everything the engine consumed, in order (the DATA checks). */
	struct gn_buf *consumed;
	/* Output checks. */
	struct gn_buf *line;		/* the output line being written */
	int ml_code;			/* code of a multi-line reply in progress */
	size_t out_total, replies, received, lf_received;
};

static size_t in_avail(const struct gn_conn *c)
{
	return gn_buf_len(c->in) - c->in_off;
}

static bool input_allowed(const struct gn_conn *c)
{
	return c->opened && !c->closing && !c->paused && !c->handshake;
}

static void fuzz_data_consumed(struct gn_conn *c);

void gn_conn_set_data(struct gn_conn *c, void *data)
{
	c->data = data;
}

void *gn_conn_data(const struct gn_conn *c)
{
	return c->data;
}

void gn_conn_input_peek(struct gn_conn *c, const char **data_r, size_t *len_r)
{
	*data_r = gn_buf_data(c->in) + c->in_off;
	*len_r = in_avail(c);
}

void gn_conn_input_consume(struct gn_conn *c, size_t n)
{
	size_t avail = in_avail(c);
	if (n > avail)
		fail("consumed %zu octets, %zu buffered", n, avail);
	gn_buf_append(c->consumed, gn_buf_data(c->in) + c->in_off, n);
	c->in_off += n;
	fuzz_data_consumed(c);
}

void gn_conn_input_pause(struct gn_conn *c)
{
	c->paused = true;
}

void gn_conn_input_resume(struct gn_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	if (c->closing)
		return;
	c->input_pending = in_avail(c) > 0;
}

static void check_reply_line(struct gn_conn *c, const char *l, size_t len)
{
	int code;

	if (len < 4 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' ||
	    l[2] < '0' || l[2] > '9' || (l[3] != ' ' && l[3] != '-'))
		fail("output line is no reply: \"%.*s\"", (int)len, l);
	if (len > 512)
		fail("reply line of %zu octets", len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)l[i] < 0x20 || l[i] == 0x7f)
			fail("control character 0x%02x in a reply", (unsigned char)l[i]);
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (c->ml_code != 0 && code != c->ml_code)
		fail("multi-line reply changes its code: %d then %d", c->ml_code, code);
	/* RFC 3463 2: the class of an enhanced code is the reply's. */
	if (len >= 9 && l[4] >= '0' && l[4] <= '9' && l[5] == '.' &&
	    l[6] >= '0' && l[6] <= '9' && l[4] != l[0])
		fail("enhanced code of another class: \"%.*s\"", (int)len, l);
	if (l[3] == '-') {
		c->ml_code = code;
		return;
	}
	c->ml_code = 0;
	c->replies++;
	if (c->replies > c->lf_received + 3)
		fail("%zu replies to %zu line ends", c->replies, c->lf_received);
}

static void output(struct gn_conn *c, const char *p, size_t n)
{
	if (!c->opened || c->finished)
		fail("output outside the connection's life");
	if (c->closing)
		fail("output after the connection was closed: \"%.*s\"", (int)n, p);
	c->out_total += n;
	if (c->out_total > 1024 + 64 * c->received)
		fail("%zu octets of output for %zu of input", c->out_total, c->received);
	for (size_t i = 0; i < n; i++) {
		size_t len = gn_buf_len(c->line);
		const char *l = gn_buf_data(c->line);
		if (len > 0 && l[len - 1] == '\r' && p[i] != '\n')
			fail("bare CR in the output");
		if (p[i] == '\n') {
			if (len == 0 || l[len - 1] != '\r')
				fail("bare LF in the output");
			check_reply_line(c, l, len - 1);
			gn_buf_clear(c->line);
			continue;
		}
		gn_buf_append(c->line, p + i, 1);
		if (gn_buf_len(c->line) > 1024)
			fail("output line without end");
	}
}

int gn_conn_write(struct gn_conn *c, const void *data, size_t len)
{
	output(c, data, len);
	return 0;
}

int gn_conn_printf(struct gn_conn *c, const char *fmt, ...)
{
	va_list ap;
	struct gn_buf *b = gn_buf_new(0);

	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	output(c, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return 0;
}

void gn_conn_close(struct gn_conn *c, const char *reason)
{
	(void)reason;
	c->closing = true;
}

bool gn_conn_is_closed(const struct gn_conn *c)
{
	return c->closing || c->finished;
}

void gn_conn_set_idle_timeout(struct gn_conn *c, unsigned long ms)
{
	(void)c;
	if (ms == 0)
		fail("idle timeout 0");
}

bool gn_conn_can_starttls(const struct gn_conn *c)
{
	return c->can_tls && !c->tls && !c->handshake && !c->closing;
}

int gn_conn_starttls(struct gn_conn *c)
{
	if (!gn_conn_can_starttls(c))
		return -1;
	/* RFC 3207 5: what was pipelined after STARTTLS is dropped. */
	gn_buf_clear(c->in);
	c->in_off = 0;
	c->input_pending = false;
	c->handshake = true;
	return 0;
}

bool gn_conn_is_tls(const struct gn_conn *c)
{
	return c->tls;
}

const char *gn_conn_tls_version(const struct gn_conn *c)
{
	return c->tls ? "TLS1.3" : NULL;
}

const char *gn_conn_tls_cipher(const struct gn_conn *c)
{
	return c->tls ? "AES-256-GCM" : NULL;
}

const char *gn_conn_remote_ip(const struct gn_conn *c)
{
	(void)c;
	return "192.0.2.1";
}

const char *gn_conn_id(const struct gn_conn *c)
{
	(void)c;
	return "fuzz-1";
}

/* ---- the policy ---- */

/* Settings profiles, one server each. */
static struct gn_smtp_server *servers[4];
static const struct gn_smtp_settings *cur_set;

/* The policy's view of the one session. */
static struct {
	struct gn_conn *conn;
	struct gn_smtp_session *s;
	enum gn_smtp_stage pending;	/* the call awaiting our answer */
	bool deferred;			/* answer it from the loop */
	bool connected, disconnected;
	bool receiving;			/* data_begin accepted, until the end */
	bool bdat;			/* the message comes in BDAT chunks */
	bool stopped;			/* data_chunk returned -1 */
	size_t data_start;		/* consumed offset where DATA text starts */
	struct gn_buf *msg;		/* what data_chunk() gave */
	/* A DATA text ended inside input(); checked once the engine has
	 * consumed it (the consume follows the data_end() or reset() call). */
	bool check_end, check_msg;
	unsigned long long end_size;
	/* Added commands */
	bool cmd_active;		/* start() came, no final answer or cancel */
	bool cmd_waiting;		/* a 334 went out: line() may come */
	bool cmd_has_line;		/* the active command has a line callback */
} pol;

static void answer_now(void);

static void policy_enter(struct gn_smtp_session *s, enum gn_smtp_stage stage)
{
	if (pol.disconnected)
		fail("policy called after disconnect");
	if (pol.pending != GN_SMTP_STAGE_NONE)
		fail("policy called (stage %d) while stage %d awaits its answer",
		     (int)stage, (int)pol.pending);
	if (gn_smtp_session_stage(s) != stage)
		fail("session stage %d, called for %d", (int)gn_smtp_session_stage(s), (int)stage);
	pol.s = s;
	pol.pending = stage;
	/* The accessors must work in every call. */
	(void)gn_smtp_session_protocol(s);
	(void)gn_smtp_session_hostname(s);
	(void)gn_smtp_session_helo(s);
	(void)gn_smtp_session_is_ehlo(s);
	if (gn_smtp_session_conn(s) != pol.conn)
		fail("session on another connection");
	if (pick(4) == 0)
		pol.deferred = true;
	else
		answer_now();
}

/* Texts a policy might answer with, including what it should not. */
static const char *texts[] = {
	NULL, "", "OK", "Go away", "first line\nsecond line\nthird",
	"control \x01\x7f\r characters\r\n250 injected", "trailing newline\n",
	"\n", "percent %s %n",
};
static const char *enhs[] = {
	NULL, "2.0.0", "2.1.5", "5.1.1", "4.7.1", "5.7.1", "9.9.9", "5.1", "5.1.1234",
	"4.2.2", "", "x.y.z", "5.100.100",
};
static const int codes[] = {
	250, 250, 250, 250, 220, 251, 421, 450, 451, 452, 550, 552, 553, 554, 0, 199, 354, 600, -1,
};

/* A text of the client's own, as a policy that says "no such user <...>"
 * would. */
static const char *echo_text(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	size_t n;

	if (tx != NULL && (n = gn_smtp_tx_rcpt_count(tx)) > 0) {
		const struct gn_addr *a = gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, n - 1));
		return gn_addr_to_string(gn_smtp_tx_pool(tx), a);
	}
	if (tx != NULL && gn_smtp_tx_from(tx) != NULL)
		return gn_addr_to_string(gn_smtp_tx_pool(tx), gn_smtp_tx_from(tx));
	return gn_smtp_session_helo(s);
}

static void answer_now(void)
{
	struct gn_smtp_session *s = pol.s;
	enum gn_smtp_stage stage = pol.pending;
	unsigned how = pick(16);
	const char *text = texts[pick(sizeof(texts) / sizeof(texts[0]))];
	const char *enh = enhs[pick(sizeof(enhs) / sizeof(enhs[0]))];
	int code = codes[pick(sizeof(codes) / sizeof(codes[0]))];
	bool accept;

	if (pick(4) == 0)
		text = echo_text(s);
	pol.pending = GN_SMTP_STAGE_NONE;
	pol.deferred = false;
	if (stage == GN_SMTP_STAGE_COMMAND && pick(3) == 0) {
		/* One more line, please: 334 (or a code that is no 3xx, or a
		 * command without line(): the engine ends it with 451). */
		int more = pick(6) == 0 ? code : 334;
		bool good = more >= 300 && more < 400 && pol.cmd_has_line;
		pol.cmd_waiting = good;
		pol.cmd_active = good;
		gn_smtp_answer_more(s, more, "%s", pick(2) ? "" : text != NULL ? text : "eA==");
		return;
	}
	if (stage == GN_SMTP_STAGE_COMMAND)
		pol.cmd_active = false;
	if (how < 8) {
		/* Mostly yes, so that sessions get far. */
		accept = true;
		if (pick(2))
			gn_smtp_answer(s, 250, NULL, NULL);
		else
			gn_smtp_answer(s, 250, enh, "%s", text != NULL ? text : "yes");
	} else if (how < 12) {
		accept = code >= 200 && code < 300;
		if (text == NULL)
			gn_smtp_answer(s, code, enh, NULL);
		else
			gn_smtp_answer(s, code, enh, "%s", text);
	} else {
		static const enum gn_hook_result results[] = {
			GN_HOOK_CONTINUE, GN_HOOK_ACCEPT, GN_HOOK_REJECT, GN_HOOK_TEMPFAIL,
			GN_HOOK_DISCONNECT, GN_HOOK_PENDING, (enum gn_hook_result)77,
		};
		enum gn_hook_result r = results[pick(sizeof(results) / sizeof(results[0]))];
		struct gn_hook_reply reply = { code, enh, text, "fuzz" };
		accept = r == GN_HOOK_CONTINUE || r == GN_HOOK_ACCEPT;
		gn_smtp_answer_hook(s, r, pick(3) == 0 ? NULL : &reply);
	}
	if (stage == GN_SMTP_STAGE_DATA_BEGIN && accept && !pol.disconnected &&
	    !gn_conn_is_closed(pol.conn))
		pol.receiving = true;
}

static void p_connect(struct gn_smtp_session *s, void *data)
{
	(void)data;
	if (pol.connected)
		fail("connect twice");
	pol.connected = true;
	gn_smtp_session_set_data(s, &pol);
	policy_enter(s, GN_SMTP_STAGE_CONNECT);
}

static void p_helo(struct gn_smtp_session *s, const char *name, bool ehlo, void *data)
{
	(void)data;
	if (name == NULL || *name == '\0' || strlen(name) > 255 || strchr(name, ' ') != NULL)
		fail("HELO name \"%s\"", name != NULL ? name : "(null)");
	if (strcmp(gn_smtp_session_helo(s), name) != 0 || gn_smtp_session_is_ehlo(s) != ehlo)
		fail("HELO name not what the session says");
	if (gn_smtp_session_tx(s) != NULL)
		fail("HELO within a transaction");
	policy_enter(s, GN_SMTP_STAGE_HELO);
}

static void p_mail(struct gn_smtp_session *s, const struct gn_addr *from, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;
	if (tx == NULL || gn_smtp_tx_from(tx) != from || gn_smtp_tx_rcpt_count(tx) != 0)
		fail("MAIL without a fresh transaction");
	if (gn_smtp_session_data(s) != &pol || gn_smtp_session_helo(s) == NULL)
		fail("MAIL before HELO");
	if (gn_smtp_tx_declared_size(tx) > cur_set->max_message_size)
		fail("MAIL SIZE over the limit reached the policy");
	(void)gn_smtp_tx_id(tx);
	(void)gn_smtp_tx_body(tx);
	{
		const char *v = NULL;
		if (gn_smtp_tx_param(tx, "xv", &v) > 0 && v != NULL && strlen(v) > 8)
			fail("XV longer than its max_length");
		if (gn_smtp_tx_param(tx, "AUTH", &v) > 0 && v == NULL)
			fail("AUTH= without its value");
		if (gn_smtp_tx_param(tx, "SIZE", &v) != 0)
			fail("the engine's SIZE among the added parameters");
	}
	(void)gn_smtp_tx_smtputf8(tx);
	if (from != NULL)
		(void)gn_addr_to_string(gn_smtp_tx_pool(tx), from);
	policy_enter(s, GN_SMTP_STAGE_MAIL);
}

static void p_rcpt(struct gn_smtp_session *s, struct gn_smtp_rcpt *rcpt, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;
	if (tx == NULL || rcpt == NULL || gn_smtp_rcpt_addr(rcpt) == NULL)
		fail("RCPT without a transaction or an address");
	if (gn_smtp_tx_rcpt_count(tx) >= cur_set->max_recipients)
		fail("RCPT past max_recipients reached the policy");
	gn_smtp_rcpt_set_data(rcpt, &pol);
	{
		const char *v = NULL;
		if (gn_smtp_rcpt_param(rcpt, "NOTIFY", &v) > 0 && v == NULL)
			fail("NOTIFY= without its value");
		(void)gn_smtp_rcpt_param(rcpt, "ORCPT", &v);
	}
	for (size_t i = 0; i < gn_smtp_tx_rcpt_count(tx); i++)
		if (gn_smtp_rcpt_data(gn_smtp_tx_rcpt(tx, i)) != &pol)
			fail("a recipient lost its data");
	policy_enter(s, GN_SMTP_STAGE_RCPT);
}

/* The command line the engine consumed last (the DATA or BDAT that called
 * data_begin). */
static bool last_line_is(const char *verb)
{
	const char *p = gn_buf_data(pol.conn->consumed);
	size_t n = gn_buf_len(pol.conn->consumed), start;

	if (n == 0 || p[n - 1] != '\n')
		return false;
	start = n - 1;
	while (start > 0 && p[start - 1] != '\n')
		start--;
	return n - start >= 4 && strncasecmp(p + start, verb, 4) == 0;
}

static void p_data_begin(struct gn_smtp_session *s, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;
	if (tx == NULL || gn_smtp_tx_rcpt_count(tx) == 0)
		fail("data_begin without a recipient");
	if (pol.receiving)
		fail("data_begin twice");
	pol.bdat = last_line_is("BDAT");
	if (!pol.bdat && !last_line_is("DATA"))
		fail("data_begin after neither DATA nor BDAT");
	pol.stopped = false;
	pol.data_start = gn_buf_len(pol.conn->consumed);
	gn_buf_clear(pol.msg);
	policy_enter(s, GN_SMTP_STAGE_DATA_BEGIN);
}

static int p_data_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;
	if (pol.disconnected || tx == NULL || !pol.receiving)
		fail("a data chunk outside a message");
	if (pol.stopped)
		fail("a data chunk after data_chunk() returned -1");
	if (pol.pending != GN_SMTP_STAGE_NONE)
		fail("a data chunk while an answer is awaited");
	if (len == 0)
		fail("an empty data chunk");
	gn_buf_append(pol.msg, buf, len);
	if (gn_buf_len(pol.msg) > cur_set->max_message_size)
		fail("more than max_message_size given to the policy");
	if (pick(64) == 0) {
		pol.stopped = true;
		return -1;
	}
	return 0;
}

/* Line endings are CRLF only.  (A BDAT message need not end with one: the
 * engine takes the last line as it comes.) */
static void check_crlf(const char *p, size_t n, const char *what, bool must_end)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			fail("%s: bare CR at %zu", what, i);
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			fail("%s: bare LF at %zu", what, i);
	}
	if (must_end && n > 0 && p[n - 1] != '\n')
		fail("%s: does not end with CRLF", what);
}

static void p_data_end(struct gn_smtp_session *s, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;
	if (tx == NULL || !pol.receiving || gn_smtp_tx_rcpt_count(tx) == 0)
		fail("data_end outside a message");
	if (gn_smtp_tx_size(tx) > cur_set->max_message_size)
		fail("data_end for a message over the limit");
	if (!pol.stopped && gn_smtp_tx_size(tx) != gn_buf_len(pol.msg))
		fail("tx size %llu, %zu octets given", gn_smtp_tx_size(tx), gn_buf_len(pol.msg));
	if (pol.bdat) {
		if (!pol.stopped)
			check_crlf(gn_buf_data(pol.msg), gn_buf_len(pol.msg), "BDAT message",
				   false);
	} else {
		if (!pol.conn->in_input)
			fail("DATA ended outside input()");
		pol.check_end = true;
		pol.check_msg = !pol.stopped;
		pol.end_size = gn_smtp_tx_size(tx);
	}
	pol.receiving = false;
	policy_enter(s, GN_SMTP_STAGE_DATA_END);
}

static void p_reset(struct gn_smtp_session *s, void *data)
{
	(void)data;
	if (pol.disconnected || gn_smtp_session_tx(s) == NULL)
		fail("reset without a transaction");
	/* Inside input(), a DATA text ends in a reset only at its end (too
	 * big, bare line endings). */
	if (pol.receiving && !pol.bdat && pol.conn->in_input) {
		pol.check_end = true;
		pol.check_msg = false;
	}
	pol.receiving = false;
}

static void p_disconnect(struct gn_smtp_session *s, void *data)
{
	(void)s, (void)data;
	if (pol.disconnected)
		fail("disconnect twice");
	pol.disconnected = true;
	if (pol.cmd_active)
		fail("disconnect with a command neither answered nor cancelled");
	/* A real policy cancels its pending work here. */
	pol.pending = GN_SMTP_STAGE_NONE;
	pol.deferred = false;
}

/* ---- the added extensions ---- */

static bool p_offer(struct gn_smtp_session *s, struct gn_buf *params, void *data)
{
	(void)s, (void)data;
	switch (pick(4)) {
	case 0:
		return false;
	case 1:
		gn_buf_append_str(params, "PLAIN X-STEPS");
		return true;
	case 2:
		/* Not ehlo-params: the engine leaves the keyword out. */
		gn_buf_append_str(params, pick(2) ? "bad  params" : "bad\r\n250 x");
		return true;
	default:
		return true;	/* the static params */
	}
}

static int p_check(struct gn_smtp_session *s, const char *value,
		   struct gn_hook_reply *reply, void *data)
{
	(void)s;
	if (pol.disconnected)
		fail("parameter check after disconnect");
	/* An xtext value (data set) is decoded: any octet but controls. */
	for (const char *p = value; p != NULL && *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f || (data == NULL && (c == '=' || c == ' ')))
			fail("parameter value \"%s\" is no esmtp-value", value);
	}
	if (pick(4) != 0)
		return 0;
	reply->code = codes[pick(sizeof(codes) / sizeof(codes[0]))];
	reply->enhanced = enhs[pick(sizeof(enhs) / sizeof(enhs[0]))];
	reply->text = texts[pick(sizeof(texts) / sizeof(texts[0]))];
	return -1;
}

static void p_cmd_start(struct gn_smtp_session *s, const char *args, void *data)
{
	if (pol.cmd_active)
		fail("a command started while another is active");
	if (args == NULL)
		fail("command without arguments string");
	pol.cmd_active = true;
	pol.cmd_waiting = false;
	pol.cmd_has_line = data != NULL;
	policy_enter(s, GN_SMTP_STAGE_COMMAND);
}

static void p_cmd_line(struct gn_smtp_session *s, const char *line, void *data)
{
	(void)data;
	if (!pol.cmd_waiting)
		fail("a continuation line nobody asked for");
	if (strchr(line, '\r') != NULL || strchr(line, '\n') != NULL)
		fail("a continuation line with a line ending");
	pol.cmd_waiting = false;
	policy_enter(s, GN_SMTP_STAGE_COMMAND);
}

static void p_cmd_cancel(struct gn_smtp_session *s, void *data)
{
	(void)s, (void)data;
	if (!pol.cmd_active)
		fail("cancel of a command that is not active");
	if (pol.disconnected)
		fail("cancel after disconnect");
	pol.cmd_active = false;
	pol.cmd_waiting = false;
	/* The command cancels its pending work. */
	pol.pending = GN_SMTP_STAGE_NONE;
	pol.deferred = false;
}

static int add_extensions(struct gn_smtp_server *srv, const char **error_r)
{
	static int with_line;	/* its address marks a command with line() */
	const struct gn_smtp_keyword keywords[] = {
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "AUTH",
		  .params = "PLAIN", .offer = p_offer },
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "DSN" },
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "XTLSONLY",
		  .flags = GN_SMTP_KEYWORD_TLS },
	};
	const struct gn_smtp_param params[] = {
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "AUTH", .extension = "AUTH",
		  .flags = GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_XTEXT, .check = p_check,
		  .data = &with_line },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "XV", .max_length = 8, .check = p_check },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "XT", .extension = "XTLSONLY", .flags = GN_SMTP_PARAM_NO_VALUE },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_RCPT,
		  .keyword = "NOTIFY", .extension = "DSN", .flags = GN_SMTP_PARAM_VALUE,
		  .check = p_check },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_RCPT,
		  .keyword = "ORCPT", .extension = "DSN",
		  .flags = GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_XTEXT },
	};
	const struct gn_smtp_command commands[] = {
		{ .size = sizeof(struct gn_smtp_command), .verb = "AUTH", .extension = "AUTH",
		  .states = GN_SMTP_STATE_HELO, .flags = GN_SMTP_CMD_ARGS,
		  .max_line_length = 1024, .max_lines = 3, .start = p_cmd_start,
		  .line = p_cmd_line, .cancel = p_cmd_cancel, .data = &with_line },
		{ .size = sizeof(struct gn_smtp_command), .verb = "XRESTART",
		  .states = GN_SMTP_STATE_INIT | GN_SMTP_STATE_HELO | GN_SMTP_STATE_MAIL,
		  .flags = GN_SMTP_CMD_NOARGS | GN_SMTP_CMD_RESTART, .start = p_cmd_start,
		  .line = p_cmd_line, .cancel = p_cmd_cancel, .data = &with_line },
		{ .size = sizeof(struct gn_smtp_command), .verb = "XNOLINE",
		  .states = GN_SMTP_STATE_HELO | GN_SMTP_STATE_MAIL,
		  .start = p_cmd_start, .cancel = p_cmd_cancel },
	};

	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (gn_smtp_server_add_keyword(srv, &keywords[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if (gn_smtp_server_add_param(srv, &params[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (gn_smtp_server_add_command(srv, &commands[i], error_r) < 0)
			return -1;
	return 0;
}

static const struct gn_smtp_policy policy = {
	.size = sizeof(struct gn_smtp_policy),
	.connect = p_connect,
	.helo = p_helo,
	.mail = p_mail,
	.rcpt = p_rcpt,
	.data_begin = p_data_begin,
	.data_chunk = p_data_chunk,
	.data_end = p_data_end,
	.reset = p_reset,
	.disconnect = p_disconnect,
};

/* After the engine consumed the end of a DATA text: it ended exactly at
 * the first CRLF "." CRLF, and (when data_end() came) the message is the
 * text dot-unstuffed. */
static void fuzz_data_consumed(struct gn_conn *c)
{
	const char *raw;
	size_t n, end = 0;

	if (!pol.check_end)
		return;
	pol.check_end = false;
	raw = gn_buf_data(c->consumed) + pol.data_start;
	n = gn_buf_len(c->consumed) - pol.data_start;
	/* The first end of data: the text starts at a line start. */
	if (n >= 3 && memcmp(raw, ".\r\n", 3) == 0) {
		end = 3;
	} else {
		for (size_t i = 0; i + 5 <= n; i++) {
			if (memcmp(raw + i, "\r\n.\r\n", 5) == 0) {
				end = i + 5;
				break;
			}
		}
	}
	if (end != n)
		fail("DATA ended after %zu octets, the first CRLF.CRLF ends at %zu%s", n, end,
		     end == 0 ? " (none)" : "");
	if (!pol.check_msg)
		return;
	/* RFC 5321 4.5.2: the first dot of a line that starts with one is
	 * dropped. */
	{
		struct gn_buf *want = gn_buf_new(0);
		size_t body = n - 3;	/* without the final ".\r\n" */
		bool bol = true;
		check_crlf(raw, body, "DATA text", true);
		for (size_t i = 0; i < body; i++) {
			if (!(bol && raw[i] == '.'))
				gn_buf_append(want, raw + i, 1);
			bol = raw[i] == '\n';
		}
		if (gn_buf_len(want) != gn_buf_len(pol.msg) ||
		    memcmp(gn_buf_data(want), gn_buf_data(pol.msg), gn_buf_len(want)) != 0)
			fail("the message given (%zu octets) is not the text unstuffed (%zu)",
			     gn_buf_len(pol.msg), gn_buf_len(want));
		if (pol.end_size != gn_buf_len(want))
			fail("tx size %llu for %zu octets", pol.end_size, gn_buf_len(want));
		gn_buf_free(&want);
	}
}

/* ---- the loop ---- */

static void call_input(struct gn_conn *c)
{
	if (!input_allowed(c))
		return;
	c->input_pending = false;
	c->in_input = true;
	c->proto->input(c, c->proto_data);
	c->in_input = false;
	if (input_allowed(c) && in_avail(c) >= c->in_limit)
		fail("the input buffer is full and the engine does not read it");
}

/* What core/net/conn.c does before the loop blocks: deferred input. */
static void settle(struct gn_conn *c)
{
	while (c->input_pending && input_allowed(c))
		call_input(c);
}

static void finish(struct gn_conn *c)
{
	if (c->finished)
		return;
	c->closing = true;
	c->finished = true;
	c->proto->close(c, c->proto_data);
	if (!pol.disconnected)
		fail("close without disconnect");
}

static void run(const struct gn_protocol *proto, void *pdata, const uint8_t *in, size_t n,
		unsigned flags, unsigned maxread)
{
	struct gn_conn conn, *c = &conn;
	size_t pos = 0;
	bool shutdown_done = false, timeout_done = false, ended = false;
	unsigned end_mode = (flags >> 4) & 3;

	memset(c, 0, sizeof(*c));
	c->proto = proto;
	c->proto_data = pdata;
	c->in_limit = proto->max_input > 0 ? proto->max_input : 64 * 1024;
	c->in = gn_buf_new(0);
	c->consumed = gn_buf_new(0);
	c->line = gn_buf_new(0);
	c->can_tls = (flags & 4) != 0;
	pol.conn = c;

	c->opened = true;
	if (proto->open(c, pdata) < 0)
		gn_conn_close(c, "refused");
	c->input_pending = true;
	settle(c);

	for (unsigned steps = 0; !c->finished; steps++) {
		enum { A_READ, A_ANSWER, A_TIMER, A_TLS, A_SHUTDOWN, A_TIMEOUT, A_FINISH };
		int acts[8];
		unsigned na = 0;

		if (steps > 4 * n + 100000)
			fail("the session does not end");
		if (pos < n && input_allowed(c) && in_avail(c) < c->in_limit)
			acts[na++] = A_READ;
		if (pol.deferred && !pol.disconnected)
			acts[na++] = A_ANSWER;
		if (timer_due() != NULL)
			acts[na++] = A_TIMER;
		if (c->handshake)
			acts[na++] = A_TLS;
		if ((flags & 0x40) && !shutdown_done && !c->closing)
			acts[na++] = A_SHUTDOWN;
		if ((flags & 0x80) && !timeout_done && !c->closing && !c->handshake)
			acts[na++] = A_TIMEOUT;
		if (c->closing)
			acts[na++] = A_FINISH;

		if (na == 0) {
			/* Nothing more will happen by itself. */
			if (!ended && c->opened && !c->closing && !c->handshake) {
				size_t avail = in_avail(c), out = c->out_total;
				if (c->paused)
					fail("input paused with nothing to resume it");
				/* A spurious input() call must change nothing:
				 * else input was left unread. */
				c->input_pending = true;
				call_input(c);
				if (in_avail(c) != avail || c->out_total != out || c->closing)
					fail("input left unread (%zu octets)", avail);
			}
			if (ended) {
				/* conns_close_all() at the end of the grace
				 * period. */
				finish(c);
				break;
			}
			ended = true;
			if (c->closing || c->handshake)
				continue;
			if (end_mode == 1) {
				timeout_done = true;
				if (proto->timeout != NULL)
					proto->timeout(c, pdata);
				gn_conn_close(c, "idle timeout");
			} else if (end_mode == 2) {
				shutdown_done = true;
				if (proto->shutdown != NULL)
					proto->shutdown(c, pdata);
			} else if (input_allowed(c)) {
				gn_conn_close(c, "client closed");
			}
			settle(c);
			continue;
		}

		switch (acts[pick(na)]) {
		case A_READ: {
			size_t k = n - pos, room = c->in_limit - in_avail(c);
			size_t r = 1 + pick(maxread);
			if (maxread > 0 && k > r)
				k = r;
			if (k > room)
				k = room;
			gn_buf_append(c->in, in + pos, k);
			for (size_t i = 0; i < k; i++)
				c->lf_received += in[pos + i] == '\n';
			c->received += k;
			pos += k;
			call_input(c);
			break;
		}
		case A_ANSWER:
			answer_now();
			break;
		case A_TIMER: {
			struct gn_timer *t = timer_due();
			t->active = t->repeat;
			t->fn(t->data);
			break;
		}
		case A_TLS:
			c->handshake = false;
			if (flags & 8) {
				/* conn.c: tls_done(0), then abort. */
				c->closing = true;
				if (proto->tls_done != NULL)
					proto->tls_done(c, 0, pdata);
				finish(c);
			} else {
				c->tls = true;
				if (proto->tls_done != NULL)
					proto->tls_done(c, 1, pdata);
				c->input_pending = true;
			}
			break;
		case A_SHUTDOWN:
			shutdown_done = true;
			if (proto->shutdown != NULL)
				proto->shutdown(c, pdata);
			break;
		case A_TIMEOUT:
			timeout_done = true;
			if (proto->timeout != NULL)
				proto->timeout(c, pdata);
			gn_conn_close(c, "idle timeout");
			break;
		case A_FINISH:
			finish(c);
			break;
		}
		settle(c);
	}
	if (gn_buf_len(c->line) > 0)
		fail("output ends in the middle of a line");
	if (c->ml_code != 0)
		fail("output ends in the middle of a multi-line reply");
	for (size_t i = 0; i < MAX_TIMERS; i++)
		if (timers[i] != NULL)
			fail("a timer outlives the session");
	gn_buf_free(&c->in);
	gn_buf_free(&c->consumed);
	gn_buf_free(&c->line);
}

/* ---- the target ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct gn_smtp_settings set;
	const char *error;
	(void)argc, (void)argv;

	for (size_t i = 0; i < 4; i++) {
		gn_smtp_settings_init(&set);
		switch (i) {
		case 0:		/* the defaults */
			break;
		case 1:		/* small limits, so that they are reached */
			set.max_message_size = 300;
			set.max_recipients = 2;
			set.max_commands = 30;
			set.error_delay_after = 2;
			set.error_delay_ms = 1;
			set.max_errors = 5;
			set.max_received_headers = 2;
			/* Short time limits: the loop fires them at random. */
			set.timeout_data_total_ms = 1000;
			set.timeout_session_ms = 2000;
			break;
		case 2:		/* no CHUNKING, no SMTPUTF8 */
			set.chunking = false;
			set.smtputf8 = false;
			set.max_line_length = 1000;
			set.error_delay_after = 0;
			break;
		case 3:		/* the longest lines, few commands */
			set.max_line_length = 32768;
			set.max_message_size = 4096;
			set.error_delay_ms = 0;
			set.max_errors = 100000;
			set.max_commands = 10;
			break;
		}
		servers[i] = gn_smtp_server_register(NULL, "smtp", &set, &policy, NULL, &error);
		if (servers[i] == NULL || add_extensions(servers[i], &error) < 0)
			fail("register: %s", error);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned profile;

	if (size < 6)
		return 0;
	profile = data[0] & 3;
	rnd_state = ((uint32_t)data[2] << 24 | (uint32_t)data[3] << 16 |
		     (uint32_t)data[4] << 8 | data[5]) | 1;
	memset(&pol, 0, sizeof(pol));
	pol.msg = gn_buf_new(0);
	cur_set = gn_smtp_server_settings(servers[profile]);
	run(protos[profile].proto, protos[profile].data, data + 6, size - 6, data[0], data[1]);
	if (!pol.disconnected)
		fail("no disconnect");
	gn_buf_free(&pol.msg);
	return 0;
}
