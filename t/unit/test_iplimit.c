/*
 * t/unit/test_iplimit.c: connections per client across processes
 * (core/net/iplimit.c): IPv4 per address, IPv6 per prefix, and a full
 * table refuses new clients instead of switching the limit off.
 *
 * The table is set up once per process (as the master does before it
 * forks), so each other configuration is tried in a child of its own.
 */
#include "net/internal.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct core_conf conf_of(unsigned per_ip, unsigned prefix, unsigned workers,
				unsigned conns)
{
	struct core_conf c;
	memset(&c, 0, sizeof(c));
	c.max_conns_per_ip = per_ip;
	c.ipv6_prefix = prefix;
	c.workers = workers;
	c.max_conns = conns;
	return c;
}

/* Runs fn in a child with the table of conf; true when it exited 0 within
 * 60 s (an alarm turns a hang into a failure). */
static bool in_child(struct core_conf conf, int (*fn)(void))
{
	int status;
	pid_t pid = fork();
	if (pid == 0) {
		alarm(60);
		iplimit_deinit();	/* the parent's table: not this one's */
		if (iplimit_init(&conf) < 0)
			_exit(2);
		_exit(fn());
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		diag("child %s %d", WIFSIGNALED(status) ? "killed by signal" : "exited",
		     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* limits.ipv6_prefix = 128: every IPv6 address on its own. */
static int prefix_128(void)
{
	int bad = 0;
	bad |= iplimit_acquire("2001:db8::1") != 1;
	bad |= iplimit_acquire("2001:db8::1") != 0;
	bad |= iplimit_acquire("2001:db8::2") != 1;
	return bad;
}

/* limits.ipv6_prefix = 48: a site's whole network counts as one client. */
static int prefix_48(void)
{
	int bad = 0;
	bad |= iplimit_acquire("2001:db8:7:1::1") != 1;
	bad |= iplimit_acquire("2001:db8:7:ffff:1:2:3:4") != 0;
	bad |= iplimit_acquire("2001:db8:8::1") != 1;
	return bad;
}

/* limits.ipv6_prefix = 61 (not a multiple of 8): the bits inside a byte
 * are cut too. */
static int prefix_61(void)
{
	int bad = 0;
	bad |= iplimit_acquire("2001:db8:0:10::1") != 1;
	bad |= iplimit_acquire("2001:db8:0:17::1") != 0;	/* 0x10-0x17: same /61 */
	bad |= iplimit_acquire("2001:db8:0:18::1") != 1;
	return bad;
}

static void addr_v4(char *ip, size_t size, int i)
{
	snprintf(ip, size, "10.%d.%d.%d", i / 65536, i / 256 % 256, i % 256);
}

/* One worker with one connection: the smallest table, 1024 slots, of which
 * 1023 may be used.  Clients past that are refused, those in the table
 * still counted; a release makes room again. */
static int full_table(void)
{
	char ip[32];
	int bad = 0;
	for (int i = 0; i < 1023; i++) {
		addr_v4(ip, sizeof(ip), i);
		bad |= iplimit_acquire(ip) != 1;
	}
	if (bad)
		return 10;
	if (iplimit_acquire("192.0.2.200") != -1)
		return 11;	/* a new client: refused, not unlimited */
	if (iplimit_acquire("2001:db8:99::1") != -1)
		return 12;
	addr_v4(ip, sizeof(ip), 5);
	if (iplimit_acquire(ip) != 1 || iplimit_acquire(ip) != 0)
		return 13;	/* a client in the table is still limited */
	for (int i = 0; i < 1023; i += 2) {
		addr_v4(ip, sizeof(ip), i);
		iplimit_release(ip);
	}
	if (iplimit_acquire("192.0.2.200") != 1)
		return 14;	/* room again */
	return 0;
}

/* A worker that died holding connections filled the table: its entries
 * are dropped when a new client finds the table full. */
static int full_of_the_dead(void)
{
	int status;
	pid_t pid = fork();
	if (pid == 0) {
		char ip[32];
		for (int i = 0; i < 1023; i++) {
			addr_v4(ip, sizeof(ip), i);
			if (iplimit_acquire(ip) != 1)
				_exit(1);
		}
		_exit(iplimit_acquire("192.0.2.201") == -1 ? 0 : 1);	/* dies holding all */
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 20;
	return iplimit_acquire("192.0.2.200") == 1 ? 0 : 21;
}

/* Two workers with 1000 connections each: 2000 clients from different
 * addresses all fit, with room for the workers of a graceful restart. */
static int sized_for_workers(void)
{
	char ip[32];
	for (int i = 0; i < 4000; i++) {
		addr_v4(ip, sizeof(ip), i);
		if (iplimit_acquire(ip) != 1)
			return 30;
	}
	return 0;
}

int main(void)
{
	pid_t pid;
	int status;

	log_init("test_iplimit");
	ok(iplimit_acquire("192.0.2.1") == 1, "before init: no limit");
	iplimit_release("192.0.2.1");

	struct core_conf conf = conf_of(2, 64, 2, 1000);
	ok(iplimit_init(&conf) == 0, "init with a limit of 2, IPv6 per /64");
	is_int(iplimit_acquire("192.0.2.1"), 1, "first connection from an address");
	is_int(iplimit_acquire("192.0.2.1"), 1, "second connection");
	is_int(iplimit_acquire("192.0.2.1"), 0, "third is over the limit");
	is_int(iplimit_acquire("::ffff:192.0.2.1"), 0,
	       "the IPv4-mapped form is the same address");
	is_int(iplimit_acquire("192.0.2.2"), 1, "another address has its own count");
	is_int(iplimit_acquire("2001:db8::1"), 1, "IPv6 address");
	is_int(iplimit_acquire("2001:db8::1"), 1, "IPv6 address, second");
	is_int(iplimit_acquire("2001:db8:0:0::1"), 0, "IPv6 in another spelling is the same");
	is_int(iplimit_acquire("2001:db8::2"), 0, "another address of the same /64 shares its count");
	is_int(iplimit_acquire("2001:db8::ffff:ffff:ffff:ffff"), 0,
	       "the last address of the /64 too");
	is_int(iplimit_acquire("2001:db8:0:1::1"), 1, "the next /64 is another client");
	is_int(iplimit_acquire("::ffff:192.0.2.2"), 1,
	       "an IPv4-mapped address counts as its IPv4 address, not by prefix");
	is_int(iplimit_acquire("192.0.2.3"), 1, "IPv4 addresses count one by one");
	iplimit_release("2001:db8::abcd");
	is_int(iplimit_acquire("2001:db8::2"), 1,
	       "a release from any address of the /64 frees a slot of it");
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
		/* The entries are the child's own: base_pid() (cached, the
		 * parent read it before the fork) is the child's. */
		int r0 = base_pid() == getpid();
		int r1 = iplimit_acquire("198.51.100.7");
		int r2 = iplimit_acquire("192.0.2.1");	/* full: held by parent */
		_exit(r0 && r1 == 1 && r2 == 0 ? 0 : 1);	/* no release: "dies" */
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child process sees the parent's counts, under its own pid");
	is_int(base_pid(), getpid(), "the parent's pid is still its own");
	is_int(iplimit_acquire("198.51.100.7"), 1, "the child's connection counts here");
	/* The child holds one, we hold one: full, but the child is gone. */
	is_int(iplimit_acquire("198.51.100.7"), 1,
	       "connections of a dead process are forgotten when the limit is hit");
	is_int(iplimit_acquire("198.51.100.7"), 0, "and the limit still holds");

	/* Addresses from one /64 beyond count, as a client with privacy
	 * addresses has: one client, limited. */
	pid = fork();
	if (pid == 0) {
		int got = 0;
		for (int i = 0; i < 20000; i++) {
			snprintf(ip, sizeof(ip), "2001:db8:5:6:%x:%x::1", i / 65536, i % 65536);
			got += iplimit_acquire(ip) == 1;
		}
		_exit(got == 2 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "20000 addresses of one /64 get 2 connections, not 40000");

	ok(in_child(conf_of(1, 128, 1, 10), prefix_128), "ipv6_prefix 128: each address alone");
	ok(in_child(conf_of(1, 48, 1, 10), prefix_48), "ipv6_prefix 48: the /48 counts as one");
	ok(in_child(conf_of(1, 61, 1, 10), prefix_61), "ipv6_prefix 61: cut inside a byte");
	ok(in_child(conf_of(2, 64, 1, 1), full_table),
	   "a full table refuses new clients (IPv4 and IPv6), keeps limiting the ones in it, "
	   "and takes new ones after releases");
	ok(in_child(conf_of(2, 64, 1, 1), full_of_the_dead),
	   "a table filled by a process that died is emptied of its entries when full");
	ok(in_child(conf_of(2, 64, 2, 1000), sized_for_workers),
	   "the table holds twice the connections the workers may hold (2 x 2 x 1000)");
	return done_testing();
}
