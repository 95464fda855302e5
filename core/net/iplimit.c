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
 * What counts as one client: an IPv4 address (IPv4-mapped IPv6 addresses
 * count as their IPv4 address), or an IPv6 prefix of limits.ipv6_prefix
 * bits (default /64, the smallest network a site gets, RFC 6177): a host
 * picks any address in its /64 at will (RFC 4941 privacy addresses), so
 * counting IPv6 addresses one by one would let one client take every slot.
 *
 * The table holds every connection all workers may hold at once, with room
 * to spare (iplimit_init sizes it from workers x limits.connections, within
 * bounds), so it fills only with entries of dead processes or past the
 * bound.  When it is full, the entries of dead processes are dropped; if
 * that frees nothing, the new client is refused (iplimit_acquire returns
 * -1, and the connection layer sends the busy reply and logs it): letting
 * it through unlimited would switch the limit off for whoever filled the
 * table.  "Full" leaves one slot empty: probe runs end at a hole, and
 * deletion searches for one, so a table without any would make them wrap
 * around for ever.
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

/* Bounds of the table's size in slots (powers of two): 24 bytes a slot,
 * in shared memory that the kernel fills in only where it is touched. */
#define IPL_MIN_SLOTS 1024u
#define IPL_MAX_SLOTS (1u << 22)

struct ipl_entry {
	uint8_t ip[16];
	int32_t pid;		/* 0: empty */
	uint32_t count;
};

struct ipl_table {
	uint32_t lock;
	int32_t lock_pid;
	uint32_t used;		/* slots in use; at most ipl_slots - 1 */
	struct ipl_entry e[];
};

static struct ipl_table *ipl;
static unsigned ipl_max;
static unsigned ipl_prefix = 64;	/* bits of an IPv6 address that count */
static uint32_t ipl_slots;	/* a power of two */

/* Slots for every connection the workers may hold, twice over (a graceful
 * restart runs old and new workers side by side), at most half full. */
static uint32_t table_slots(const struct core_conf *conf)
{
	unsigned long long conns = (unsigned long long)master_worker_count(conf->workers) *
				   (conf->max_conns > 0 ? conf->max_conns : 1);
	uint32_t slots = IPL_MIN_SLOTS;
	while (slots < IPL_MAX_SLOTS && slots < 4 * conns)
		slots *= 2;
	return slots;
}

int iplimit_init(const struct core_conf *conf)
{
	if (ipl != NULL)
		return 0;
	ipl_max = conf->max_conns_per_ip;
	ipl_prefix = conf->ipv6_prefix > 0 && conf->ipv6_prefix <= 128 ? conf->ipv6_prefix : 64;
	if (ipl_max == 0)
		return 0;
	uint32_t slots = table_slots(conf);
	size_t size = sizeof(struct ipl_table) + (size_t)slots * sizeof(struct ipl_entry);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		gn_log(GN_LOG_ERROR, "core", "event=iplimit_failed reason=%s",
		       gn_log_quote(0, strerror(errno)));
		return -1;
	}
	ipl = p;		/* zero-filled by the kernel */
	ipl_slots = slots;
	return 0;
}

void iplimit_deinit(void)
{
	if (ipl != NULL)
		munmap(ipl, sizeof(struct ipl_table) + (size_t)ipl_slots * sizeof(struct ipl_entry));
	ipl = NULL;
	ipl_slots = 0;
	ipl_max = 0;
}

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH);
}

static void ipl_lock(void)
{
	int32_t me = (int32_t)base_pid();
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

/* The key a client is counted under: its IPv4 address as ::ffff:a.b.c.d,
 * or its IPv6 address cut to ipl_prefix bits. */
static int ip_key(const char *ip, uint8_t key[16])
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct in_addr a4;
	memset(key, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		memcpy(key, v4mapped, 12);
		memcpy(key + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, key) != 1)
		return -1;
	if (memcmp(key, v4mapped, 12) == 0)
		return 0;	/* an IPv4 client on a dual-stack socket */
	unsigned bits = ipl_prefix;
	for (unsigned i = 0; i < 16; i++) {
		if (bits >= 8)
			bits -= 8;
		else {
			key[i] &= (uint8_t)(0xff00u >> bits);
			bits = 0;
		}
	}
	return 0;
}

