/* shmkit — our own robust process-shared mutex, and the futex event counter.
 *
 * The mutex used to be a glibc robust pthread mutex. Its words live in memory every
 * peer can write, and glibc trusts them: one store to the kind field made the next
 * locker abort in an assertion, and rewritten robust-list links made the holder's
 * unlock write wherever the peer pointed. This lock trusts nothing it reads: no word is
 * ever an address, every value is checked, every wait is sliced and bounded.
 *
 * Ownership is a compare-and-swap of the owner word from 0 (or from a dead owner) to
 * the caller's liveness token, so the lock is never held without its owner recorded.
 * A token names a process, so the holder's thread id is recorded beside it: a thread
 * of the owner's process that is not the holder waits like anyone else. Death is
 * proved by the token (shmkit__live_check(): the kernel dropped the holder's OFD
 * lock), the same answer in every pid namespace; pids are kept only for people.
 *
 * Waiters spin briefly, then sleep on the seq futex in slices (1 ms doubling to
 * 100 ms) and after each slice that ends with nobody unlocking, ask whether the owner
 * lives. A dead (or garbage) owner is taken over by CAS(owner, dead, me) and the taker
 * gets -EOWNERDEAD. So a holder's death is noticed at most SLICE_MAX_NS after it, plus
 * one liveness check (about three system calls). A thread that exits while holding
 * the lock, its process living on, is noticed the same way, by its thread id.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/sync.h>
#include "internal.h"

_Static_assert(sizeof(shmkit_mutex) == 64, "shmkit_mutex is part of the segment format");
_Static_assert(_Alignof(shmkit_mutex) == 8, "shmkit_mutex is 8-byte aligned");
_Static_assert(offsetof(shmkit_mutex, owner) == 0 && offsetof(shmkit_mutex, seq) == 8 &&
		       offsetof(shmkit_mutex, waiters) == 12 && offsetof(shmkit_mutex, tid) == 16 &&
		       offsetof(shmkit_mutex, pid) == 20 && offsetof(shmkit_mutex, state) == 24 &&
		       offsetof(shmkit_mutex, magic) == 28 && offsetof(shmkit_mutex, reserved) == 32,
	       "shmkit_mutex layout is part of the segment format");
_Static_assert(sizeof(shmkit_event) == 64, "shmkit_event is part of the segment format");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
		       _Alignof(_Atomic uint32_t) == _Alignof(uint32_t) &&
		       sizeof(_Atomic uint64_t) == sizeof(uint64_t) &&
		       _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
	       "lock and event words are accessed as atomics");

/* The mutex words (see the struct in sync.h). Who writes, who reads, which order:
 *  owner    written only by CAS: 0 -> token (lock; acquire), dead token -> token
 *           (takeover; acquire), token -> 0 (unlock; seq_cst, which releases). Read by
 *           everyone, relaxed, as a hint before the CAS that decides.
 *  tid,pid  written by the holder only: set right after its CAS, cleared right before
 *           the CAS that frees (which orders them). tid is 0 between a CAS and its
 *           store, so a thread never mistakes a sibling's fresh hold for its own. Read
 *           relaxed: tid by the holder's process to tell its threads apart; pid by
 *           people.
 *  state    written by the holder only (OWNER_DIED on takeover, CONSISTENT by
 *           consistent(), NOT_RECOVERABLE by an unlock that skipped it; published by
 *           the freeing CAS). Read relaxed by the holder after its acquiring CAS
 *           (authoritative), and by waiters as an early "give up" hint; any other
 *           value is corruption and reads as not recoverable.
 *  seq      bumped (seq_cst) by every freeing CAS's caller: the futex sleepers wait on.
 *  waiters  lockers that may sleep: +1 (seq_cst) before the last look at owner, -1
 *           after. The unlocker frees, bumps seq, then reads it (seq_cst): the sleeper
 *           handshake. A locker killed asleep leaves it high; that costs a futex wake.
 *  magic    written last by init; checked (relaxed) on every call and every retry.
 */
