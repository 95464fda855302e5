/*
 * core/runtime/master.c: `gannet serve`: the master process, its children, and
 * dropping privileges.
 *
 * The master (core/main.c has loaded the config and registered the modules)
 * checks and migrates the schema, loads the certificates, binds the
 * listeners (it may need root for port 25), writes the pid file, drops
 * privileges and forks the children: N workers that accept connections and
 * one runner that hosts the background jobs.  It then only supervises:
 *
 *   - a child that dies is logged and started again in its slot after a
 *     backoff (1s, doubling to 60s; a child that lived 60s starts the
 *     sequence again).  A child that fails its start (exit code 3) five
 *     times in a row stops the whole server with exit code 1: retrying a
 *     broken module forever only fills the log.
 *   - SIGTERM or SIGINT: stop restarting, SIGTERM every child, SIGKILL what
 *     is left after the grace period plus 5s, remove the pid file, exit 0.
 *   - SIGHUP: graceful restart of the children (the config is not re-read
 *     in this version): each child is told to stop and a new one takes its
 *     slot at once, so the listeners keep accepting.
 *
 * A worker that gets SIGTERM stops accepting, asks every connection's
 * protocol to end its session (ops->conns_shutdown), and exits when the last
 * connection is gone or the grace period ends (the rest are closed).  The
 * runner stops its jobs and exits.  `serve --foreground` does everything in
 * one process ("single") with the same stop sequence.  Children die with
 * the master (PR_SET_PDEATHSIG).
 *
 * Signals reach the code only through libev signal watchers: the handlers
 * run from the loop, so they may do anything.  Around fork() the signals are
 * blocked so that a child cannot run the master's handlers.
 */
#include "runtime/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Exit codes of a child that could not start. */
#define EXIT_START_FAILED 3	/* modules_start failed: counted, see above */
#define EXIT_DB_FAILED 4	/* no database at start: retried forever */

#define START_FAILURES_MAX 5
#define BACKOFF_FIRST_MS 1000UL
#define BACKOFF_MAX_MS 60000UL
#define BACKOFF_RESET_S 60.0	/* a child that lived this long was healthy */
#define KILL_EXTRA_MS 5000LL	/* master: SIGKILL at grace + this */

enum role { ROLE_NONE = 0, ROLE_MASTER, ROLE_SINGLE, ROLE_WORKER, ROLE_RUNNER };
enum child_kind { KIND_WORKER, KIND_RUNNER };

/* A place for one child: the master keeps N worker slots and one runner
 * slot filled. */
struct slot {
	enum child_kind kind;
	unsigned index;		/* among the slots of its kind */
	pid_t pid;		/* 0 while no child runs in the slot */
	double started;		/* when the current child was forked */
	unsigned long delay_ms;	/* the last restart delay (0: none yet) */
	unsigned start_failures;	/* consecutive exits with EXIT_START_FAILED */
	ev_timer restart;
};

/* A child replaced by SIGHUP that is still finishing its sessions. */
struct retiring {
	pid_t pid;
	enum child_kind kind;
};

enum exit_action { ACTION_RESTART, ACTION_GIVE_UP };

static enum role role;
static bool stopping;
static int exit_code;
static pid_t master_pid;

/* master */
static struct slot *slots;
static size_t n_slots;
static struct retiring *retiring;
static size_t n_retiring, cap_retiring;
static ev_signal sig_term, sig_int, sig_hup;
static ev_child child_watcher;
static bool listeners_open;	/* bound and not yet closed by this file */
static ev_timer kill_timer;
static char *pid_path;

/* worker, runner, single */
static ev_prepare drain_watcher;
static ev_timer grace_timer;
static bool runner_jobs_running;

static char error_buf[512];

/* What serving does in each process (core/serve.c). */
static const struct master_ops *ops;

static const char *kind_name(enum child_kind kind)
{
	return kind == KIND_WORKER ? "worker" : "runner";
}

static const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_MASTER: return "master";
	case ROLE_SINGLE: return "single";
	case ROLE_WORKER: return "worker";
	case ROLE_RUNNER: return "runner";
	default: return "none";
	}
}

