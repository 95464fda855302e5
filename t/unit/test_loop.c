/*
 * t/unit/test_loop.c: timers and fd watches on the process's loop
 * (gannet/loop.h, core/runtime/loop.c).
 */
#include "runtime/internal.h"
#include "tap.h"

#include <string.h>
#include <unistd.h>

static int fired_once, fired_repeat, io_reads;
static struct gn_timer *repeat_timer;
static char io_got[16];

static void once_cb(void *data)
{
	fired_once++;
	*(double *)data = gn_now();
}

static void repeat_cb(void *data)
{
	(void)data;
	if (++fired_repeat == 3)
		gn_timer_free(&repeat_timer);
}

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void io_cb(int fd, unsigned events, void *data)
{
	struct gn_io **io = data;
	ssize_t n;
	if (events & GN_IO_READ) {
		n = read(fd, io_got, sizeof(io_got) - 1);
		if (n > 0)
			io_got[n] = '\0';
		io_reads++;
		gn_io_set_events(*io, 0);	/* stop watching */
	}
}

/* ---- soon (loop_soon(), runtime/internal.h) ---- */

static char soon_order[64];
static struct loop_soon soon_a, soon_b, soon_c, soon_chain[3], soon_self;
static unsigned soon_self_runs, soon_io_reads;
static bool soon_stop;

static void soon_mark(void *data)
{
	size_t n = strlen(soon_order);
	if (n + 1 < sizeof(soon_order))
		soon_order[n] = *(const char *)data;
}

/* Each queues the next: all in the same turn. */
static void soon_chained(void *data)
{
	size_t i = (size_t)(struct loop_soon *)data - (size_t)&soon_chain[0];
	i /= sizeof(struct loop_soon);
	soon_mark(&"123"[i]);
	if (i + 1 < 3)
		loop_soon(&soon_chain[i + 1], soon_chained, &soon_chain[i + 1]);
}

/* Queues itself again for ever, until soon_stop. */
static void soon_again(void *data)
{
	(void)data;
	soon_self_runs++;
	if (!soon_stop)
		loop_soon(&soon_self, soon_again, NULL);
}

static void soon_io_cb(int fd, unsigned events, void *data)
{
	char c;
	(void)events;
	(void)data;
	if (read(fd, &c, 1) == 1)
		soon_io_reads++;
	soon_stop = true;
}

static void test_soon(void)
{
	struct gn_timer *guard;
	/* One turn of the loop (EVRUN_ONCE) waits for this timer: what
	 * runs soon runs before it; what a later turn would run, not at all. */
	guard = gn_timer_new(300, false, soon_mark, "T");

	loop_soon(&soon_a, soon_mark, "a");
	loop_soon(&soon_b, soon_mark, "b");
	loop_soon(&soon_c, soon_mark, "c");
	loop_soon(&soon_b, soon_mark, "B");	/* queued already: no-op */
	is_str(soon_order, "", "loop_soon() runs nothing from inside");
	loop_soon_cancel(&soon_c);
	ok(!soon_c.queued, "a cancelled entry is off the queue");
	loop_soon_cancel(&soon_c);	/* twice: no-op */
	loop_soon(&soon_chain[0], soon_chained, &soon_chain[0]);
	ev_run(core_loop, EVRUN_ONCE);
	is_str(soon_order, "ab123T", "in order, before the loop waits, what they queue too; "
	       "the cancelled one not");
	ok(!soon_a.queued && !soon_chain[2].queued, "entries that ran are off the queue");

	/* One that keeps queueing itself does not keep the loop from
	 * polling: a readable pipe is served. */
	int p[2];
	if (pipe(p) != 0)
		return;
	struct gn_io *io = gn_io_new(p[0], GN_IO_READ, soon_io_cb, NULL);
	(void)!write(p[1], "x", 1);
	loop_soon(&soon_self, soon_again, NULL);
	for (int turn = 0; turn < 10 && soon_io_reads == 0; turn++)
		ev_run(core_loop, EVRUN_ONCE);
	is_int((int)soon_io_reads, 1, "input is read while an entry requeues itself");
	ok(soon_self_runs >= LOOP_SOON_BUDGET, "which ran its budget (%u runs)", soon_self_runs);
	/* It stops once soon_stop is set; the queue runs empty. */
	for (int turn = 0; turn < 10 && soon_self.queued; turn++)
		ev_run(core_loop, EVRUN_ONCE);
	ok(!soon_self.queued, "and the queue runs empty after");
	gn_io_free(&io);
	close(p[0]);
	close(p[1]);
	gn_timer_free(&guard);
}

int main(void)
{
	double t0, when = 0;
	int p[2];
	struct gn_io *io;
	struct gn_timer *once, *stop, *reset;

	log_init("test_loop");
	loop_init();
	ok(core_loop != NULL, "loop_init sets core_loop");

	t0 = gn_now();
	ok(t0 > 1e9, "gn_now is seconds since the epoch");

	once = gn_timer_new(50, false, once_cb, &when);
	repeat_timer = gn_timer_new(20, true, repeat_cb, NULL);
	/* reset: would fire at 30ms, is reset to fire later than "once". */
	reset = gn_timer_new(1000, false, stop_cb, NULL);
	stop = gn_timer_new(400, false, stop_cb, NULL);

	if (pipe(p) != 0)
		return 1;
	io = gn_io_new(p[0], GN_IO_READ, io_cb, &io);
	(void)!write(p[1], "ping", 4);

	ev_run(core_loop, 0);
	is_int(fired_once, 1, "a one-shot timer fires once");
	ok(when - t0 >= 0.045, "and not before its time (%.3f s)", when - t0);
	is_int(fired_repeat, 3, "a repeating timer fires until freed");
	ok(repeat_timer == NULL, "gn_timer_free sets the pointer to NULL");
	is_int(io_reads, 1, "an fd watch reports readability once, then is off");
	is_str(io_got, "ping", "and the callback reads the data");

	/* gn_timer_reset runs a fired one-shot timer again. */
	fired_once = 0;
	gn_timer_reset(once);
	gn_timer_free(&stop);
	stop = gn_timer_new(200, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	is_int(fired_once, 1, "gn_timer_reset re-arms a one-shot timer");

	gn_timer_free(&once);
	gn_timer_free(&stop);
	gn_timer_free(&reset);
	gn_timer_free(&reset);
	ok(reset == NULL, "gn_timer_free accepts NULL");
	gn_io_free(&io);
	gn_io_free(&io);
	ok(io == NULL, "gn_io_free accepts NULL");
	close(p[0]);
	close(p[1]);
	test_soon();
	return done_testing();
}