#define MUTEX_MAGIC 0x584d4b53u /* "SKMX" */
enum { ST_CONSISTENT = 0, ST_OWNER_DIED = 1, ST_NOT_RECOVERABLE = 2 };

/* Spinning covers a holder inside a short critical section on another CPU; after that
 * the CPU is better given away. About 2-5 us of pauses. */
#define SPIN_LIMIT 100
/* Sleep slices between liveness checks: the first catches an owner already dead when
 * we arrive within a millisecond, the doubling keeps a long wait behind a live holder
 * to a handful of checks a second, and the cap is the worst-case delay between a
 * holder's death and a sleeper noticing it. */
#define SLICE_MIN_NS (1 * SHMKIT_MSEC)
#define SLICE_MAX_NS (100 * SHMKIT_MSEC)
/* A zero timeout looks at most this many times: a peer flipping the owner word must
 * not turn a try into a loop. */
#define TRY_LOOKS 4
/* PID_MAX_LIMIT on 64-bit Linux: no thread id is larger. */
#define TID_LIMIT 4194304u

static _Atomic uint64_t *owner_of(shmkit_mutex *m)
{
	return (_Atomic uint64_t *)&m->owner;
}

static _Atomic uint32_t *word(uint32_t *w)
{
	return (_Atomic uint32_t *)w;
}

static _Atomic int32_t *sword(int32_t *w)
{
	return (_Atomic int32_t *)w;
}

/* Who the caller is: its process's token, its thread id and pid. Cached per thread,
 * because the token costs a getpid() and the tid a system call. A fork gives the child
 * a new token and its thread a new tid: fork_gen, bumped in the child by an atfork
 * handler, tells the cache it is stale. */
struct self {
	uint64_t tok;
	uint32_t tid;
	int32_t pid;
};
static _Atomic unsigned fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Thread_local struct self self_cache;
static _Thread_local unsigned self_gen;
/* Locks this thread took (0 or -EOWNERDEAD) and has not unlocked. A thread holding
 * none can never be a holder: that keeps a tid word that happens to equal ours (left by
 * a dead process in another pid namespace, in the instant before a sibling's takeover
 * stores its own) from ever reading as "we hold it". */
static _Thread_local unsigned held;

static void on_fork_child(void)
{
	/* Relaxed: the child is single-threaded here. */
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
	/* If this fails, a forked child would use its parent's token: then it would look
	 * like a holder it is not. Without the handler we never cache (see get_self). */
	if (pthread_atfork(NULL, NULL, on_fork_child) != 0)
		atomic_store_explicit(&fork_gen, 0, memory_order_relaxed);
}

static int get_self(struct self *me)
{
	pthread_once(&atfork_once, register_atfork);
	unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
	if (gen != 0 && self_gen == gen) {
		*me = self_cache;
		return 0;
	}
	int r = shmkit__live_token(&me->tok);
	if (r < 0)
		return r;
	me->tid = (uint32_t)syscall(SYS_gettid);
	me->pid = (int32_t)getpid();
	self_cache = *me;
	self_gen = gen;
	return 0;
}

/* The caller's thread holds m. */
static int is_holder(shmkit_mutex *m, const struct self *me)
{
	return held > 0 && atomic_load_explicit(owner_of(m), memory_order_relaxed) == me->tok &&
	       atomic_load_explicit(word(&m->tid), memory_order_relaxed) == me->tid;
}

static int magic_ok(shmkit_mutex *m)
{
	return atomic_load_explicit(word(&m->magic), memory_order_relaxed) == MUTEX_MAGIC;
}

int shmkit_mutex_init(shmkit_mutex *m)
{
	if (!m)
		return -EINVAL;
	/* Memory reused from an old segment may hold anything: start from zero bytes.
	 * Nobody else uses the mutex yet (the contract), so plain stores are enough; the
	 * magic goes last only so that a torn init is never mistaken for a whole one. */
	memset(m, 0, sizeof *m);
	atomic_store_explicit(word(&m->magic), MUTEX_MAGIC, memory_order_release);
	return 0;
}

