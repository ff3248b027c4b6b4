/* shmkit — the waiting layer: spin calibration, sliced futex sleeps, and the bell,
 * a futex word with a sleeper count that any number of processes sleep on and any
 * number ring. See wait.h. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "wait.h"

/* Checks spin loops make only every so many iterations. */
#define SPIN_CLOCK_MASK 63u

void shmkit__pause_counts(unsigned min_ns, unsigned max_ns, unsigned *min, unsigned *max)
{
	/* ns per 1024 pauses; 0: not measured yet. The fastest of a few rounds, so a
	 * preemption does not count; two threads measuring at once store about the same. */
	static _Atomic uint32_t per_1024;
	uint32_t t = atomic_load_explicit(&per_1024, memory_order_relaxed);
	if (t == 0) {
		int64_t best = INT64_MAX;
		for (int round = 0; round < 3; round++) {
			int64_t t0 = shmkit__now_ns();
			for (int i = 0; i < 1024; i++)
				shmkit__cpu_relax();
			int64_t d = shmkit__now_ns() - t0;
			best = d < best ? d : best;
		}
		t = best < 1024 ? 1024 : best > 1024 * 1000 ? 1024 * 1000 : (uint32_t)best;
		atomic_store_explicit(&per_1024, t, memory_order_relaxed);
	}
	uint64_t lo = (uint64_t)min_ns * 1024 / t, hi = (uint64_t)max_ns * 1024 / t;
	*min = lo < 1 ? 1 : lo > 4096 ? 4096 : (unsigned)lo;
	*max = hi < *min ? *min : hi > 4096 ? 4096 : (unsigned)hi;
}

/* The moving average (an eighth of each sample) of this process's wake-ups, ns; 0
 * until measured. Racing updates lose a sample at worst. */
static _Atomic int64_t g_wake_cost;
/* The budget derived from it (see wait.h), recomputed with each sample. */
_Atomic int64_t shmkit__spin_cur = SHMKIT__SPIN_UNMEASURED_NS;

int64_t shmkit__wake_cost_ns(void)
{
	return atomic_load_explicit(&g_wake_cost, memory_order_relaxed);
}

void shmkit__wake_sample(int64_t rung_ns)
{
	int64_t d = shmkit__now_ns() - rung_ns;
	if (rung_ns <= 0 || d <= 0 || d > SHMKIT__WAKE_SAMPLE_MAX_NS)
		return;
	int64_t avg = atomic_load_explicit(&g_wake_cost, memory_order_relaxed);
	avg = avg ? avg - avg / 8 + d / 8 : d;
	atomic_store_explicit(&g_wake_cost, avg, memory_order_relaxed);
	int64_t c = avg * SHMKIT__WAKE_SPIN_FACTOR;
	c = c < SHMKIT__SPIN_FLOOR_NS ? SHMKIT__SPIN_FLOOR_NS
	    : c > SHMKIT__SPIN_CEIL_NS ? SHMKIT__SPIN_CEIL_NS
				    : c;
	atomic_store_explicit(&shmkit__spin_cur, c, memory_order_relaxed);
}


int shmkit__sleep_until(_Atomic uint32_t *word, uint32_t val, int64_t until)
{
	int r = shmkit__futex_wait(word, val, until);
	return r == -ETIMEDOUT ? -ETIMEDOUT : 0;
}

void shmkit__bell_ring_slow(struct shmkit__bell *b)
{
	/* The handshake, ringer side: what we made visible before is ordered before our
	 * load of sleepers; pairs with the waiter's seq_cst increment followed by its
	 * recheck. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&b->sleepers, memory_order_seq_cst) == 0)
		return;
	/* Only a waiter that announced a sleep since the last wake-up needs one: the
	 * handshake is pending's store (waiter, then it loads seq and rechecks) against
	 * our fence and exchange; a waiter whose store came after it sees our news. */
	if (atomic_load_explicit(&b->pending, memory_order_seq_cst) == 0 ||
	    atomic_exchange_explicit(&b->pending, 0, memory_order_seq_cst) == 0)
		return;
	/* The futex word's change is what a waiter about to sleep compares against
	 * (FUTEX_WAIT fails when it moved). */
	atomic_fetch_add_explicit(&b->seq, 1, memory_order_seq_cst);
	atomic_store_explicit(&b->rung_ns, shmkit__now_ns(), memory_order_relaxed);
	shmkit__futex_wake(&b->seq, INT_MAX);
	atomic_fetch_add_explicit(&b->rings, 1, memory_order_relaxed);
}

int shmkit__bell_wait(struct shmkit__bell *b, shmkit__check_fn check, void *arg, int64_t spin_ns,
		      int64_t deadline, int64_t slice_ns, int64_t live_every_ns,
		      int64_t *live_checked, uint64_t *sleeps)
{
	int r;
	int64_t now = shmkit__now_ns(), end = now + spin_ns;
	/* Spin: look, pause; the clock only every SPIN_CLOCK_MASK rounds. */
	for (unsigned i = 1; spin_ns > 0; i++) {
		r = check(arg, 0);
		if (r != SHMKIT__KEEP_WAITING)
			return r;
		shmkit__cpu_relax();
		if ((i & SPIN_CLOCK_MASK) != 0)
			continue;
		now = shmkit__now_ns();
		if (deadline > 0 && now >= deadline)
			return -ETIMEDOUT;
		if (now >= end)
			break;
	}

	/* Announce: counted in sleepers from here on (seq_cst: the waiter's half of the
	 * handshake in shmkit__bell_ring_slow()), then keep looking for the grace, during
	 * which a ringer that read sleepers == 0 without a fence has its store land. */
	atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_seq_cst);
	int64_t grace_end = shmkit__now_ns() + SHMKIT__GRACE_NS;
	for (unsigned i = 1;; i++) {
		r = check(arg, 0);
		if (r != SHMKIT__KEEP_WAITING)
			goto out;
		shmkit__cpu_relax();
		if ((i & SPIN_CLOCK_MASK) == 0 && shmkit__now_ns() >= grace_end)
			break;
	}

	int live = 0;
	for (int64_t slice = SHMKIT__SLICE_FIRST_NS;; slice = slice_ns) {
		/* Going to sleep: the next ring must wake (see pending), then the seq to
		 * sleep on. Acquire: a ring that bumped seq made its news visible before. */
		atomic_store_explicit(&b->pending, 1, memory_order_seq_cst);
		uint32_t seq = atomic_load_explicit(&b->seq, memory_order_acquire);
		/* The recheck after reading seq: a ring after it changes seq, and the futex
		 * then returns at once. */
		atomic_thread_fence(memory_order_seq_cst);
		r = check(arg, live);
		if (r != SHMKIT__KEEP_WAITING)
			goto out;
		now = shmkit__now_ns();
		if (deadline > 0 && now >= deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
		if (sleeps)
			(*sleeps)++;
		int fr = shmkit__sleep_until(&b->seq, seq, shmkit__slice_end(now, slice, deadline));
		if (fr == 0)
			shmkit__wake_sample(atomic_load_explicit(&b->rung_ns, memory_order_relaxed));
		live = 0;
		if (fr == -ETIMEDOUT && shmkit__now_ns() - *live_checked >= live_every_ns) {
			*live_checked = shmkit__now_ns();
			live = 1;
		}
	}
out:
	atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
	return r;
}
