/* shmkit — the waiting layer every kind shares (channel, topic, blob): spinning,
 * sleeping on a futex with a sleeper count, waking, watching that a peer lives, and
 * descriptors an event loop can wait on. Never installed.
 *
 * Where each piece lives:
 *   wait.c  spin calibration, sliced futex sleeps, the bell (many sleepers)
 *   poll.c  the poller: a descriptor for poll/epoll and the signals that make it ready
 *   live.c  liveness tokens and the role words built on them
 */
#ifndef SHMKIT_WAIT_H
#define SHMKIT_WAIT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

/* ---- spinning ---- */

/* @min_ns and @max_ns as counts of shmkit__cpu_relax(), measured once per process
 * (how long a pause takes differs between CPUs: about 19 ns on AMD EPYC, 40 on Intel
 * since Skylake, next to nothing for an ARM yield). *min >= 1, *max >= *min, at most
 * 4096. */
void shmkit__pause_counts(unsigned min_ns, unsigned max_ns, unsigned *min, unsigned *max);

/* ---- sleeping ---- */

/* Sleeps are sliced so that a dead peer or a deleted segment is noticed: the first
 * slice is short (it also bounds the cost of a lost wake-up), the rest long. */
#define SHMKIT__SLICE_FIRST_NS (2 * SHMKIT_MSEC)
#define SHMKIT__SLICE_NS (200 * SHMKIT_MSEC)
/* Non-blocking calls that find nothing check a peer's liveness at most this often. */
#define SHMKIT__LIVE_CHECK_NS (100 * SHMKIT_MSEC)
/* How long a waiter announces itself before it sleeps, while still looking: store
 * buffers drain in well under this, so a waker that read "nobody sleeps" without a
 * fence had its store visible before the waiter sleeps (see chan.c, "Waiting"). */
#define SHMKIT__GRACE_NS 5000

/* ---- spin budgets from measured wake-ups ---- */

/* How long a waiter spins before it sleeps, unless its caller set a budget: spinning
 * about as long as a sleep costs bounds the waste either way (the ski-rental
 * argument), and what a sleep costs is the time from a waker's FUTEX_WAKE to the
 * sleeper running again, plus the caches it lets go cold meanwhile. So every waker
 * stamps the time it rings (in the word beside the futex: the channel's c_rung and
 * p_rung, the bell's rung_ns), every woken sleeper that finds a stamp under
 * SHMKIT__WAKE_SAMPLE_MAX_NS old feeds it to a moving average kept per process, and
 * the budget is SHMKIT__WAKE_SPIN_FACTOR times that average, within
 * [SHMKIT__SPIN_FLOOR_NS, SHMKIT__SPIN_CEIL_NS]; SHMKIT__SPIN_UNMEASURED_NS until a
 * process has been woken once. A wake-up costs 13-20 us on the VMs this was written
 * on and a few on bare metal: a constant tuned to either would be wrong on the other.
 * Longer delays are a busy machine's scheduler, not a wake-up: spinning longer there
 * would only take the CPU from the peer, so they are not counted. */
#define SHMKIT__WAKE_SPIN_FACTOR 3
#define SHMKIT__SPIN_FLOOR_NS 5000
#define SHMKIT__SPIN_CEIL_NS 200000
#define SHMKIT__SPIN_UNMEASURED_NS 50000
#define SHMKIT__WAKE_SAMPLE_MAX_NS 1000000
extern _Atomic int64_t shmkit__spin_cur; /* kept by shmkit__wake_sample() */
static inline int64_t shmkit__spin_default_ns(void)
{
	/* One load: waits ask on every call (a topic subscriber, per message). */
	return atomic_load_explicit(&shmkit__spin_cur, memory_order_relaxed);
}
/* The moving average of wake-ups this process measured, 0 if none yet. */
int64_t shmkit__wake_cost_ns(void);
/* A sleeper just woken: @rung_ns is the waker's stamp, read from shared memory, so
 * any value (only a plausible one counts). */
void shmkit__wake_sample(int64_t rung_ns);

/* Sleep on @word while it holds @val, until @until (absolute CLOCK_MONOTONIC ns;
 * never < 0). Returns 0 when woken or the word changed, -ETIMEDOUT when @until
 * passed. */
int shmkit__sleep_until(_Atomic uint32_t *word, uint32_t val, int64_t until);

/* The end of the next slice of a wait with @deadline (< 0: none): now + @slice, or
 * the deadline if sooner. */
static inline int64_t shmkit__slice_end(int64_t now, int64_t slice, int64_t deadline)
{
	int64_t until = now + slice;
	return deadline > 0 && deadline < until ? deadline : until;
}

/* ---- the bell: any number of sleepers, any number of ringers ---- */