static void set_error(const char **error_r, const char *fmt, ...) GN_PRINTF(2, 3);

static void set_error(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, sizeof(error_buf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = error_buf;
}

/* ---- pure parts (unit-tested in t/unit/test_master.c) ---- */

/* The delay before starting a child again in a slot whose previous restart
 * waited prev_ms (0: none yet), after the child lived lived_s seconds:
 * 1s doubling up to 60s; a child that lived 60s starts over at 1s. */
static unsigned long backoff_next(unsigned long prev_ms, double lived_s)
{
	if (prev_ms == 0 || lived_s >= BACKOFF_RESET_S)
		return BACKOFF_FIRST_MS;
	if (prev_ms >= BACKOFF_MAX_MS / 2)
		return BACKOFF_MAX_MS;
	return prev_ms * 2;
}

/* Records the end of a slot's child (wait status, how long it lived) and
 * says what to do: restart after s->delay_ms, or give up. */
static enum exit_action slot_exited(struct slot *s, int wstatus, double lived_s)
{
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == EXIT_START_FAILED) {
		if (++s->start_failures >= START_FAILURES_MAX)
			return ACTION_GIVE_UP;
	} else {
		s->start_failures = 0;
	}
	s->delay_ms = backoff_next(s->delay_ms, lived_s);
	return ACTION_RESTART;
}

/* "exit_code=N" or "signal=NAME" for a wait status. */
static const char *status_text(int wstatus, char *buf, size_t size)
{
	if (WIFEXITED(wstatus)) {
		snprintf(buf, size, "exit_code=%d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		const char *name = sigabbrev_np(WTERMSIG(wstatus));
		if (name != NULL)
			snprintf(buf, size, "signal=%s%s", name,
				 WCOREDUMP(wstatus) ? " core_dumped=yes" : "");
		else
			snprintf(buf, size, "signal=%d", WTERMSIG(wstatus));
	} else {
		snprintf(buf, size, "status=0x%x", (unsigned)wstatus);
	}
	return buf;
}

/* The number of workers for the setting (0: two per CPU). */
static unsigned workers_wanted(unsigned setting)
{
	if (setting > 0)
		return setting;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > 1024)
		n = 1024;
	return (unsigned)n * 2;
}

unsigned master_worker_count(unsigned setting)
{
	return workers_wanted(setting);
}

/* ---- privileges ---- */