static uint32_t ip_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 16777619u;
	}
	return h & (ipl_slots - 1);
}

/* Removes entry i, shifting later entries of the run back so that lookups
 * never stop early at a hole (Knuth 6.4, algorithm R). */
static void ipl_delete(uint32_t i)
{
	uint32_t j = i;
	/* Bounded even if a holder killed mid-update left the count wrong. */
	for (uint32_t n = 1; n < ipl_slots; n++) {
		j = (j + 1) & (ipl_slots - 1);
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
	for (uint32_t n = 0; n < ipl_slots; n++, i = (i + 1) & (ipl_slots - 1)) {
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
	for (uint32_t n = 0; n < ipl_slots; n++) {
		struct ipl_entry *e = &ipl->e[i];
		if (e->pid == 0)
			break;
		if (memcmp(e->ip, key, 16) == 0 && !pid_alive(e->pid)) {
			ipl_delete(i);	/* a later entry may now sit at i */
			reaped++;
			continue;
		}
		i = (i + 1) & (ipl_slots - 1);
	}
	return reaped;
}

/* The table is full: drops the entries of every process that is gone
 * (a worker that was killed, with clients of any address).  Returns how
 * many; the table is scanned once, pids checked once each. */
static unsigned ipl_reap_all(void)
{
	int32_t alive[16];
	unsigned n_alive = 0, reaped = 0;
	int32_t me = (int32_t)base_pid();
	uint32_t i = 0;
	/* A deletion at i may move an entry from further on into i: look at
	 * i again then.  Bounded as ipl_delete is. */
	for (uint32_t n = 0; n < 2 * ipl_slots && i < ipl_slots; n++) {
		struct ipl_entry *e = &ipl->e[i];
		bool live = e->pid == 0 || e->pid == me;
		for (unsigned k = 0; k < n_alive && !live; k++)
			live = alive[k] == e->pid;
		if (!live && pid_alive(e->pid)) {
			live = true;
			if (n_alive < sizeof(alive) / sizeof(alive[0]))
				alive[n_alive++] = e->pid;
		}
		if (live) {
			i++;
			continue;
		}
		ipl_delete(i);
		reaped++;
	}
	return reaped;
}

int iplimit_acquire(const char *ip)
{
	uint8_t key[16];
	int32_t me = (int32_t)base_pid();
	uint32_t slot;
	bool found;
	int ret = 1;

	if (ipl == NULL || ipl_max == 0 || ip_key(ip, key) < 0)
		return 1;
	ipl_lock();
	unsigned sum = ipl_sum(key, me, &slot, &found);
	if (sum >= ipl_max && ipl_reap(key) > 0)
		sum = ipl_sum(key, me, &slot, &found);
	if (sum < ipl_max && !found && ipl->used >= ipl_slots - 1 && ipl_reap_all() > 0)
		sum = ipl_sum(key, me, &slot, &found);
	if (sum >= ipl_max) {
		ret = 0;
	} else if (found) {
		ipl->e[slot].count++;
	} else if (slot != UINT32_MAX && ipl->used < ipl_slots - 1) {
		memcpy(ipl->e[slot].ip, key, 16);
		ipl->e[slot].pid = me;
		ipl->e[slot].count = 1;
		ipl->used++;
	} else {
		ret = -1;	/* full: refused, not unlimited */
	}
	ipl_unlock();
	return ret;
}

unsigned iplimit_ipv6_prefix(void)
{
	return ipl_prefix;
}

void iplimit_release(const char *ip)
{
	uint8_t key[16];
	int32_t me = (int32_t)base_pid();
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