/* One cache line in shared memory, zero-initialized. A waiter counts itself in
 * sleepers for the whole of its grace and sleep; a ringer that finds sleepers == 0
 * (one relaxed load, no fence, no store) does nothing, else, when a waiter said it
 * is going to sleep (pending), it bumps seq and wakes every sleeper with one
 * FUTEX_WAKE. The fence-free check is made safe by the grace
 * (SHMKIT__GRACE_NS), during which the waiter keeps looking. sleepers is a count a
 * killed waiter leaves too high, which only costs ringers a spare system call; it is
 * never used as an index. */
struct shmkit__bell {
	_Atomic uint32_t seq;      /* futex word: bumped by every ring that wakes */
	_Atomic uint32_t sleepers; /* waiters in their grace or asleep */
	_Atomic uint32_t armed;    /* pollers armed (waiting through a descriptor): the
	                            * kind's own ring signals them (see topic.c); counted
	                            * here so that one line says whether anyone waits */
	_Atomic uint32_t pending;  /* 1: a waiter is about to sleep or sleeps since the
	                            * last wake-up; the ringer that exchanges it to 0
	                            * makes the one system call. So a waiter that counts
	                            * in sleepers but does not sleep (preempted in its
	                            * grace, or just woken and not yet run) costs each
	                            * later ring a load, not a FUTEX_WAKE */
	_Atomic uint64_t rings;    /* wake-ups sent (futex wakes), for statistics */
	_Atomic int64_t rung_ns;   /* CLOCK_MONOTONIC of the last ring that woke: stored
	                            * (relaxed) before its FUTEX_WAKE, read by the woken
	                            * (relaxed) as a wake-up cost sample; a hint only
	                            * (0 in segments of older libraries) */
	uint64_t reserved[4];
};
_Static_assert(sizeof(struct shmkit__bell) == 64, "a bell is one cache line");

/* What a bell waiter's check returns to keep waiting; anything else ends the wait and
 * is returned. */
#define SHMKIT__KEEP_WAITING 0x7ffffff0

/* Check for a wait: the condition, and with @live != 0 also whether the peer that
 * could end the wait still lives (a few system calls; asked at most every
 * SHMKIT__LIVE_CHECK_NS). */
typedef int (*shmkit__check_fn)(void *arg, int live);

/* Ringer: after making something visible (a release store). Fence-free and
 * store-free when nobody sleeps. */
void shmkit__bell_ring_slow(struct shmkit__bell *b);
static inline void shmkit__bell_ring(struct shmkit__bell *b)
{
	if (__builtin_expect(atomic_load_explicit(&b->sleepers, memory_order_relaxed) != 0, 0))
		shmkit__bell_ring_slow(b);
}

/* Waiter: spin @spin_ns calling check(arg, 0), then announce, spin the grace, and
 * sleep in slices (the first SHMKIT__SLICE_FIRST_NS, then @slice_ns) until check()
 * returns anything but SHMKIT__KEEP_WAITING, or @deadline (absolute; < 0 none; 0 is
 * not allowed here) passes (-ETIMEDOUT). An expired slice calls check(arg, 1) when
 * @live_every_ns passed since *@live_checked, which it updates. @sleeps, if not NULL,
 * counts the sleeps. */
int shmkit__bell_wait(struct shmkit__bell *b, shmkit__check_fn check, void *arg, int64_t spin_ns,
		      int64_t deadline, int64_t slice_ns, int64_t live_every_ns,
		      int64_t *live_checked, uint64_t *sleeps);

/* ---- roles: a word holding its holder's liveness token (live.c) ---- */

/* Who holds a role, beside its role word: for people and for pidfds, never as proof
 * of life (that is the token in the role word). Written by the holder after its
 * claiming CAS succeeded: pid and ns (relaxed), then tok (release). */
struct shmkit__who {
	_Atomic uint64_t tok; /* the token these fields belong to, 0: none */
	_Atomic uint64_t ns;  /* inode of the holder's /proc/self/ns/pid */
	_Atomic int32_t pid;  /* getpid() of the holder, in its own pid namespace */
	uint32_t reserved;
};
_Static_assert(sizeof(struct shmkit__who) == 24, "role layout changed");

/* This process's pid namespace (inode of /proc/self/ns/pid), 0 if unknown. */
uint64_t shmkit__pidns_self(void);
/* Take a free role or a dead holder's: 0, -EBUSY (a live holder), or the error of a
 * liveness check that could not be made (a holder is never robbed on a guess). */
int shmkit__role_claim(_Atomic uint64_t *owner, uint64_t me);
/* Leave a role we hold (CAS: never frees a successor's). */
void shmkit__role_release(_Atomic uint64_t *owner, uint64_t me);
/* Record who we are beside a role we just claimed. */
void shmkit__who_set(struct shmkit__who *w, uint64_t me, uint64_t ns);
/* The pid the holder of *owner recorded, 0 if none. */
int32_t shmkit__who_pid(const _Atomic uint64_t *owner, const struct shmkit__who *w);

/* ---- the poller (poll.c): a descriptor that polls readable when signalled ---- */