/* Free a mutex we hold. Returns 0, or -EPERM if the owner word no longer holds our
 * token (a peer overwrote it: then it is not ours to free). */
static int release(shmkit_mutex *m, const struct self *me, int wake_all)
{
	uint64_t mine = me->tok;
	held--; /* whatever the CAS finds, this thread stops counting it as held */
	atomic_store_explicit(word(&m->tid), 0, memory_order_relaxed);
	atomic_store_explicit(sword(&m->pid), 0, memory_order_relaxed);
	/* seq_cst: releases the protected data and the words above, and is the "publish"
	 * half of the sleeper handshake (the waiters load below must not move before it). */
	if (!atomic_compare_exchange_strong_explicit(owner_of(m), &mine, 0, memory_order_seq_cst,
						     memory_order_relaxed))
		return -EPERM;
	atomic_fetch_add_explicit(word(&m->seq), 1, memory_order_seq_cst);
	/* Pairs with the waiter's seq_cst increment of waiters then load of owner: either
	 * it sees owner free, or we see it counted and wake it. */
	if (atomic_load_explicit(word(&m->waiters), memory_order_seq_cst) != 0)
		shmkit__futex_wake(word(&m->seq), wake_all ? INT32_MAX : 1);
	return 0;
}

/* Just won the owner word: from free (took_dead 0) or from a dead owner (1). Record
 * who we are and report how the lock was found. */
static int acquired(shmkit_mutex *m, const struct self *me, int took_dead)
{
	atomic_store_explicit(word(&m->tid), me->tid, memory_order_relaxed);
	atomic_store_explicit(sword(&m->pid), me->pid, memory_order_relaxed);
	held++;
	if (took_dead) {
		atomic_store_explicit(word(&m->state), ST_OWNER_DIED, memory_order_relaxed);
		return -EOWNERDEAD;
	}
	/* Relaxed: state is only written by holders, and our acquiring CAS synchronized
	 * with the freeing CAS of the last one. */
	uint32_t st = atomic_load_explicit(word(&m->state), memory_order_relaxed);
	if (st == ST_CONSISTENT)
		return 0;
	/* A free lock in the owner-died state: only a peer's write makes one (a taker that
	 * dies unrepaired still owns it; an unlock without repair makes it not
	 * recoverable). The data may need repair all the same: say so. */
	if (st == ST_OWNER_DIED)
		return -EOWNERDEAD;
	/* Not recoverable, or a state no lock of ours can be in: give it back. */
	release(m, me, 1);
	return -ENOTRECOVERABLE;
}

/* Try to take m from owner o (0 = free, else a dead owner). 1 if we won. */
static int take(shmkit_mutex *m, uint64_t o, const struct self *me)
{
	/* Acquire pairs with the freeing CAS of the last holder (release), so the data it
	 * protected is visible; on a takeover there is nothing to pair with but the dead
	 * holder's stores, which the kernel made visible when it died. */
	return atomic_compare_exchange_strong_explicit(owner_of(m), &o, me->tok,
						       memory_order_acquire, memory_order_relaxed);
}

/* Take m over from owner o if o is dead; 1 if we took it. Another process is dead when
 * the kernel shows its token dead (unknowable counts as alive: we wait). A holder of
 * our own process shares our token, so it is judged by its thread id: a thread that
 * exited holding the lock is gone for good, and since the owner word stays our token,
 * a CAS of the tid word decides which sibling takes over. */
