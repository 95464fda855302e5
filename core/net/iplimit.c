/*
 * core/net/iplimit.c: connections per client IP address, counted across all
 * worker processes (limits.connections_per_ip).
 *
 * The master maps a table into shared anonymous memory before it forks
 * (iplimit_init), so every worker sees the same counts.  An entry is keyed
 * by (address, pid of the worker holding the connections): the count for an
 * address is the sum of its entries.  Keying by pid lets a worker that died
 * without releasing its connections be cleaned up: when an address seems to
 * be over the limit, entries of processes that no longer exist are dropped
 * and the sum is taken again.
 *
 * The table is open addressing with linear probing on a hash of the address
 * alone, so all entries of one address sit in one probe run; deletion shifts
 * later entries back (no tombstones).  A tiny spinlock (an __atomic
 * exchange) guards it: the critical sections are a few dozen instructions.
 * The holder's pid is recorded so that a lock left by a killed process is
 * taken over instead of deadlocking every worker.
 *
 * IPv4-mapped IPv6 addresses count as their IPv4 address.  Each IPv6
 * address counts on its own (not per /64).  When the table is full, new
 * addresses are let through unlimited (and logged): refusing clients
 * because of our own capacity would be worse.  "Full" leaves one slot
 * empty: probe runs end at a hole, and deletion searches for one, so a
 * table without any would make them wrap around for ever (an IPv6 client
 * has addresses enough to fill it).
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define IPL_SLOTS 16384u	/* power of two */

struct ipl_entry {
	uint8_t ip[16];
	int32_t pid;		/* 0: empty */
	uint32_t count;
};

struct ipl_table {
	uint32_t lock;
	int32_t lock_pid;
	uint32_t full_logged;
	uint32_t used;		/* slots in use; at most IPL_SLOTS - 1 */
	struct ipl_entry e[IPL_SLOTS];
};

static struct ipl_table *ipl;
static unsigned ipl_max;

int iplimit_init(unsigned max_per_ip)
{
	ipl_max = max_per_ip;
	if (max_per_ip == 0 || ipl != NULL)
		return 0;
	void *p = mmap(NULL, sizeof(struct ipl_table), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		gn_log(GN_LOG_ERROR, "core", "event=iplimit_failed reason=%s",
		       gn_log_quote(0, strerror(errno)));
		return -1;
	}
	ipl = p;		/* zero-filled by the kernel */
	return 0;
}

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH);
}

static void ipl_lock(void)
{
	int32_t me = (int32_t)getpid();
	unsigned spins = 0;

	while (__atomic_exchange_n(&ipl->lock, 1u, __ATOMIC_ACQUIRE) != 0) {
		if (++spins % 64 == 0)
			sched_yield();
		if (spins % 65536 == 0) {
			/* Held for long: its holder may have been killed. */
			int32_t owner = __atomic_load_n(&ipl->lock_pid, __ATOMIC_RELAXED);
			if (owner != 0 && !pid_alive(owner) &&
			    __atomic_compare_exchange_n(&ipl->lock_pid, &owner, me, false,
							__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				gn_log(GN_LOG_WARN, "core", "event=iplimit_lock_recovered "
				       "dead_pid=%d", (int)owner);
				return;	/* the lock word is still 1: ours now */
			}
		}
	}
	__atomic_store_n(&ipl->lock_pid, me, __ATOMIC_RELAXED);
}

static void ipl_unlock(void)
{
	__atomic_store_n(&ipl->lock_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&ipl->lock, 0u, __ATOMIC_RELEASE);
}

static int ip_key(const char *ip, uint8_t key[16])
{
	struct in_addr a4;
	memset(key, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[10] = key[11] = 0xff;	/* ::ffff:a.b.c.d */
		memcpy(key + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, key) == 1)
		return 0;
	return -1;
}

static uint32_t ip_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 16777619u;
	}
	return h & (IPL_SLOTS - 1);
}

/* Removes entry i, shifting later entries of the run back so that lookups
 * never stop early at a hole (Knuth 6.4, algorithm R). */