/* Process-local. An epoll descriptor watching a datagram socket bound to an abstract
 * address named by a random token (which the waiter publishes in shared memory for
 * its peers to signal), plus optionally a pidfd of a peer or a periodic timer. It
 * reports POLLIN only: an epoll descriptor never reports POLLOUT, so a kind whose
 * readiness means "you may write" says so in its documentation. */
struct shmkit__poller {
	int epfd, dsock, pidfd, timerfd; /* -1 when unused */
	uint64_t token;                  /* the socket's address, 0 before open */
	uint64_t watched;                /* role word the pidfd or timer was chosen for */
	int ready_sent;                  /* a self-signal is queued (keep_ready) */
};

/* How often the timer that stands in for a peer's pidfd fires. */
#define SHMKIT__POLL_TIMER_NS (200 * SHMKIT_MSEC)

/* All descriptors -1. */
void shmkit__poller_init(struct shmkit__poller *p);
/* Make the epoll descriptor and the bound socket: the epoll fd, or -errno. @salt is
 * mixed into the token when the kernel's random source cannot answer. Already open:
 * the epoll fd. */
int shmkit__poller_open(struct shmkit__poller *p, uint64_t salt);
/* Close everything (init state again). */
void shmkit__poller_close(struct shmkit__poller *p);
/* Signal the poller whose token is @token (one sendto(); failures are harmless; 0
 * does nothing). *@sock is the caller's sending socket, made on first use (-1
 * before); the caller closes it. */
void shmkit__poller_signal(int *sock, uint64_t token);
/* Keep the descriptor readable until the next drain (a lasting condition, or one the
 * caller found while its peers' signals were drained). Nothing before open. */
void shmkit__poller_keep_ready(struct shmkit__poller *p);
/* Drain what made it readable. Returns 1 if the pidfd or the timer fired (the caller
 * should check its peer's liveness), else 0. Nothing before open. */
int shmkit__poller_drain(struct shmkit__poller *p);
/* Fire every @period_ns until closed (for peers without a pidfd). 0 or -errno. */
int shmkit__poller_use_timer(struct shmkit__poller *p, int64_t period_ns);
/* Watch the holder of the role word @owner_word (whose who-record is @w): its pidfd
 * when it shares our pid namespace @pidns and still lives, else the timer
 * (SHMKIT__POLL_TIMER_NS). p->watched becomes the role word's value. Returns 1 if
 * that holder (p->watched) is known dead, 0 otherwise. Cheap when the same holder is
 * already watched (one load). */
int shmkit__poller_watch(struct shmkit__poller *p, const _Atomic uint64_t *owner_word,
			 const struct shmkit__who *w, uint64_t pidns);

/* ---- many pollers on one shared condition (poll.c) ----
 *
 * A table in shared memory where each poller that waits on one condition (a blob's
 * version) registers its token; whoever changes the condition signals the armed ones.
 * Like the bell, but for descriptors: a poller arms itself (seq_cst store of armed,
 * then a fence, then it rechecks the condition), a changer publishes, fences, and
 * signals each armed slot it disarms with CAS (one sendto() each). count, a hint of
 * the registrations, lets a changer skip the table when nobody polls. Every word is
 * hostile: tokens only name sockets, armed is only compared, count only skips. */
struct shmkit__poll_slot {
	_Atomic uint64_t owner; /* registrant's liveness token, 0: free; CAS by joiners
	                         * (also over a dead registrant), CAS to 0 by leavers */
	_Atomic uint64_t token; /* its poller's token: written by the registrant (release)
	                         * after its claim, read by changers after armed */
	_Atomic uint32_t armed; /* 1: wants a signal; stored by the registrant (seq_cst),
	                         * CAS 1 -> 0 by the changer that signals it */
	uint32_t reserved;
};
_Static_assert(sizeof(struct shmkit__poll_slot) == 24, "poll slot layout changed");

/* Register the poller @token of the process whose liveness token is @me in a free
 * slot of @tab (@n slots), or in one whose registrant died. Returns the slot's index,
 * -EUSERS (every slot held by a live or unknown registrant), or -errno. */
int shmkit__poll_join(struct shmkit__poll_slot *tab, unsigned n, _Atomic uint32_t *count,
		      uint64_t me, uint64_t token);
/* Leave slot @i (CAS: never frees a successor's). */
void shmkit__poll_leave(struct shmkit__poll_slot *tab, unsigned i, _Atomic uint32_t *count,
			uint64_t me);
/* Arm a slot: the caller drained its poller before and rechecks the condition after
 * (it ends with a seq_cst fence). */
void shmkit__poll_arm(struct shmkit__poll_slot *s);
/* After publishing a change (a release store): signal every armed slot. Fenced; no
 * table scan when count says nobody registered. *@sock as shmkit__poller_signal(). */
void shmkit__poll_ring(struct shmkit__poll_slot *tab, unsigned n, _Atomic uint32_t *count,
		       int *sock);

#endif
