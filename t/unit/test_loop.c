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
	return done_testing();
}