static void ipl_delete(uint32_t i)
{
	uint32_t j = i;
	/* Bounded even if a holder killed mid-update left the count wrong. */
	for (uint32_t n = 1; n < IPL_SLOTS; n++) {
		j = (j + 1) & (IPL_SLOTS - 1);
		if (ipl->e[j].pid == 0)
			break;
		uint32_t k = ip_hash(ipl->e[j].ip);
		/* Entry j may move to i when its home k is not in (i, j]. */
		bool stay = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
		if (stay)
			continue;
		ipl->e[i] = ipl->e[j];
		i = j;
	}
	memset(&ipl->e[i], 0, sizeof(ipl->e[i]));
	if (ipl->used > 0)
		ipl->used--;
}

/* Sum of the counts for key; *mine_r: the slot of (key, me) or of the first
 * empty slot after the run (UINT32_MAX when the table is full). */
static unsigned ipl_sum(const uint8_t key[16], int32_t me, uint32_t *mine_r,
			bool *found_r)
{
	unsigned sum = 0;
	uint32_t i = ip_hash(key);
	*found_r = false;
	*mine_r = UINT32_MAX;
	for (uint32_t n = 0; n < IPL_SLOTS; n++, i = (i + 1) & (IPL_SLOTS - 1)) {
		struct ipl_entry *e = &ipl->e[i];
		if (e->pid == 0) {
			if (!*found_r)
				*mine_r = i;
			return sum;
		}
		if (memcmp(e->ip, key, 16) == 0) {
			sum += e->count;
			if (e->pid == me) {
				*found_r = true;
				*mine_r = i;
			}
		}
	}
	return sum;
}

/* Drops entries of key held by processes that are gone; returns how many. */
static unsigned ipl_reap(const uint8_t key[16])
{
	unsigned reaped = 0;
	uint32_t i = ip_hash(key);
	for (uint32_t n = 0; n < IPL_SLOTS; n++) {
		struct ipl_entry *e = &ipl->e[i];
		if (e->pid == 0)
			break;
		if (memcmp(e->ip, key, 16) == 0 && !pid_alive(e->pid)) {
			ipl_delete(i);	/* a later entry may now sit at i */
			reaped++;
			continue;
		}
		i = (i + 1) & (IPL_SLOTS - 1);
	}
	return reaped;
}

int iplimit_acquire(const char *ip)
{
	uint8_t key[16];
	int32_t me = (int32_t)getpid();
	uint32_t slot;
	bool found;
	int ret = 1;

	if (ipl == NULL || ipl_max == 0 || ip_key(ip, key) < 0)
		return 1;
	ipl_lock();
	unsigned sum = ipl_sum(key, me, &slot, &found);
	if (sum >= ipl_max && ipl_reap(key) > 0)
		sum = ipl_sum(key, me, &slot, &found);
	if (sum >= ipl_max) {
		ret = 0;
	} else if (found) {
		ipl->e[slot].count++;
	} else if (slot != UINT32_MAX && ipl->used < IPL_SLOTS - 1) {
		memcpy(ipl->e[slot].ip, key, 16);
		ipl->e[slot].pid = me;
		ipl->e[slot].count = 1;
		ipl->used++;
	} else if (!ipl->full_logged) {
		ipl->full_logged = 1;
		gn_log(GN_LOG_WARN, "core", "event=iplimit_table_full slots=%u "
		       "reason=\"new addresses not limited\"", IPL_SLOTS);
	}
	ipl_unlock();
	return ret;
}

void iplimit_release(const char *ip)
{
	uint8_t key[16];
	int32_t me = (int32_t)getpid();
	uint32_t slot;
	bool found;

	if (ipl == NULL || ipl_max == 0 || ip_key(ip, key) < 0)
		return;
	ipl_lock();
	ipl_sum(key, me, &slot, &found);
	if (found) {
		if (ipl->e[slot].count > 1)
			ipl->e[slot].count--;
		else
			ipl_delete(slot);
	}
	ipl_unlock();
}
