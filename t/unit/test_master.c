/*
 * t/unit/test_master.c: the parts of core/runtime/master.c that need no running
 * server: restart backoff, giving up on a child that cannot start, how an
 * exit is described in the log, the default number of workers, and
 * dropping privileges (in a forked child, when run as root).
 *
 * The file includes core/runtime/master.c to reach its static functions; its
 * public functions then come from here instead of the core library.
 */
#include "../../core/runtime/master.c"

#include <sys/wait.h>
#include "tap.h"

static void test_backoff(void)
{
	unsigned long want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
	unsigned long d = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = backoff_next(d, 0.5);
		is_int((long long)d, (long long)want[i], "restart %zu waits %lu ms", i + 1, want[i]);
	}
	is_int((long long)backoff_next(60000, 59.9), 60000, "a child that lived 59.9s keeps the long delay");
	is_int((long long)backoff_next(60000, 60.0), 1000, "a child that lived 60s starts over at 1s");
	is_int((long long)backoff_next(8000, 3600.0), 1000, "a child that lived an hour starts over at 1s");
}

static void test_give_up(void)
{
	struct slot s = { .kind = KIND_WORKER };
	int start_failed = W_EXITCODE(EXIT_START_FAILED, 0);
	for (int i = 1; i < START_FAILURES_MAX; i++)
		is_int(slot_exited(&s, start_failed, 0.1), ACTION_RESTART,
		       "start failure %d: restart", i);
	is_int(slot_exited(&s, start_failed, 0.1), ACTION_GIVE_UP,
	       "start failure %d in a row: give up", START_FAILURES_MAX);

	struct slot t = { .kind = KIND_WORKER };
	for (int i = 1; i < START_FAILURES_MAX; i++)
		slot_exited(&t, start_failed, 0.1);
	is_int(slot_exited(&t, W_EXITCODE(0, SIGKILL), 10.0), ACTION_RESTART,
	       "a killed child is restarted");
	is_int((long long)t.start_failures, 0, "other exits reset the start failure count");
	for (int i = 1; i < START_FAILURES_MAX; i++)
		is_int(slot_exited(&t, start_failed, 0.1), ACTION_RESTART,
		       "after the reset, start failure %d: restart", i);

	struct slot u = { .kind = KIND_RUNNER };
	for (int i = 0; i < 20; i++)
		slot_exited(&u, W_EXITCODE(EXIT_DB_FAILED, 0), 0.1);
	is_int(slot_exited(&u, W_EXITCODE(EXIT_DB_FAILED, 0), 0.1), ACTION_RESTART,
	       "a child without a database is retried for ever");
	is_int((long long)u.delay_ms, (long long)BACKOFF_MAX_MS, "... at most every 60s");
}

static void test_status_text(void)
{
	char buf[64];
	is_str(status_text(W_EXITCODE(3, 0), buf, sizeof(buf)), "exit_code=3", "exit code");
	is_str(status_text(W_EXITCODE(0, SIGKILL), buf, sizeof(buf)), "signal=KILL", "signal");
	is_str(status_text(W_EXITCODE(0, SIGSEGV) | 0x80, buf, sizeof(buf)),
	       "signal=SEGV core_dumped=yes", "signal with core dump");
}

static void test_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	is_int(workers_wanted(3), 3, "workers = 3 forks three");
	is_int(workers_wanted(0), n < 1 ? 2 : 2 * n, "workers = 0: two per CPU");
}

/* Runs privileges_drop(user) in a child; returns its report through a pipe:
 * "ok uid gid" or the error. */
static void drop_in_child(const char *user, char *out, size_t size)
{
	int p[2];
	if (pipe(p) < 0) {
		snprintf(out, size, "pipe failed");
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		const char *err = NULL;
		char msg[600];
		if (privileges_drop(user, &err) < 0)
			snprintf(msg, sizeof(msg), "error: %s", err);
		else
			snprintf(msg, sizeof(msg), "ok %u %u %u", (unsigned)getuid(),
				 (unsigned)geteuid(), (unsigned)getgid());
		(void)!write(p[1], msg, strlen(msg));
		_exit(0);
	}
	close(p[1]);
	ssize_t n = 0, r;
	while ((r = read(p[0], out + n, size - 1 - (size_t)n)) > 0)
		n += r;
	out[n] = '\0';
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void test_privileges(void)
{
	char out[700];
	if (geteuid() != 0) {
		const char *err = NULL;
		is_int(privileges_drop("nobody", &err), 0, "not root: privileges_drop does nothing");
		is_int((long long)getuid(), (long long)geteuid(), "... and the ids stay");
		return;
	}
	struct passwd *pw = getpwnam("nobody");
	if (pw == NULL) {
		ok(false, "the user nobody exists");
		return;
	}
	char want[64];
	snprintf(want, sizeof(want), "ok %u %u %u", (unsigned)pw->pw_uid, (unsigned)pw->pw_uid,
		 (unsigned)pw->pw_gid);
	drop_in_child("nobody", out, sizeof(out));
	is_str(out, want, "root drops to nobody's uid and gid");
	drop_in_child("no-such-user-gannet", out, sizeof(out));
	like(out, "unknown user no-such-user-gannet", "an unknown user is refused");
	drop_in_child("root", out, sizeof(out));
	like(out, "uid 0", "a user with uid 0 is refused");
	drop_in_child(NULL, out, sizeof(out));
	like(out, "without a user", "root without a user is refused");
}

int main(void)
{
	log_set_level(NULL, GN_LOG_ERROR);
	test_backoff();
	test_give_up();
	test_status_text();
	test_workers();
	test_privileges();
	return done_testing();
}