int privileges_drop(const char *user, const char **error_r)
{
	if (geteuid() != 0)
		return 0;
	if (user == NULL || *user == '\0') {
		set_error(error_r, "started as root without a user to run as (setting user)");
		return -1;
	}
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		set_error(error_r, "cannot drop privileges: unknown user %s%s%s", user,
			  errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	if (uid == 0) {
		set_error(error_r, "refusing to run as user %s: it has uid 0", user);
		return -1;
	}
	/* initgroups() may reuse getpwnam()'s static storage. */
	char *name = gn_strdup(pw->pw_name);
	int r = initgroups(name, gid);
	gn_free(name);
	if (r < 0) {
		set_error(error_r, "cannot drop privileges: initgroups(%s): %s", user,
			  strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		set_error(error_r, "cannot drop privileges: setresgid(%u): %s",
			  (unsigned)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		set_error(error_r, "cannot drop privileges: setresuid(%u): %s",
			  (unsigned)uid, strerror(errno));
		return -1;
	}

	/* Trust, but verify: no id may be left at root, and root must be out
	 * of reach for good. */
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		set_error(error_r, "dropping privileges to %s left other ids in place", user);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		set_error(error_r, "dropped privileges to %s but could become root again", user);
		return -1;
	}
	return 0;
}

/* ---- pid file ---- */

static int pid_file_write(const char **error_r)
{
	const char *path = core_conf->pid_file;
	if (path == NULL || *path == '\0')
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		set_error(error_r, "cannot write pid file %s: %s", path, strerror(errno));
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		set_error(error_r, "cannot write pid file %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	/* After dropping privileges the master may not be allowed to remove
	 * the file (the directory is root's); owning it, it can at least empty
	 * it at exit so that nobody reads a stale pid. */
	if (geteuid() == 0 && core_conf->user != NULL) {
		struct passwd *pw = getpwnam(core_conf->user);
		if (pw != NULL && fchown(fd, pw->pw_uid, pw->pw_gid) < 0)
			gn_log(GN_LOG_DEBUG, "core", "event=pid_file_chown_failed path=%s error=%s",
			       gn_log_quote(0, path), gn_log_quote(1, strerror(errno)));
	}
	close(fd);
	pid_path = gn_strdup(path);
	return 0;
}

static void pid_file_remove(void)
{
	if (pid_path == NULL)
		return;
	if (unlink(pid_path) < 0 && errno != ENOENT) {
		int err = errno;
		int fd = open(pid_path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		gn_log(GN_LOG_WARN, "core", "event=pid_file_not_removed path=%s error=%s%s",
		       gn_log_quote(0, pid_path), gn_log_quote(1, strerror(err)),
		       fd >= 0 ? " emptied=yes" : "");
	}
	gn_free(pid_path);
	pid_path = NULL;
}

/* ---- worker, runner and single process ---- */

/* Once no connection is left, the loop ends. */
static void drain_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)w;
	(void)revents;
	if (ops->conns_count() == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	unsigned n = ops->conns_count();
	if (n > 0) {
		gn_log(GN_LOG_WARN, "core", "event=grace_period_over role=%s connections=%u",
		       role_name(role), n);
		ops->conns_close("server stopping");
	}
	ev_break(loop, EVBREAK_ALL);
}

static void process_stop(void)
{
	unsigned n = ops->conns_count();
	gn_log(GN_LOG_INFO, "core", "event=stopping role=%s connections=%u grace_ms=%lld",
	       role_name(role), n, core_conf->grace_ms);
	if (role == ROLE_WORKER || role == ROLE_SINGLE) {
		if (listeners_open)
			ops->accept_stop();
		listeners_open = false;
		ops->conns_shutdown();
	}
	if (runner_jobs_running) {
		runner_jobs_stop();
		runner_jobs_running = false;
	}
	if (role == ROLE_RUNNER) {
		ev_break(core_loop, EVBREAK_ALL);
		return;
	}
	ev_prepare_init(&drain_watcher, drain_cb);
	ev_prepare_start(core_loop, &drain_watcher);
	double grace = core_conf->grace_ms > 0 ? (double)core_conf->grace_ms / 1000.0 : 0.0;
	ev_timer_init(&grace_timer, grace_cb, grace, 0.0);
	ev_timer_start(core_loop, &grace_timer);
}

/* Starts this process's part (its database connection, modules,
 * listeners or jobs), runs the loop until a stop, and ends everything.
 * Returns the exit code. */
static int process_run(void)
{
	const char *kind = role_name(role);
	const char *err = NULL;

	if (ops->child_open(&err) < 0) {
		gn_log(GN_LOG_ERROR, "core", "event=start_failed role=%s error=%s", kind,
		       gn_log_quote(0, err != NULL ? err : "cannot connect to the database"));
		return EXIT_DB_FAILED;
	}
	if (role == ROLE_RUNNER) {
		ops->listeners_close();
		listeners_open = false;
	}
	if (modules_start(kind, &err) < 0) {
		gn_log(GN_LOG_ERROR, "core", "event=start_failed role=%s error=%s", kind,
		       gn_log_quote(0, err != NULL ? err : "a module failed to start"));
		ops->child_close();
		return EXIT_START_FAILED;
	}
	if (role == ROLE_WORKER || role == ROLE_SINGLE)
		ops->accept_start();
	if (role == ROLE_RUNNER || role == ROLE_SINGLE) {
		runner_jobs_start();
		runner_jobs_running = true;
	}
	gn_log(GN_LOG_INFO, "core", "event=started role=%s", kind);

	ev_run(core_loop, 0);

	if (ev_is_active(&drain_watcher))
		ev_prepare_stop(core_loop, &drain_watcher);
	if (ev_is_active(&grace_timer))
		ev_timer_stop(core_loop, &grace_timer);
	if (runner_jobs_running) {
		runner_jobs_stop();
		runner_jobs_running = false;
	}
	if (ops->conns_count() > 0)
		ops->conns_close("server stopping");
	modules_stop();
	ops->child_close();
	gn_log(GN_LOG_INFO, "core", "event=stopped role=%s", kind);
	return 0;
}

static void stop_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	gn_log(GN_LOG_DEBUG, "core", "event=signal role=%s signal=%s", role_name(role),
	       sigabbrev_np(w->signum));
	master_request_stop();
}

static void hup_single_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	gn_log(GN_LOG_INFO, "core", "event=reload_ignored role=single "
	       "reason=\"no children to restart in the foreground\"");
}

/* ---- master ---- */

static size_t children_alive(void)
{
	size_t n = n_retiring;
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i].pid > 0)
			n++;
	return n;
}

