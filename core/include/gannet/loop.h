/*
 * gannet/loop.h: timers and file-descriptor watches on the process's
 * event loop.  The loop belongs to the core (libev inside); modules use only
 * these handles, from start onwards, in the process that created them.
 */
#ifndef GANNET_LOOP_H
#define GANNET_LOOP_H

#include <stdbool.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_timer;
struct gn_io;

typedef void gn_timer_fn(void *data);
typedef void gn_io_fn(int fd, unsigned events, void *data);

#define GN_IO_READ  0x1u
#define GN_IO_WRITE 0x2u

/* Fires after ms, then every ms when repeat.  Owned by the caller. */
struct gn_timer *gn_timer_new(unsigned long ms, bool repeat, gn_timer_fn *fn,
			      void *data);
/* Starts the countdown again (a one-shot timer that fired runs again). */
void gn_timer_reset(struct gn_timer *timer);
void gn_timer_free(struct gn_timer **timer);	/* accepts NULL */

struct gn_io *gn_io_new(int fd, unsigned events, gn_io_fn *fn, void *data);
void gn_io_set_events(struct gn_io *io, unsigned events);
void gn_io_free(struct gn_io **io);	/* does not close fd; accepts NULL */

/* The loop's cached time, in seconds since the epoch. */
double gn_now(void);

/* For CLI commands (process kind "cli") that wait for their own
 * asynchronous work, such as DNS lookups: gn_loop_run() runs the loop
 * until a callback calls gn_loop_break() or nothing is left to watch, and
 * then returns.  In a worker, the runner or a single process the core runs
 * the loop: there gn_loop_run() returns -1 at once and does nothing.
 * Returns 0 when it ran.  Since ABI 1.1. */
int gn_loop_run(void);
void gn_loop_break(void);

#ifdef __cplusplus
}
#endif
#endif