static int take_dead(shmkit_mutex *m, uint64_t o, const struct self *me)
{
	if (o != me->tok)
		return shmkit__live_check(o) == 0 && take(m, o, me);
	uint32_t t = atomic_load_explicit(word(&m->tid), memory_order_relaxed);
	/* 0: a sibling between its CAS and its tid store. Our own tid while we hold no
	 * lock at all: a word no holder of ours wrote, so nobody holds it. */
	if (t == 0)
		return 0;
	if (t == me->tid)
		return held == 0;
	/* A tid no thread can have (above PID_MAX_LIMIT) names nobody, like a dead one. */
	if (t <= TID_LIMIT && (syscall(SYS_tgkill, me->pid, (pid_t)t, 0) == 0 || errno != ESRCH))
		return 0;
	/* Acquire: what the exited holder wrote before it exited. */
	return atomic_compare_exchange_strong_explicit(word(&m->tid), &t, me->tid,
						       memory_order_acquire, memory_order_relaxed) &&
	       atomic_load_explicit(owner_of(m), memory_order_relaxed) == me->tok;
}

int shmkit_mutex_lock(shmkit_mutex *m, int64_t timeout_ns)
{
	struct self me;
	if (!m)
		return -EINVAL;
	int r = get_self(&me);
	if (r < 0)
		return r;
	int64_t deadline = shmkit__deadline(timeout_ns); /* <0 forever, 0 no wait */
	int64_t slice = SLICE_MIN_NS, check_at = 0;
	uint64_t last = 0; /* the owner check_at was set for */
	unsigned spins = 0, looks = 0;
	for (;;) {
		/* Rechecked on every turn: a peer may overwrite them while we wait. */
		if (!magic_ok(m))
			return -EINVAL;
		uint32_t st = atomic_load_explicit(word(&m->state), memory_order_relaxed);
		if (st != ST_CONSISTENT && st != ST_OWNER_DIED)
			return -ENOTRECOVERABLE;
		uint64_t o = atomic_load_explicit(owner_of(m), memory_order_relaxed);
		if (o == 0) {
			if (take(m, 0, &me))
				return acquired(m, &me, 0);
			continue; /* lost the race: look again */
		}
		if (o == me.tok && is_holder(m, &me))
			return -EDEADLK;
		if (deadline == 0) {
			/* A try: a held lock is busy unless its owner is dead. */
			if (take_dead(m, o, &me))
				return acquired(m, &me, 1);
			if (++looks < TRY_LOOKS &&
			    atomic_load_explicit(owner_of(m), memory_order_relaxed) != o)
				continue; /* it changed hands under us: one more look */
			return -EBUSY;
		}
		if (spins < SPIN_LIMIT) {
			spins++;
			shmkit__cpu_relax();
			continue;
		}
		int64_t now = shmkit__now_ns();
		if (o != last) {
			/* A new owner: check on it after a short slice, then less and less
			 * often. */
			last = o;
			slice = SLICE_MIN_NS;
			check_at = now + slice;
		} else if (now >= check_at) {
			/* A whole slice went by, however we were woken in it (a peer bumping
			 * seq must not keep us from looking): is the owner still there? */
			if (take_dead(m, o, &me))
				return acquired(m, &me, 1);
			slice = slice * 2 < SLICE_MAX_NS ? slice * 2 : SLICE_MAX_NS;
			check_at = now + slice;
			continue; /* the check took time: look at the words again */
		}
		if (deadline > 0 && now >= deadline) {
			/* Before giving up, one last look at the owner, as a try does. */
			if (take_dead(m, o, &me))
				return acquired(m, &me, 1);
			return -ETIMEDOUT;
		}
		int64_t end = check_at;
		if (deadline > 0 && deadline < end)
			end = deadline;
		/* The sleeper handshake, waiter side: read seq, announce ourselves, then look
		 * at owner again, all before sleeping on seq. Pairs with release(): either we
		 * see the owner gone, or it sees us counted and wakes us after bumping seq
		 * (and then our futex wait finds seq moved, or is woken). */
		uint32_t seen = atomic_load_explicit(word(&m->seq), memory_order_seq_cst);
		atomic_fetch_add_explicit(word(&m->waiters), 1, memory_order_seq_cst);
		if (atomic_load_explicit(owner_of(m), memory_order_seq_cst) == o)
			shmkit__futex_wait(word(&m->seq), seen, end);
		atomic_fetch_sub_explicit(word(&m->waiters), 1, memory_order_relaxed);
		/* Woken, interrupted, seq moved or the slice ran out: look again. Errors of
		 * the wait need no answer: the loop's clock checks bound it. */
	}
}