static void signal_children(int sig)
{
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i].pid > 0)
			kill(slots[i].pid, sig);
	for (size_t i = 0; i < n_retiring; i++)
		kill(retiring[i].pid, sig);
}

static void kill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	gn_log(GN_LOG_WARN, "core", "event=killing_children children=%zu "
	       "reason=\"grace period over\"", children_alive());
	signal_children(SIGKILL);
}

/* Stops the server: no more restarts, SIGTERM to every child, SIGKILL to
 * the rest later.  The loop ends when the last child is reaped. */
static void master_stop(int code)
{
	if (code > exit_code)
		exit_code = code;
	if (stopping)
		return;
	stopping = true;
	gn_log(GN_LOG_INFO, "core", "event=stopping role=master children=%zu", children_alive());
	for (size_t i = 0; i < n_slots; i++)
		ev_timer_stop(core_loop, &slots[i].restart);
	/* The children keep their own copies; the master never accepts, and
	 * with its copies closed new clients are refused once the workers
	 * have stopped accepting. */
	if (listeners_open)
		ops->listeners_close();
	listeners_open = false;
	signal_children(SIGTERM);
	long long ms = (core_conf->grace_ms > 0 ? core_conf->grace_ms : 0) + KILL_EXTRA_MS;
	ev_timer_init(&kill_timer, kill_cb, (double)ms / 1000.0, 0.0);
	ev_timer_start(core_loop, &kill_timer);
	if (children_alive() == 0)
		ev_break(core_loop, EVBREAK_ALL);
}

static void signals_stop(void);

/* In a new child: forget the master's watchers. */
static void master_watchers_forget(void)
{
	signals_stop();
	ev_child_stop(core_loop, &child_watcher);
	ev_timer_stop(core_loop, &kill_timer);
	for (size_t i = 0; i < n_slots; i++)
		ev_timer_stop(core_loop, &slots[i].restart);
	gn_free(slots);
	slots = NULL;
	n_slots = 0;
	gn_free(retiring);
	retiring = NULL;
	n_retiring = cap_retiring = 0;
}

static void process_signals_start(void (*hup_cb)(struct ev_loop *, ev_signal *, int))
{
	ev_signal_init(&sig_term, stop_signal_cb, SIGTERM);
	ev_signal_init(&sig_int, stop_signal_cb, SIGINT);
	ev_signal_start(core_loop, &sig_term);
	ev_signal_start(core_loop, &sig_int);
	if (hup_cb != NULL) {
		ev_signal_init(&sig_hup, hup_cb, SIGHUP);
		ev_signal_start(core_loop, &sig_hup);
	}
}

/* Stopping an inactive (or never started) watcher does nothing. */
static void signals_stop(void)
{
	ev_signal_stop(core_loop, &sig_term);
	ev_signal_stop(core_loop, &sig_int);
	ev_signal_stop(core_loop, &sig_hup);
}

static void child_main(enum child_kind kind, const sigset_t *oldmask) __attribute__((noreturn));

