/*
 * core/base/pid.c: this process's id, read once (base_pid()).
 *
 * getpid() is a system call; the log writes the pid in every line, and
 * connection and transaction ids carry it: a few calls a message.  A child
 * of fork() reads its own (pthread_atfork()).
 */
#include "base/internal.h"

#include <pthread.h>
#include <unistd.h>

static pid_t pid_cached;

static void pid_forget(void)
{
	pid_cached = 0;
}

static void pid_register(void)
{
	(void)pthread_atfork(NULL, NULL, pid_forget);
}

pid_t base_pid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (pid_cached == 0) {
		(void)pthread_once(&once, pid_register);
		pid_cached = getpid();
	}
	return pid_cached;
}
