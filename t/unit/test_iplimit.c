/*
 * t/unit/test_iplimit.c: connections per client IP across processes
 * (core/net/iplimit.c).
 */
#include "net/internal.h"
#include "tap.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	pid_t pid;
	int status;

	log_init("test_iplimit");
	ok(iplimit_acquire("192.0.2.1") == 1, "before init: no limit");
	iplimit_release("192.0.2.1");

	ok(iplimit_init(2) == 0, "init with a limit of 2");
	is_int(iplimit_acquire("192.0.2.1"), 1, "first connection from an address");
	is_int(iplimit_acquire("192.0.2.1"), 1, "second connection");
	is_int(iplimit_acquire("192.0.2.1"), 0, "third is over the limit");
	is_int(iplimit_acquire("::ffff:192.0.2.1"), 0,
	       "the IPv4-mapped form is the same address");
	is_int(iplimit_acquire("192.0.2.2"), 1, "another address has its own count");
	is_int(iplimit_acquire("2001:db8::1"), 1, "IPv6 address");
	is_int(iplimit_acquire("2001:db8::1"), 1, "IPv6 address, second");
	is_int(iplimit_acquire("2001:db8:0:0::1"), 0, "IPv6 in another spelling is the same");
	iplimit_release("192.0.2.1");
	is_int(iplimit_acquire("192.0.2.1"), 1, "after a release there is room again");
	is_int(iplimit_acquire("not an address"), 1, "unparsable addresses are not limited");

	/* Many addresses: deletions keep the table consistent. */
	char ip[32];
	int all = 1;
	for (int i = 0; i < 500; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		all &= iplimit_acquire(ip) == 1;
	}
	for (int i = 0; i < 500; i += 2) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		iplimit_release(ip);
	}
	for (int i = 0; i < 500; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		all &= iplimit_acquire(ip) == 1;
		all &= iplimit_acquire(ip) == (i % 2 == 0 ? 1 : 0);
	}
	ok(all, "500 addresses acquired and released in any order keep exact counts");

	/* Another process shares the counts. */
	pid = fork();
	if (pid == 0) {
		int r1 = iplimit_acquire("198.51.100.7");
		int r2 = iplimit_acquire("192.0.2.1");	/* full: held by parent */
		_exit(r1 == 1 && r2 == 0 ? 0 : 1);	/* no release: "dies" */
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child process sees the parent's counts");
	is_int(iplimit_acquire("198.51.100.7"), 1, "the child's connection counts here");
	/* The child holds one, we hold one: full, but the child is gone. */
	is_int(iplimit_acquire("198.51.100.7"), 1,
	       "connections of a dead process are forgotten when the limit is hit");
	is_int(iplimit_acquire("198.51.100.7"), 0, "and the limit still holds");

	/* A full table: more distinct addresses than slots (an IPv6 client
	 * has plenty).  Releasing must not loop forever looking for a hole,
	 * and the addresses that did get a slot are still limited.  In a child
	 * with an alarm, so that a hang fails instead of stopping the suite. */
	pid = fork();
	if (pid == 0) {
		int bad = 0;
		alarm(30);
		for (int i = 0; i < 17000; i++) {
			snprintf(ip, sizeof(ip), "2001:db8:1::%x", i);
			bad |= iplimit_acquire(ip) != 1;
		}
		for (int i = 0; i < 17000; i += 3) {
			snprintf(ip, sizeof(ip), "2001:db8:1::%x", i);
			iplimit_release(ip);
		}
		/* Slots are free again: a new address is counted and limited. */
		bad |= iplimit_acquire("2001:db8:2::1") != 1;
		bad |= iplimit_acquire("2001:db8:2::1") != 1;
		bad |= iplimit_acquire("2001:db8:2::1") != 0;
		_exit(bad ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a full table neither hangs on release nor loses the limit (%s)",
	   WIFSIGNALED(status) ? "killed" : "exited");
	return done_testing();
}