static void child_main(enum child_kind kind, const sigset_t *oldmask)
{
	/* Die with the master; it may already be gone. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master_pid)
		_exit(0);

	role = kind == KIND_WORKER ? ROLE_WORKER : ROLE_RUNNER;
	master_watchers_forget();
	loop_after_fork();
	process_signals_start(NULL);
	/* A terminal hangup is the master's business (graceful restart). */
	signal(SIGHUP, SIG_IGN);
	/* Signals that arrived since fork() are delivered to the child's own
	 * watchers from here on. */
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	int code = process_run();
	fflush(NULL);
	exit(code);
}

static void slot_schedule(struct slot *s);

/* Forks a child into slot s.  Returns 0, or -1 (a restart is scheduled). */
static int slot_spawn(struct slot *s)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		child_main(s->kind, &old);
	int err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		gn_log(GN_LOG_ERROR, "core", "event=fork_failed kind=%s slot=%u error=%s",
		       kind_name(s->kind), s->index, gn_log_quote(0, strerror(err)));
		s->delay_ms = backoff_next(s->delay_ms, 0.0);
		slot_schedule(s);
		return -1;
	}
	s->pid = pid;
	s->started = ev_time();
	gn_log(GN_LOG_INFO, "core", "event=child_started kind=%s slot=%u child_pid=%d",
	       kind_name(s->kind), s->index, (int)pid);
	return 0;
}

static void restart_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct slot *s = w->data;
	if (!stopping && s->pid == 0)
		slot_spawn(s);
}

static void slot_schedule(struct slot *s)
{
	gn_log(GN_LOG_INFO, "core", "event=child_restart_scheduled kind=%s slot=%u delay_ms=%lu",
	       kind_name(s->kind), s->index, s->delay_ms);
	ev_timer_stop(core_loop, &s->restart);
	ev_timer_set(&s->restart, (double)s->delay_ms / 1000.0, 0.0);
	ev_timer_start(core_loop, &s->restart);
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	pid_t pid = w->rpid;
	char st[64];
	status_text(w->rstatus, st, sizeof(st));

	struct slot *s = NULL;
	for (size_t i = 0; i < n_slots; i++)
		if (slots[i].pid == pid)
			s = &slots[i];
	if (s == NULL) {
		for (size_t i = 0; i < n_retiring; i++) {
			if (retiring[i].pid != pid)
				continue;
			gn_log(GN_LOG_INFO, "core", "event=child_exited kind=%s child_pid=%d %s "
			       "retired=yes", kind_name(retiring[i].kind), (int)pid, st);
			retiring[i] = retiring[--n_retiring];
			break;
		}
		if (stopping && children_alive() == 0)
			ev_break(loop, EVBREAK_ALL);
		return;
	}

	double lived = ev_time() - s->started;
	s->pid = 0;
	if (stopping) {
		gn_log(GN_LOG_INFO, "core", "event=child_exited kind=%s slot=%u child_pid=%d %s",
		       kind_name(s->kind), s->index, (int)pid, st);
		if (children_alive() == 0)
			ev_break(loop, EVBREAK_ALL);
		return;
	}
	gn_log(GN_LOG_WARN, "core", "event=child_exited kind=%s slot=%u child_pid=%d %s "
	       "lived_s=%.1f unexpected=yes", kind_name(s->kind), s->index, (int)pid, st, lived);
	if (slot_exited(s, w->rstatus, lived) == ACTION_GIVE_UP) {
		gn_log(GN_LOG_ERROR, "core", "event=giving_up kind=%s slot=%u "
		       "reason=\"the %s failed to start %d times in a row; stopping the server\"",
		       kind_name(s->kind), s->index, kind_name(s->kind), START_FAILURES_MAX);
		master_stop(1);
		return;
	}
	slot_schedule(s);
}

static void hup_master_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (stopping)
		return;
	gn_log(GN_LOG_INFO, "core", "event=reload children=%zu "
	       "note=\"graceful restart of the children; the config file is not re-read in this version\"",
	       children_alive());
	for (size_t i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];
		ev_timer_stop(core_loop, &s->restart);
		if (s->pid > 0) {
			if (n_retiring == cap_retiring) {
				cap_retiring = cap_retiring ? cap_retiring * 2 : 8;
				retiring = gn_realloc(retiring, cap_retiring * sizeof(*retiring));
			}
			retiring[n_retiring].pid = s->pid;
			retiring[n_retiring].kind = s->kind;
			n_retiring++;
			kill(s->pid, SIGTERM);
			s->pid = 0;
		}
		s->delay_ms = 0;
		s->start_failures = 0;
		slot_spawn(s);
	}
}