int shmkit_mutex_consistent(shmkit_mutex *m)
{
	struct self me;
	if (!m || !magic_ok(m))
		return -EINVAL;
	int r = get_self(&me);
	if (r < 0)
		return r;
	if (!is_holder(m, &me) ||
	    atomic_load_explicit(word(&m->state), memory_order_relaxed) != ST_OWNER_DIED)
		return -EINVAL;
	/* Only the holder writes state; the freeing CAS publishes it. */
	atomic_store_explicit(word(&m->state), ST_CONSISTENT, memory_order_relaxed);
	return 0;
}

int shmkit_mutex_unlock(shmkit_mutex *m)
{
	struct self me;
	if (!m || !magic_ok(m))
		return -EINVAL;
	int r = get_self(&me);
	if (r < 0)
		return r;
	if (!is_holder(m, &me))
		return -EPERM;
	int wake_all = 0;
	if (atomic_load_explicit(word(&m->state), memory_order_relaxed) == ST_OWNER_DIED) {
		/* Unlocked without repair: nobody may trust the data again. Every sleeper
		 * must hear it, not just the next one. */
		atomic_store_explicit(word(&m->state), ST_NOT_RECOVERABLE, memory_order_relaxed);
		wake_all = 1;
	}
	return release(m, &me, wake_all);
}

static _Atomic uint32_t *seq_of(const shmkit_event *ev)
{
	return (_Atomic uint32_t *)&ev->seq;
}

static _Atomic uint32_t *waiters_of(const shmkit_event *ev)
{
	return (_Atomic uint32_t *)&ev->waiters;
}

void shmkit_event_init(shmkit_event *ev)
{
	if (ev)
		memset(ev, 0, sizeof *ev);
}

uint32_t shmkit_event_prepare(const shmkit_event *ev)
{
	if (!ev)
		return 0; /* a later wait on NULL reports -EINVAL */
	/* Acquire pairs with the signaller's increment: a caller that then finds its
	 * condition false and waits cannot miss a signal sent after this load. */
	return atomic_load_explicit(seq_of(ev), memory_order_acquire);
}

int shmkit_event_wait(shmkit_event *ev, uint32_t seen, int64_t timeout_ns)
{
	if (!ev)
		return -EINVAL;
	if (atomic_load_explicit(seq_of(ev), memory_order_acquire) != seen)
		return 0;
	if (timeout_ns == 0)
		return -EAGAIN;
	int64_t deadline = shmkit__deadline(timeout_ns);
	/* The sleeper handshake, waiter side: announce ourselves, then recheck seq. Both
	 * seq_cst, pairing with the signaller's seq_cst increment then waiters load: either
	 * it sees our count and wakes us, or we see its increment and do not sleep. */
	atomic_fetch_add_explicit(waiters_of(ev), 1, memory_order_seq_cst);
	int r = 0;
	if (atomic_load_explicit(seq_of(ev), memory_order_seq_cst) == seen) {
		r = shmkit__futex_wait(seq_of(ev), seen, deadline);
		if (r == -ETIMEDOUT && atomic_load_explicit(seq_of(ev), memory_order_acquire) != seen)
			r = 0;
	}
	atomic_fetch_sub_explicit(waiters_of(ev), 1, memory_order_relaxed);
	return r;
}

int shmkit_event_signal(shmkit_event *ev, int all)
{
	if (!ev)
		return -EINVAL;
	/* Signaller side of the handshake (see shmkit_event_wait): publish, then look. */
	atomic_fetch_add_explicit(seq_of(ev), 1, memory_order_seq_cst);
	if (atomic_load_explicit(waiters_of(ev), memory_order_seq_cst) == 0)
		return 0;
	return shmkit__futex_wake(seq_of(ev), all ? INT32_MAX : 1);
}