static int master_run(void)
{
	unsigned n_workers = workers_wanted(core_conf->workers);
	n_slots = (size_t)n_workers + 1;
	slots = gn_calloc(n_slots, sizeof(*slots));
	for (size_t i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];
		s->kind = i < n_workers ? KIND_WORKER : KIND_RUNNER;
		s->index = i < n_workers ? (unsigned)i : 0;
		ev_timer_init(&s->restart, restart_cb, 0.0, 0.0);
		s->restart.data = s;
	}
	ev_timer_init(&kill_timer, kill_cb, 0.0, 0.0);

	process_signals_start(hup_master_cb);
	ev_child_init(&child_watcher, child_cb, 0, 0);
	ev_child_start(core_loop, &child_watcher);

	gn_log(GN_LOG_INFO, "core", "event=started role=master workers=%u runners=1", n_workers);
	for (size_t i = 0; i < n_slots && !stopping; i++)
		slot_spawn(&slots[i]);

	ev_run(core_loop, 0);

	ev_timer_stop(core_loop, &kill_timer);
	master_watchers_forget();
	gn_log(GN_LOG_INFO, "core", "event=stopped role=master exit_code=%d", exit_code);
	return exit_code;
}

static int single_run(void)
{
	process_signals_start(hup_single_cb);
	int code = process_run();
	signals_stop();
	return code == 0 ? 0 : 1;
}

int master_serve(const struct master_ops *serve_ops, bool foreground)
{
	const char *err = NULL;
	int code = 1;

	ops = serve_ops;
	master_pid = getpid();
	stopping = false;
	exit_code = 0;
	signal(SIGPIPE, SIG_IGN);
	loop_init();

	/* Schema, certificates, listeners: what needs the privileges. */
	if (ops->prepare(&err) < 0) {
		gn_log(GN_LOG_ERROR, "core", "event=serve_failed error=%s",
		       gn_log_quote(0, err != NULL ? err : "cannot prepare to serve"));
		goto out;
	}
	listeners_open = true;
	if (pid_file_write(&err) < 0) {
		gn_log(GN_LOG_ERROR, "core", "event=serve_failed error=%s", gn_log_quote(0, err));
		goto out;
	}

	if (geteuid() == 0) {
		if (privileges_drop(core_conf->user, &err) < 0) {
			gn_log(GN_LOG_ERROR, "core", "event=serve_failed error=%s",
			       gn_log_quote(0, err));
			goto out;
		}
		gn_log(GN_LOG_INFO, "core", "event=privileges_dropped user=%s uid=%u gid=%u",
		       gn_log_quote(0, core_conf->user), (unsigned)getuid(), (unsigned)getgid());
	} else if (core_conf->user != NULL) {
		gn_log(GN_LOG_DEBUG, "core", "event=privileges_kept user=%s "
		       "reason=\"not started as root\"", gn_log_quote(0, core_conf->user));
	}

	if (foreground) {
		role = ROLE_SINGLE;
		code = single_run();
	} else {
		role = ROLE_MASTER;
		code = master_run();
	}
out:
	ops->release();
	listeners_open = false;
	pid_file_remove();
	role = ROLE_NONE;
	return code;
}

void master_request_stop(void)
{
	switch (role) {
	case ROLE_MASTER:
		master_stop(0);
		break;
	case ROLE_SINGLE:
	case ROLE_WORKER:
	case ROLE_RUNNER:
		if (stopping)
			return;
		stopping = true;
		process_stop();
		break;
	default:
		stopping = true;
		if (core_loop != NULL)
			ev_break(core_loop, EVBREAK_ALL);
		break;
	}
}

bool master_stopping(void)
{
	return stopping;
}
