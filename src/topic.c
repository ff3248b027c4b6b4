/* shmkit — the topic: publish-subscribe through one ring of variable-length,
 * contiguous messages, from any number of publishers to any number of subscribers.
 *
 * Records. A record sits at a 32-aligned, free-running position P and starts with a
 * 32-byte header of four words:
 *   w0  tag(P) << 32 | state << 30 | size   (the only word that commits anything)
 *   w1  the message's sequence number (a pad: the next message's)
 *   w2  the claiming publisher's liveness token
 *   w3  the message's length (<= size), written before w0 says DONE
 * size is the length the publisher claimed (its loan); the record spans
 * round32(32 + size) bytes, a pad exactly to the end of the lap. tag(P) is made from
 * the position, so a header left from an earlier lap never matches; states are
 * WITHDRAWN (a claim nobody will receive), BUSY (claimed, being written), DONE, PAD.
 *
 * Claims. Publishers claim in turn under the claim lock, a word holding the holder's
 * token: the claim writes the BUSY header, zeroes the header word of the record after
 * it (so a subscriber waiting there reads 0, never stale payload), and moves tail;
 * the copy and the commit (w3, then w0 = DONE with release) happen outside the lock,
 * publishers side by side. A publisher killed while it copies leaves a BUSY record
 * with a dead owner, which whoever meets it (a subscriber, a claimer a lap later)
 * turns into WITHDRAWN once the token says the owner died; killed inside the lock
 * (a few dozen instructions), it is taken over by the next publisher, which finds
 * tail/last/next_seq consistent or repairs them from the last header.
 *
 * Reclaiming. Room comes from the oldest records: reclaim is the position of the
 * oldest record still intact, and a claim needing room past reclaim + capacity walks
 * records from reclaim forward (a BUSY one with a live owner is waited for; reliable
 * mode also waits until every live subscriber is past it), stores the new reclaim
 * and only then, after a release fence, writes into that room. A subscriber copies a
 * message, then (acquire fence) checks that reclaim did not pass the message's
 * position: the classic sequence lock, with reclaim as the sequence. So a message is
 * delivered intact or not at all, and a subscriber lapped by the publishers resumes
 * at reclaim and reports -EOVERFLOW with the exact gap in sequence numbers. Reclaim
 * runs in batches (capacity/16 at a time) so that its line, which every subscriber
 * reads once per message, changes rarely.
 *
 * Waiting. Subscribers sleep on the topic's bell (wait.c): one futex word and a
 * sleeper count, which a publisher reads with one relaxed load after each commit;
 * when anyone sleeps it wakes all of them with one system call. Subscribers waiting
 * through a descriptor arm their slot (POLLING) and are counted in the bell's armed
 * word; a publisher that sees armed pollers signals each (one sendto() per armed
 * poller, per message that finds it armed). Reliable publishers waiting for room
 * sleep on a second bell that subscribers ring when they publish their position, and
 * publishers waiting for the claim lock on a third.
 *
 * Liveness. Slots hold tokens (live.c): whether a publisher or subscriber lives is
 * only ever asked of the kernel, through them. Reliable mode evicts a dead subscriber
 * that holds publishers back within EVICT_NS.
 *
 * Every word of the segment is read as hostile input: positions are masked, sizes
 * checked against the lap and max_msg before any copy, slot indices bounded by what
 * the handle validated at open; a header that no publisher could have written gets
 * -EPROTO and poisons the handle.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmkit/topic.h>
#include "wait.h"

#define TOPIC_MAGIC UINT64_C(0x3143495054544b53) /* "SKTTPIC1" little-endian */
#define TOPIC_VERSION 1u

#define HDR 32u
#define CAP_MIN ((uint64_t)4096)
#define CAP_MAX ((uint64_t)1 << 30)
#define CAP_DEFAULT ((uint64_t)1 << 20)
#define SUBS_DEFAULT 1024u
#define SUBS_MAX (1u << 20)
#define PUBS_DEFAULT 64u
#define PUBS_MAX 4096u

#define TAG_BIT 0x80000000u
enum { S_WITHDRAWN = 0, S_BUSY = 1, S_DONE = 2, S_PAD = 3 };
#define SIZE_MASK 0x3fffffffu

/* Subscriber slot states (the poll handshake). */
enum { SUB_AWAKE = 0, SUB_POLLING = 1 };
/* A subscriber slot's pos while its holder has not placed itself yet: never a record
 * position (those are 32-aligned), ignored by publishers. */
#define POS_UNPLACED UINT64_C(1)

/* Publishers waiting for the claim lock check its holder's liveness this often. */
#define LOCK_LIVE_NS (10 * SHMKIT_MSEC)
/* How long a call with a 0 timeout waits for the lock, and an open (which must place
 * a subscriber under it) at most. */
#define LOCK_BRIEF_NS (5 * SHMKIT_MSEC)
#define LOCK_OPEN_NS (2 * SHMKIT_SEC)
/* Reliable publishers check the subscribers holding them back this often: a dead one
 * is evicted within about this plus a slice. */
#define EVICT_NS (50 * SHMKIT_MSEC)
/* A wait for a BUSY record checks its owner after this much spinning, then this
 * often. */
#define BUSY_LIVE_NS (2 * SHMKIT_MSEC)
#define POLL_TIMER_NS (200 * SHMKIT_MSEC)
/* A subscriber that finds nothing looks again for about this long before it counts
 * as waiting (publishes its position, reads the clock, may sleep). */
#define QUICK_SPIN_NS 1000
/* A wait's first look comes after a pause of at least this (less than any round
 * trip), up to the second while a publisher streams ahead; as the channel's. */
#define BACKOFF_MIN_NS 40
#define BACKOFF_MAX_NS 2400

#define WAIT SHMKIT__KEEP_WAITING

/* At the start of the data area; then the publisher slots, the subscriber slots, and
 * the ring at ring_off. */
struct topic_ctl {
	/* Line 0: written by the creator before the segment is READY, read-only after;
	 * validated at open and copied into the handle. */
	uint64_t magic;
	uint32_t version;
	uint32_t flags;          /* 1: reliable */
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t ring_off;
	uint32_t max_pubs, max_subs;
	uint64_t pubs_off, subs_off;

	/* Line 1: the claim line: written by the lock holder on every claim. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t lock; /* holder's token, 0 free: CAS */
	_Atomic uint64_t tail;     /* where the next record goes (under lock) */
	_Atomic uint64_t last;     /* position of the last record claimed (under lock),
	                            * UINT64_MAX before the first */
	_Atomic uint64_t next_seq; /* the next message's sequence number (under lock) */
	uint64_t reserved1a;
	_Atomic uint64_t sub_gen;  /* bumped (under lock) by every subscriber that places
	                            * itself: publishers rescan positions then */
	uint64_t reserved1[2];

	/* Line 2: the oldest intact record; written under lock in batches, read by every
	 * subscriber after each copy (acquire fence before). */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t reclaim;
	uint64_t reserved2[7];

	/* Line 3-5: bells. Subscribers wait for messages on sub_bell; reliable publishers
	 * for room on space_bell; publishers for the lock on lock_bell. */
	struct shmkit__bell sub_bell;
	struct shmkit__bell space_bell;
	struct shmkit__bell lock_bell;

	/* Line 6: rare words. */
	alignas(SHMKIT_CACHELINE) _Atomic uint32_t pubs; /* publishers open (a dead one
	                            * stays counted until a successor takes its slot) */
	_Atomic uint32_t ended;    /* nonzero when the last publisher closed: that end's
	                            * own number (end_seq), end-of-stream once drained;
	                            * 0 when one opens */
	_Atomic uint32_t sub_hw;   /* subscriber slots ever used: scans stop here */
	_Atomic uint32_t pub_hw;
	_Atomic uint64_t withdrawn; /* claims withdrawn (loans never committed) */
	_Atomic uint64_t abandoned; /* claims of publishers that died before committing */
	_Atomic uint64_t evicted;   /* dead subscribers evicted (reliable) */
	_Atomic uint32_t end_seq;   /* ends so far: the last publisher's close stores the
	                            * next one in ended (relaxed here, release there) */
	_Atomic uint32_t end_taken; /* the ended value some subscriber returned as its
	                            * end-of-stream, 0 if none: a subscriber that joins
	                            * after that end was taken waits for the next
	                            * publisher instead (see idle_check()); written with
	                            * release, read with acquire, only compared */
	uint64_t reserved6[2];
};
_Static_assert(sizeof(struct topic_ctl) == 7 * SHMKIT_CACHELINE, "topic control block is 7 lines");
_Static_assert(offsetof(struct topic_ctl, lock) == 64, "topic layout changed");
_Static_assert(offsetof(struct topic_ctl, reclaim) == 128, "topic layout changed");
_Static_assert(offsetof(struct topic_ctl, sub_bell) == 192, "topic layout changed");
_Static_assert(offsetof(struct topic_ctl, pubs) == 384, "topic layout changed");

/* A publisher slot: written by its holder. */
struct pub_slot {
	_Atomic uint64_t owner;   /* holder's token, 0 free: CAS */
	struct shmkit__who who;
	_Atomic uint64_t msgs;    /* committed by this slot's holders */
	_Atomic uint64_t bytes;
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct pub_slot) == 64, "publisher slot is one line");

/* A subscriber slot: line 0 written by its holder (lazily), read by reliable
 * publishers and tools; line 1 its identity and poll state. */
struct sub_slot {
	_Atomic uint64_t pos;      /* published position: reliable publishers never
	                            * reclaim it (POS_UNPLACED: not placed yet) */
	_Atomic uint64_t seq;      /* next sequence number expected (for lag) */
	_Atomic uint64_t received;
	_Atomic uint64_t lost;
	uint64_t reserved0[4];
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t owner; /* holder's token, 0 free */
	struct shmkit__who who;
	_Atomic uint64_t poll_token; /* the holder's poller address, 0: none */
	_Atomic uint32_t state;      /* SUB_POLLING while armed: a publisher CASes it to
	                              * AWAKE and signals the token */
	uint32_t reserved1[5];
};
_Static_assert(sizeof(struct sub_slot) == 128, "subscriber slot is two lines");

struct shmkit_topic {
	shmkit_seg *seg;
	struct topic_ctl *ctl;
	_Atomic uint32_t *seg_state;
	unsigned char *ring;
	struct pub_slot *pubs;
	struct sub_slot *subs;
	/* Validated at open, never re-read. */
	uint64_t cap, mask, max_msg;
	uint32_t max_pubs, max_subs;
	unsigned role, reliable;
	int poisoned;
	int64_t spin_ns;
	uint64_t me;
	int slot;                /* our slot, -1: none (observer, unlisted subscriber) */
	int64_t live_checked;
	pid_t pid;

	/* Publisher. */
	uint64_t loan_pos;       /* pending loan's record, valid while loan_size */
	size_t loan_size;        /* its claimed length; 0: no loan */
	uint64_t min_cache;      /* reliable: lowest subscriber position last scanned */
	uint64_t min_gen;        /* sub_gen when it was scanned */
	int64_t evict_checked;
	int sock;                /* for signalling pollers */

	/* Subscriber. */
	uint64_t pos;            /* next record to read: the truth */
	uint64_t expect;         /* its sequence number, valid once have_expect */
	int have_expect;
	uint64_t published;      /* pos last stored in our slot */
	uint64_t received, lost, last_lost;
	uint64_t pending_lost;   /* a gap found at release, for the next call to report */
	size_t peek_len;         /* peeked message's length; 0: none */
	uint64_t peek_seq, peek_ext;
	int64_t busy_since;      /* when we first waited on the BUSY record at pos */
	uint64_t busy_pos;
	uint32_t stale_end;      /* the end of stream there when we joined (ctl ended) */
	uint32_t end_mine;       /* the end this handle returned, answered again */
	int dead_seen;           /* the last idle check found every publisher dead: check
	                          * again on each call (-EPIPE is a lasting condition) */
	struct shmkit__poller poller;
	unsigned quick_spins;    /* pauses in about QUICK_SPIN_NS (measured per process) */
	unsigned backoff, backoff_min, backoff_max; /* pauses before a wait's first look */
	uint64_t sleeps;
};

/* The spin budget of a wait: the handle's, or measured (shmkit__spin_default_ns()). */
static inline int64_t topic_spin(const shmkit_topic *t)
{
	return t->spin_ns < 0 ? shmkit__spin_default_ns() : t->spin_ns;
}

/* ---- records ---- */

static inline uint64_t rec_size(uint64_t len)
{
	return (HDR + len + 31) & ~(uint64_t)31;
}

static inline uint32_t tag_of(uint64_t pos)
{
	return TAG_BIT | (uint32_t)(pos >> 5);
}

static inline uint64_t hdr_word(uint64_t pos, unsigned state, uint64_t size)
{
	return (uint64_t)tag_of(pos) << 32 | (uint64_t)state << 30 | (size & SIZE_MASK);
}

static inline _Atomic uint64_t *hw(const shmkit_topic *t, uint64_t pos, unsigned i)
{
	return (_Atomic uint64_t *)(void *)(t->ring + (pos & t->mask)) + i;
}

static inline unsigned char *payload(const shmkit_topic *t, uint64_t pos)
{
	return t->ring + (pos & t->mask) + HDR;
}

static inline int deleted(const shmkit_topic *t)
{
	return atomic_load_explicit(t->seg_state, memory_order_acquire) == SHMKIT_STATE_DELETED;
}

static int poison(shmkit_topic *t)
{
	t->poisoned = 1;
	return -EPROTO;
}

/* The extent of the record whose header word is @w0 at @pos: > 0, or 0 if no
 * publisher could have written it. */
static inline uint64_t extent_of(const shmkit_topic *t, uint64_t pos, uint64_t w0)
{
	uint64_t off = pos & t->mask, size = w0 & SIZE_MASK;
	if ((uint32_t)(w0 >> 32) != tag_of(pos))
		return 0;
	if ((unsigned)(w0 >> 30 & 3) == S_PAD)
		return off != 0 && size == t->cap - off ? size : 0;
	if (size == 0 || size > t->max_msg || off + rec_size(size) > t->cap)
		return 0;
	return rec_size(size);
}

/* ---- the claim lock ---- */

struct lock_wait {
	shmkit_topic *t;
	int took_over;
};

static int lock_try(void *arg, int live)
{
	struct lock_wait *lw = arg;
	shmkit_topic *t = lw->t;
	_Atomic uint64_t *l = &t->ctl->lock;
	uint64_t cur = atomic_load_explicit(l, memory_order_relaxed);
	if (cur == 0) {
		/* Acquire pairs with the release in lock_release(): the previous holder's
		 * claim is visible. */
		if (atomic_compare_exchange_strong_explicit(l, &cur, t->me, memory_order_acquire,
							    memory_order_relaxed))
			return 0;
		return WAIT;
	}
	if (deleted(t))
		return -EIDRM;
	if (live && cur != t->me && shmkit__live_check(cur) == 0 &&
	    atomic_compare_exchange_strong_explicit(l, &cur, t->me, memory_order_acquire,
						    memory_order_relaxed)) {
		lw->took_over = 1;
		return 0;
	}
	return WAIT;
}

static int lock_repair(shmkit_topic *t);

/* Take the claim lock by @deadline (0: within LOCK_BRIEF_NS): 0, or -EIDRM,
 * -ETIMEDOUT, -EAGAIN, -EPROTO. */
__attribute__((noinline)) static int lock_take_slow(shmkit_topic *t, int64_t deadline);

static inline int lock_take(shmkit_topic *t, int64_t deadline)
{
	uint64_t free_ = 0;
	/* Acquire pairs with the release in lock_release(). */
	if (__builtin_expect(atomic_compare_exchange_strong_explicit(&t->ctl->lock, &free_, t->me,
								     memory_order_acquire,
								     memory_order_relaxed),
			     1))
		return 0;
	return lock_take_slow(t, deadline);
}

static int lock_take_slow(shmkit_topic *t, int64_t deadline)
{
	struct lock_wait lw = {t, 0};
	int r = lock_try(&lw, 0);
	if (r == WAIT) {
		/* The holder has a few dozen instructions to run: spin briefly, then let it
		 * run (it may share our CPU), then sleep; its liveness is checked every
		 * LOCK_LIVE_NS. The lock wait ignores a 0 timeout: a claim never sleeps long
		 * unless a holder waits for room, and then a 0 timeout is honoured there. */
		for (int i = 0; i < 64 && r == WAIT; i++) {
			shmkit__cpu_relax();
			r = lock_try(&lw, 0);
		}
		for (int i = 0; i < 4 && r == WAIT; i++) {
			sched_yield();
			r = lock_try(&lw, 0);
		}
		if (r == WAIT) {
			/* A 0 timeout still waits out a holder in its few instructions (or
			 * preempted in them), but not a lock word that stays held: a stopped
			 * holder, or a live token a hostile peer wrote there. */
			int64_t now = shmkit__now_ns(), checked = now - LOCK_LIVE_NS;
			r = shmkit__bell_wait(&t->ctl->lock_bell, lock_try, &lw, 0,
					      deadline == 0 ? now + LOCK_BRIEF_NS : deadline,
					      LOCK_LIVE_NS, LOCK_LIVE_NS, &checked, NULL);
			if (r == -ETIMEDOUT && deadline == 0)
				r = -EAGAIN;
		}
	}
	if (r == 0 && lw.took_over && (r = lock_repair(t)) < 0)
		atomic_store_explicit(&t->ctl->lock, 0, memory_order_release);
	return r;
}

static void lock_release(shmkit_topic *t)
{
	/* Release: our claim (headers, tail) is visible to the next holder. */
	atomic_store_explicit(&t->ctl->lock, 0, memory_order_release);
	shmkit__bell_ring(&t->ctl->lock_bell);
}

/* A holder died inside the lock: make last, tail and next_seq agree with the records
 * it wrote (it may have died between any two stores). last's record is whole (its
 * header was written before last); records its successor finds at tail with the
 * next sequence number are the dead holder's too (the slot at tail read 0 when it
 * took the lock): they are adopted, so no record a subscriber may have seen is ever
 * claimed twice. */
static int lock_repair(shmkit_topic *t)
{
	struct topic_ctl *c = t->ctl;
	uint64_t last = atomic_load_explicit(&c->last, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
	uint64_t seq = atomic_load_explicit(&c->next_seq, memory_order_relaxed);
	uint64_t rc = atomic_load_explicit(&c->reclaim, memory_order_relaxed);
	if (last != UINT64_MAX) {
		uint64_t w0 = atomic_load_explicit(hw(t, last, 0), memory_order_acquire);
		uint64_t ext = extent_of(t, last, w0);
		if (ext == 0 || (last & 31))
			return poison(t);
		tail = last + ext;
		seq = atomic_load_explicit(hw(t, last, 1), memory_order_relaxed) + 1;
	}
	if ((tail & 31) || tail - rc > t->cap)
		return poison(t);
	for (int i = 0; i < 1 << 20; i++) {
		uint64_t w0 = atomic_load_explicit(hw(t, tail, 0), memory_order_acquire);
		uint64_t ext = extent_of(t, tail, w0);
		uint64_t s = atomic_load_explicit(hw(t, tail, 1), memory_order_relaxed);
		if (ext == 0 || s != seq || (tail + ext) - rc > t->cap)
			break;
		if ((unsigned)(w0 >> 30 & 3) != S_PAD) {
			last = tail;
			seq++;
		}
		tail += ext;
	}
	atomic_store_explicit(hw(t, tail, 0), 0, memory_order_release);
	atomic_store_explicit(&c->last, last, memory_order_relaxed);
	atomic_store_explicit(&c->tail, tail, memory_order_relaxed);
	atomic_store_explicit(&c->next_seq, seq, memory_order_relaxed);
	return 0;
}

/* ---- room (publisher, under the lock) ---- */

/* Reliable mode: the lowest placed position of a live subscriber, at least @from
 * (a subscriber behind @from is one joining; it moves up to reclaim itself). Evicts
 * dead subscribers when @evict. */
static uint64_t sub_min(shmkit_topic *t, uint64_t from, int evict)
{
	struct topic_ctl *c = t->ctl;
	uint32_t hwm = atomic_load_explicit(&c->sub_hw, memory_order_acquire);
	if (hwm > t->max_subs)
		hwm = t->max_subs;
	uint64_t min = UINT64_MAX; /* relative to from */
	for (uint32_t i = 0; i < hwm; i++) {
		struct sub_slot *s = &t->subs[i];
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_acquire);
		if (owner == 0)
			continue;
		/* Acquire pairs with the subscriber's release store of pos. */
		uint64_t p = atomic_load_explicit(&s->pos, memory_order_acquire);
		if (p == POS_UNPLACED || (p & 31))
			continue;
		uint64_t d = p - from;
		if ((int64_t)d < 0)
			d = 0;
		if (d >= min)
			continue;
		if (evict && shmkit__live_check(owner) == 0) {
			if (atomic_compare_exchange_strong_explicit(&s->owner, &owner, 0,
								    memory_order_acq_rel,
								    memory_order_relaxed))
				atomic_fetch_add_explicit(&c->evicted, 1, memory_order_relaxed);
			continue;
		}
		min = d;
	}
	return min == UINT64_MAX ? UINT64_MAX : from + min;
}

struct space_wait {
	shmkit_topic *t;
	uint64_t pos, need; /* the record at pos, ending at need, must be passed by all */
};

static int space_check(void *arg, int live)
{
	struct space_wait *sw = arg;
	shmkit_topic *t = sw->t;
	if (deleted(t))
		return -EIDRM;
	int64_t now = live ? shmkit__now_ns() : 0;
	int evict = live && now - t->evict_checked >= EVICT_NS;
	if (evict)
		t->evict_checked = now;
	uint64_t m = sub_min(t, sw->pos, evict);
	if (m == UINT64_MAX || m - sw->pos >= sw->need - sw->pos) {
		t->min_cache = m;
		return 0;
	}
	return WAIT;
}

/* A BUSY record at @pos whose owner is @owner (per w2): 1 if it died, in which case the
 * record is withdrawn (CAS from exactly @w0, so a commit that raced us wins). */
static int busy_dead(shmkit_topic *t, uint64_t pos, uint64_t w0)
{
	uint64_t owner = atomic_load_explicit(hw(t, pos, 2), memory_order_relaxed);
	if (shmkit__live_check(owner) != 0)
		return 0;
	uint64_t withdrawn = (w0 & ~((uint64_t)3 << 30)) | (uint64_t)S_WITHDRAWN << 30;
	if (atomic_compare_exchange_strong_explicit(hw(t, pos, 0), &w0, withdrawn,
						    memory_order_acq_rel, memory_order_relaxed))
		atomic_fetch_add_explicit(&t->ctl->abandoned, 1, memory_order_relaxed);
	return 1;
}

/* Reliable mode: the position no reclaim may pass now (UINT64_MAX: no subscriber).
 * The last scan is reused while no subscriber joined since (sub_gen) and it allows
 * @target; else the slots are scanned again. Under the lock. */
static uint64_t reclaim_limit(shmkit_topic *t, uint64_t rc, uint64_t target)
{
	uint64_t gen = atomic_load_explicit(&t->ctl->sub_gen, memory_order_acquire);
	uint64_t m = t->min_cache;
	if (gen != t->min_gen || m == 0 || (m != UINT64_MAX && (int64_t)(m - target) < 0)) {
		m = sub_min(t, rc, 0);
		t->min_cache = m;
		t->min_gen = gen;
	}
	return m;
}

/* Wait, without the lock, until every live subscriber passed [@pos, @end), evicting
 * dead ones every EVICT_NS; then retake the lock. 0 (lock held again) or an error
 * (not held). */
static int wait_subscribers(shmkit_topic *t, uint64_t pos, uint64_t end, int64_t deadline)
{
	struct space_wait sw = {t, pos, end};
	lock_release(t);
	if (deadline == 0) {
		/* A publisher that never waits evicts dead subscribers too (every
		 * EVICT_NS at most), or one that died would hold it back for ever. */
		int64_t now = shmkit__now_ns();
		if (now - t->evict_checked < EVICT_NS)
			return -EAGAIN;
		t->evict_checked = now;
		uint64_t m = sub_min(t, pos, 1);
		if (m != UINT64_MAX && m - pos < end - pos)
			return -EAGAIN;
		t->min_gen = UINT64_MAX; /* rescan under the lock */
		return lock_take(t, deadline);
	}
	int64_t checked = shmkit__now_ns() - EVICT_NS;
	t->evict_checked = 0;
	int r = shmkit__bell_wait(&t->ctl->space_bell, space_check, &sw, topic_spin(t), deadline,
				  EVICT_NS, EVICT_NS / 2, &checked, NULL);
	if (r < 0)
		return r;
	t->min_gen = UINT64_MAX; /* rescan under the lock */
	return lock_take(t, deadline);
}

/* Make [.., @end) free: walk records from reclaim until end - reclaim <= capacity,
 * plus a batch (capacity/16) so that reclaim's line changes rarely. Under the lock.
 * Returns 0 (done, lock held), 1 (the lock was dropped to wait and is held again:
 * start the claim over), or an error (lock not held). */
static int reclaim_to(shmkit_topic *t, uint64_t end, int64_t deadline)
{
	struct topic_ctl *c = t->ctl;
	uint64_t rc = atomic_load_explicit(&c->reclaim, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
	if (end - rc <= t->cap)
		return 0;
	if ((rc & 31) || tail - rc > t->cap || end - tail > t->cap)
		goto corrupt;
	uint64_t need = end - t->cap, target = need + t->cap / 16;
	if (target - rc > tail - rc)
		target = tail; /* never past what was claimed */
	uint64_t limit = t->reliable ? reclaim_limit(t, rc, target) : UINT64_MAX;
	int64_t busy_since = 0;
	uint64_t blocked = 0;
	int r = 0;
	while ((int64_t)(target - rc) > 0) {
		/* The headers of a lap ago are cold, and each one's address follows from the
		 * last: fetch a few lines ahead. */
		__builtin_prefetch(t->ring + ((rc + 4 * SHMKIT_CACHELINE) & t->mask));
		uint64_t w0 = atomic_load_explicit(hw(t, rc, 0), memory_order_acquire);
		uint64_t ext = extent_of(t, rc, w0);
		if (ext == 0 || ext > tail - rc)
			goto corrupt;
		unsigned st = (unsigned)(w0 >> 30 & 3);
		if (limit != UINT64_MAX && st != S_PAD && (int64_t)(limit - (rc + ext)) < 0) {
			/* A subscriber still needs it. Enough room already: stop here. */
			if ((int64_t)(need - rc) <= 0)
				break;
			blocked = rc + ext;
			r = 2;
			break;
		}
		if (st == S_BUSY) {
			/* A publisher still writes it: let it run; withdraw it once it died. */
			int64_t now = shmkit__now_ns();
			if (busy_since == 0)
				busy_since = now;
			if (now - busy_since < BUSY_LIVE_NS || !busy_dead(t, rc, w0)) {
				if ((int64_t)(need - rc) <= 0)
					break;
				r = 3;
				break;
			}
		}
		rc += ext;
		busy_since = 0;
	}
	/* Seqlock writer: the new reclaim is visible before anything we write into the
	 * room (the fence orders it before every later store; pairs with the acquire
	 * fence subscribers make after copying). */
	if (rc != atomic_load_explicit(&c->reclaim, memory_order_relaxed)) {
		atomic_store_explicit(&c->reclaim, rc, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
	}
	if (r == 0)
		return 0;
	if (r == 2) {
		r = wait_subscribers(t, rc, blocked, deadline);
		return r < 0 ? r : 1;
	}
	/* r == 3: a live publisher's record: yield to it, then start over. */
	lock_release(t);
	if (deadline == 0)
		return -EAGAIN;
	if (deadline > 0 && shmkit__now_ns() >= deadline)
		return -ETIMEDOUT;
	sched_yield();
	r = lock_take(t, deadline);
	return r < 0 ? r : 1;
corrupt:
	lock_release(t);
	return poison(t);
}

/* Messages up to this size are copied inside the claim lock and committed by one
 * header store: a subscriber polling the header sees it change once (DONE), not twice
 * (BUSY, then DONE), which halves the line transfers of a small message. */
#define DIRECT_MAX 1024u

/* Claim records for @n messages of @lens bytes (consecutive, pads where needed):
 * *@pos is the first's. With @src, copy the messages in and commit them under the
 * lock (see DIRECT_MAX); without, leave them BUSY for the caller to fill and commit.
 * Takes and releases the lock. */
static int claim(shmkit_topic *t, const size_t *lens, const struct iovec *src, int n,
		 int64_t deadline, uint64_t *pos)
{
	struct topic_ctl *c = t->ctl;
	int r = lock_take(t, deadline);
	if (r < 0)
		return r;
	for (;;) {
		uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
		if (tail & 31) {
			lock_release(t);
			return poison(t);
		}
		/* The room all n records need, with a pad where one does not fit. */
		uint64_t p = tail;
		for (int i = 0; i < n; i++) {
			uint64_t size = rec_size(lens[i]), off = p & t->mask;
			if (off + size > t->cap)
				p += t->cap - off;
			p += size;
		}
		r = reclaim_to(t, p + HDR, deadline);
		if (r < 0)
			return r;
		if (r == 0)
			break;
	}
	uint64_t p = atomic_load_explicit(&c->tail, memory_order_relaxed);
	uint64_t seq = atomic_load_explicit(&c->next_seq, memory_order_relaxed);
	uint64_t last = UINT64_MAX;
	unsigned state = src ? S_DONE : S_BUSY;
	for (int i = 0; i < n; i++) {
		uint64_t size = rec_size(lens[i]), off = p & t->mask;
		if (off + size > t->cap) {
			uint64_t pad = t->cap - off;
			atomic_store_explicit(hw(t, p, 1), seq, memory_order_relaxed);
			atomic_store_explicit(hw(t, p, 2), t->me, memory_order_relaxed);
			atomic_store_explicit(hw(t, p, 0), hdr_word(p, S_PAD, pad),
					      memory_order_release);
			p += pad;
		}
		if (i == 0)
			*pos = p;
		atomic_store_explicit(hw(t, p, 3), src ? lens[i] : 0, memory_order_relaxed);
		atomic_store_explicit(hw(t, p, 2), t->me, memory_order_relaxed);
		atomic_store_explicit(hw(t, p, 1), seq++, memory_order_relaxed);
		if (src) {
			memcpy(payload(t, p), src[i].iov_base, lens[i]);
			if (i + 1 == n)
				/* The slot after our records reads 0 before the last header
				 * says DONE (see the top; released by that store). */
				atomic_store_explicit(hw(t, p + size, 0), 0, memory_order_relaxed);
		}
		/* Release: the words above (and the payload) before the header. */
		atomic_store_explicit(hw(t, p, 0), hdr_word(p, state, lens[i]), memory_order_release);
		last = p;
		p += size;
	}
	if (!src)
		atomic_store_explicit(hw(t, p, 0), 0, memory_order_release);
	atomic_store_explicit(&c->last, last, memory_order_relaxed);
	atomic_store_explicit(&c->tail, p, memory_order_relaxed);
	atomic_store_explicit(&c->next_seq, seq, memory_order_relaxed);
	lock_release(t);
	return 0;
}

/* ---- waking subscribers ---- */

__attribute__((noinline)) static void wake_slow(shmkit_topic *t)
{
	struct topic_ctl *c = t->ctl;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&c->sub_bell.sleepers, memory_order_relaxed))
		shmkit__bell_ring_slow(&c->sub_bell);
	if (atomic_load_explicit(&c->sub_bell.armed, memory_order_seq_cst) == 0)
		return;
	uint32_t hwm = atomic_load_explicit(&c->sub_hw, memory_order_acquire);
	if (hwm > t->max_subs)
		hwm = t->max_subs;
	for (uint32_t i = 0; i < hwm; i++) {
		struct sub_slot *s = &t->subs[i];
		uint32_t st = SUB_POLLING;
		if (atomic_load_explicit(&s->state, memory_order_relaxed) != SUB_POLLING ||
		    !atomic_compare_exchange_strong_explicit(&s->state, &st, SUB_AWAKE,
							     memory_order_seq_cst,
							     memory_order_relaxed))
			continue;
		atomic_fetch_sub_explicit(&c->sub_bell.armed, 1, memory_order_relaxed);
		/* Acquire pairs with the subscriber's release store of its token. */
		uint64_t tok = atomic_load_explicit(&s->poll_token, memory_order_acquire);
		if (tok)
			shmkit__poller_signal(&t->sock, tok);
	}
}

/* After a commit: one line, two relaxed loads when nobody waits (see wait.h). */
static inline void wake(shmkit_topic *t)
{
	struct shmkit__bell *b = &t->ctl->sub_bell;
	if (__builtin_expect((atomic_load_explicit(&b->sleepers, memory_order_relaxed) |
			      atomic_load_explicit(&b->armed, memory_order_relaxed)) != 0,
			     0))
		wake_slow(t);
}

/* ---- publishing ---- */

static int check_pub(const shmkit_topic *t)
{
	return t && t->role == SHMKIT_TOPIC_PUBLISHER;
}

/* Our slot's counters: only we write them, so a load and a store each, every message
 * (stored lazily they would cost less, but tools and peers read them as exact). */
static inline void count(shmkit_topic *t, uint64_t msgs, uint64_t bytes)
{
	struct pub_slot *ps = &t->pubs[t->slot];
	atomic_store_explicit(&ps->msgs, atomic_load_explicit(&ps->msgs, memory_order_relaxed) + msgs,
			      memory_order_relaxed);
	atomic_store_explicit(&ps->bytes, atomic_load_explicit(&ps->bytes, memory_order_relaxed) + bytes,
			      memory_order_relaxed);
}

static void commit_rec(shmkit_topic *t, uint64_t pos, size_t len)
{
	atomic_store_explicit(hw(t, pos, 3), len, memory_order_relaxed);
	uint64_t w0 = hdr_word(pos, S_DONE, atomic_load_explicit(hw(t, pos, 0), memory_order_relaxed) &
						     SIZE_MASK);
	/* Release pairs with the subscriber's acquire of w0: payload and w3 first. */
	atomic_store_explicit(hw(t, pos, 0), w0, memory_order_release);
	count(t, 1, len);
}

/* Withdraw the pending loan: nobody receives it. */
static void withdraw(shmkit_topic *t)
{
	if (t->loan_size == 0)
		return;
	uint64_t w0 = atomic_load_explicit(hw(t, t->loan_pos, 0), memory_order_relaxed);
	if ((uint32_t)(w0 >> 32) == tag_of(t->loan_pos) && (unsigned)(w0 >> 30 & 3) == S_BUSY) {
		uint64_t nw = (w0 & ~((uint64_t)3 << 30)) | (uint64_t)S_WITHDRAWN << 30;
		if (atomic_compare_exchange_strong_explicit(hw(t, t->loan_pos, 0), &w0, nw,
							    memory_order_release, memory_order_relaxed))
			atomic_fetch_add_explicit(&t->ctl->withdrawn, 1, memory_order_relaxed);
	}
	t->loan_size = 0;
	wake(t); /* a subscriber waiting on it goes on */
}

static int pub_precheck(shmkit_topic *t)
{
	if (t->poisoned)
		return -EPROTO;
	if (deleted(t))
		return -EIDRM;
	withdraw(t);
	return 0;
}

static int topic_publish(shmkit_topic *t, const void *buf, size_t len, int64_t timeout_ns)
{
	if (!check_pub(t) || !buf || len == 0)
		return -EINVAL;
	if (len > t->max_msg)
		return -EMSGSIZE;
	int r = pub_precheck(t);
	if (r < 0)
		return r;
	uint64_t pos;
	struct iovec iov = {(void *)buf, len};
	int direct = len <= DIRECT_MAX;
	r = claim(t, &len, direct ? &iov : NULL, 1, shmkit__deadline(timeout_ns), &pos);
	if (r < 0)
		return r;
	if (direct) {
		count(t, 1, len);
	} else {
		memcpy(payload(t, pos), buf, len);
		commit_rec(t, pos, len);
	}
	wake(t);
	return 0;
}

static int topic_publishv(shmkit_topic *t, const struct iovec *msgs, int n, int64_t timeout_ns)
{
	if (!check_pub(t) || !msgs || n <= 0)
		return -EINVAL;
	size_t lens_small[64], *lens = n <= 64 ? lens_small : malloc((size_t)n * sizeof *lens);
	if (!lens)
		return -ENOMEM;
	int r = 0;
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		if (msgs[i].iov_len == 0 || !msgs[i].iov_base)
			r = -EINVAL;
		else if (msgs[i].iov_len > t->max_msg && r == 0)
			r = -EMSGSIZE;
		lens[i] = msgs[i].iov_len;
		total += rec_size(lens[i]);
	}
	/* A batch is claimed at once: it must fit the ring with room to spare. */
	int batch = n;
	if (r == 0 && total > t->cap / 2) {
		batch = 0;
		for (uint64_t sum = 0; batch < n && sum + rec_size(lens[batch]) <= t->cap / 2; batch++)
			sum += rec_size(lens[batch]);
		if (batch == 0)
			batch = 1;
	}
	if (r == 0)
		r = pub_precheck(t);
	int sent = 0;
	int64_t deadline = shmkit__deadline(timeout_ns);
	while (r == 0 && sent < n) {
		int k = n - sent < batch ? n - sent : batch;
		uint64_t pos, bytes = 0;
		int direct = 1;
		for (int i = 0; i < k; i++) {
			direct &= lens[sent + i] <= DIRECT_MAX;
			bytes += lens[sent + i];
		}
		direct &= bytes <= 16 * DIRECT_MAX;
		r = claim(t, lens + sent, direct ? msgs + sent : NULL, k, deadline, &pos);
		if (r < 0)
			break;
		if (direct) {
			count(t, (uint64_t)k, bytes);
			sent += k;
			wake(t);
			continue;
		}
		for (int i = 0; i < k; i++) {
			uint64_t off = pos & t->mask;
			if (off + rec_size(lens[sent]) > t->cap)
				pos += t->cap - off; /* the pad claim() put before it */
			memcpy(payload(t, pos), msgs[sent].iov_base, lens[sent]);
			commit_rec(t, pos, lens[sent]);
			pos += rec_size(lens[sent]);
			sent++;
		}
		wake(t);
	}
	if (lens != lens_small)
		free(lens);
	return sent > 0 ? sent : r;
}

static int topic_loan(shmkit_topic *t, size_t len, int64_t timeout_ns, void **buf)
{
	if (buf)
		*buf = NULL;
	if (!check_pub(t) || !buf || len == 0)
		return -EINVAL;
	if (len > t->max_msg)
		return -EMSGSIZE;
	int r = pub_precheck(t);
	if (r < 0)
		return r;
	uint64_t pos;
	r = claim(t, &len, NULL, 1, shmkit__deadline(timeout_ns), &pos);
	if (r < 0)
		return r;
	t->loan_pos = pos;
	t->loan_size = len;
	*buf = payload(t, pos);
	return 0;
}

static int topic_commit(shmkit_topic *t, size_t len)
{
	if (!check_pub(t) || t->loan_size == 0 || len == 0 || len > t->loan_size)
		return -EINVAL;
	t->loan_size = 0;
	commit_rec(t, t->loan_pos, len);
	wake(t);
	return 0;
}

/* ---- receiving ---- */

static int check_sub(const shmkit_topic *t)
{
	return t && t->role == SHMKIT_TOPIC_SUBSCRIBER;
}

/* Reliable mode: store our position so publishers may reuse what we passed, and wake
 * any that wait for it. */
static void sub_publish(shmkit_topic *t)
{
	if (t->slot < 0 || t->published == t->pos)
		return;
	struct sub_slot *s = &t->subs[t->slot];
	atomic_store_explicit(&s->seq, t->have_expect ? t->expect : 0, memory_order_relaxed);
	atomic_store_explicit(&s->received, t->received, memory_order_relaxed);
	atomic_store_explicit(&s->lost, t->lost, memory_order_relaxed);
	/* Release pairs with the publisher's acquire in sub_min(): we are done with
	 * everything below pos. */
	atomic_store_explicit(&s->pos, t->pos, memory_order_release);
	t->published = t->pos;
	if (t->reliable) {
		atomic_thread_fence(memory_order_seq_cst);
		shmkit__bell_ring(&t->ctl->space_bell);
	}
}

/* We were lapped (reclaim passed pos): move to reclaim and count the gap. Returns
 * -EOVERFLOW when messages were lost, WAIT to look again, or -EPROTO. */
static int resync(shmkit_topic *t)
{
	struct topic_ctl *c = t->ctl;
	for (int tries = 0; tries < 1000; tries++) {
		uint64_t rc = atomic_load_explicit(&c->reclaim, memory_order_acquire);
		if (rc & 31)
			return poison(t);
		uint64_t w0 = atomic_load_explicit(hw(t, rc, 0), memory_order_acquire);
		uint64_t seq = atomic_load_explicit(hw(t, rc, 1), memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->reclaim, memory_order_relaxed) != rc)
			continue; /* moved again under us */
		if (extent_of(t, rc, w0) == 0)
			return poison(t);
		t->pos = rc;
		t->peek_len = 0;
		if (!t->have_expect) {
			/* Nothing received yet: a start that moved, not a loss. */
			return WAIT;
		}
		uint64_t gap = seq - t->expect;
		if (gap > (UINT64_C(1) << 62))
			return poison(t);
		t->expect = seq;
		if (gap == 0)
			return WAIT;
		t->lost += gap;
		t->last_lost = gap;
		return -EOVERFLOW;
	}
	return WAIT;
}

static inline int lapped(const shmkit_topic *t)
{
	uint64_t rc = atomic_load_explicit(&t->ctl->reclaim, memory_order_relaxed);
	return (int64_t)(rc - t->pos) > 0;
}

struct msg_wait {
	shmkit_topic *t;
	uint32_t len;
	uint64_t seq;
	uint64_t ext; /* the record's extent */
};

/* The next message at pos: 1 with mw->len, seq and ext, WAIT when none is committed yet,
 * -EOVERFLOW (lapped), -EPROTO. Skips pads and withdrawn claims; a BUSY claim whose
 * owner died (checked after BUSY_LIVE_NS) is withdrawn and skipped. */
static int next_msg(shmkit_topic *t, struct msg_wait *mw)
{
	for (int hops = 0;; hops++) {
		if (hops > 64)
			return WAIT; /* come back: a long run of pads is not possible */
		uint64_t pos = t->pos;
		/* Acquire pairs with the publisher's release stores of w0. */
		uint64_t w0 = atomic_load_explicit(hw(t, pos, 0), memory_order_acquire);
		if ((uint32_t)(w0 >> 32) != tag_of(pos)) {
			atomic_thread_fence(memory_order_acquire);
			if (!lapped(t))
				return WAIT;
			/* Moved to reclaim without a loss (a pad reclaimed under us, or a
			 * start that moved): the message there may be ready, look now. */
			int r = resync(t);
			if (r != WAIT)
				return r;
			continue;
		}
		uint64_t ext = extent_of(t, pos, w0);
		uint64_t s = atomic_load_explicit(hw(t, pos, 1), memory_order_relaxed);
		uint64_t n = atomic_load_explicit(hw(t, pos, 3), memory_order_relaxed);
		/* Everything read above is from the record at pos unless a publisher
		 * reclaimed it meanwhile: the seqlock check. */
		atomic_thread_fence(memory_order_acquire);
		if (lapped(t)) {
			int r = resync(t);
			if (r != WAIT)
				return r;
			continue;
		}
		if (ext == 0)
			return poison(t);
		unsigned st = (unsigned)(w0 >> 30 & 3);
		if (t->have_expect && st != S_PAD && s != t->expect) {
			/* Sequence numbers are consecutive in claim order. */
			return poison(t);
		}
		switch (st) {
		case S_PAD:
			t->pos += ext;
			continue;
		case S_WITHDRAWN:
			t->expect = s + 1;
			t->have_expect = 1;
			t->pos += ext;
			continue;
		case S_BUSY: {
			int64_t now = shmkit__now_ns();
			if (t->busy_pos != pos || t->busy_since == 0) {
				t->busy_pos = pos;
				t->busy_since = now;
				return WAIT;
			}
			if (now - t->busy_since < BUSY_LIVE_NS)
				return WAIT;
			t->busy_since = now; /* next check in BUSY_LIVE_NS */
			if (!busy_dead(t, pos, w0))
				return WAIT;
			continue; /* withdrawn now: the next round skips it */
		}
		default:
			if (n == 0 || n > (w0 & SIZE_MASK))
				return poison(t);
			mw->len = (uint32_t)n;
			mw->seq = s;
			mw->ext = ext;
			return 1;
		}
	}
}

/* Nothing at pos: end-of-stream, a dead last publisher, or WAIT. */
static int idle_check(shmkit_topic *t, int live)
{
	struct topic_ctl *c = t->ctl;
	if (deleted(t))
		return -EIDRM;
	/* Acquire pairs with the last publisher's release store in close: every record
	 * it committed is visible. */
	struct msg_wait mw = {t, 0, 0, 0};
	uint32_t end = atomic_load_explicit(&c->ended, memory_order_acquire);
	if (end) {
		int r = next_msg(t, &mw);
		if (r != WAIT)
			return r;
		/* The end of a stream that ended before we joined, and that another
		 * subscriber already received, is not ours: like a channel's receiver
		 * (Sessions in shmkit_chan_open(3)), wait for the next publisher. Any other
		 * end is ours, and lasts. Acquire pairs with the release below. */
		if (end != t->end_mine && end == t->stale_end &&
		    end == atomic_load_explicit(&c->end_taken, memory_order_acquire))
			return WAIT;
		if (end != t->end_mine) {
			t->end_mine = end;
			atomic_store_explicit(&c->end_taken, end, memory_order_release);
		}
		return 0;
	}
	if (!live)
		return WAIT;
	t->live_checked = shmkit__now_ns();
	uint32_t hwm = atomic_load_explicit(&c->pub_hw, memory_order_acquire);
	if (hwm > t->max_pubs)
		hwm = t->max_pubs;
	int held = 0;
	for (uint32_t i = 0; i < hwm; i++) {
		uint64_t owner = atomic_load_explicit(&t->pubs[i].owner, memory_order_acquire);
		if (owner == 0)
			continue;
		held = 1;
		if (shmkit__live_check(owner) != 0)
			return WAIT;
	}
	if (!held)
		return WAIT; /* no publisher yet */
	int r = next_msg(t, &mw);
	t->dead_seen = r == WAIT;
	return r == WAIT ? -EPIPE : r;
}

static int msg_check(void *arg, int live)
{
	struct msg_wait *mw = arg;
	int r = next_msg(mw->t, mw);
	if (r != WAIT)
		return r;
	r = idle_check(mw->t, live);
	/* idle_check() may have found a message after all: it used its own record. */
	return r == 1 ? next_msg(mw->t, mw) : r;
}

/* Arm the descriptor: announce POLLING, spin the grace, recheck. */
static int fd_arm(shmkit_topic *t, struct msg_wait *mw)
{
	struct sub_slot *s = &t->subs[t->slot];
	struct shmkit__bell *b = &t->ctl->sub_bell;
	uint32_t st = SUB_AWAKE;
	if (atomic_compare_exchange_strong_explicit(&s->state, &st, SUB_POLLING,
						    memory_order_seq_cst, memory_order_relaxed))
		atomic_fetch_add_explicit(&b->armed, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t end = shmkit__now_ns() + SHMKIT__GRACE_NS;
	int r;
	for (unsigned i = 1;; i++) {
		r = msg_check(mw, 0);
		if (r != WAIT)
			break;
		shmkit__cpu_relax();
		if ((i & 63) == 0 && shmkit__now_ns() >= end)
			return WAIT;
	}
	/* Found something: disarm (a publisher may have done it, and signalled). */
	st = SUB_POLLING;
	if (atomic_compare_exchange_strong_explicit(&s->state, &st, SUB_AWAKE, memory_order_relaxed,
						    memory_order_relaxed))
		atomic_fetch_sub_explicit(&b->armed, 1, memory_order_relaxed);
	return r;
}

/* The next message for receive/peek: 1 (*len, *seq), 0 end-of-stream, or an error. */
static int sub_next(shmkit_topic *t, int64_t timeout_ns, struct msg_wait *mw)
{
	if (t->poisoned)
		return -EPROTO;
	if (deleted(t))
		return -EIDRM;
	if (t->pending_lost) {
		t->last_lost = t->pending_lost;
		t->pending_lost = 0;
		return -EOVERFLOW;
	}
	int r = next_msg(t, mw);
	if (r != WAIT)
		return r;
	int64_t deadline = shmkit__deadline(timeout_ns);
	if (deadline != 0 && topic_spin(t) > 0) {
		/* A subscriber that caught up with a streaming publisher and polls the line
		 * it writes takes that line away after every store (see the channel's
		 * BACKOFF_MIN_NS): pause first without looking, doubling the pause while
		 * the first look finds a second message ready behind the first (the
		 * publisher streams ahead), halving it when not (a request-reply exchange
		 * must not wait). */
		unsigned bo = t->backoff;
		for (unsigned k = 0; k < bo; k++)
			shmkit__cpu_relax();
		r = next_msg(t, mw);
		unsigned next = bo / 2 > t->backoff_min ? bo / 2 : t->backoff_min;
		if (r == 1) {
			/* A relaxed peek at the next header: only a hint. */
			uint64_t p2 = t->pos + mw->ext;
			uint64_t w = atomic_load_explicit(hw(t, p2, 0), memory_order_relaxed);
			if ((uint32_t)(w >> 32) == tag_of(p2) && (unsigned)(w >> 30 & 3) == S_DONE)
				next = bo * 2 < t->backoff_max ? bo * 2 : t->backoff_max;
		}
		t->backoff = next;
		if (r != WAIT)
			return r;
		/* Most waits at the head of a busy topic end within a microsecond: look
		 * again, before paying for the bookkeeping of a wait. */
		for (unsigned i = 0; i < t->quick_spins; i++) {
			shmkit__cpu_relax();
			if ((r = next_msg(t, mw)) != WAIT)
				return r;
		}
	}
	sub_publish(t);
	if (deadline == 0) {
		int live = t->dead_seen || shmkit__now_ns() - t->live_checked >= SHMKIT__LIVE_CHECK_NS;
		if (t->poller.epfd >= 0 && shmkit__poller_drain(&t->poller))
			live = 1;
		r = msg_check(mw, live);
		if (r == WAIT && t->poller.epfd >= 0)
			r = fd_arm(t, mw);
		if (r != WAIT && t->poller.epfd >= 0)
			shmkit__poller_keep_ready(&t->poller); /* we drained: stay readable */
		return r == WAIT ? -EAGAIN : r;
	}
	r = shmkit__bell_wait(&t->ctl->sub_bell, msg_check, mw, topic_spin(t), deadline,
			      SHMKIT__SLICE_NS, SHMKIT__LIVE_CHECK_NS, &t->live_checked, &t->sleeps);
	return r;
}

/* The message at pos was delivered: step past it. */
static void consume(shmkit_topic *t, uint64_t ext, uint64_t seq)
{
	t->pos += ext;
	t->expect = seq + 1;
	t->have_expect = 1;
	t->dead_seen = 0;
	t->received++;
	t->peek_len = 0;
	if (t->pos - t->published >= t->cap / 8)
		sub_publish(t);
}

static ssize_t topic_receive(shmkit_topic *t, void *buf, size_t cap, int64_t timeout_ns)
{
	if (!check_sub(t) || !buf)
		return -EINVAL;
	for (;;) {
		struct msg_wait mw = {t, 0, 0, 0};
		int r = sub_next(t, timeout_ns, &mw);
		if (r <= 0)
			return r;
		if (mw.len > cap)
			return -EMSGSIZE;
		shmkit__racy_copy(buf, payload(t, t->pos), mw.len);
		/* Seqlock reader: the copy happened before the check. */
		atomic_thread_fence(memory_order_acquire);
		if (lapped(t)) {
			r = resync(t);
			if (r == WAIT)
				continue;
			return r;
		}
		consume(t, mw.ext, mw.seq);
		return mw.len;
	}
}

static ssize_t topic_peek(shmkit_topic *t, const void **buf, size_t *len, int64_t timeout_ns)
{
	if (!check_sub(t) || !buf || !len)
		return -EINVAL;
	*buf = NULL;
	*len = 0;
	struct msg_wait mw = {t, 0, 0, 0};
	int r = sub_next(t, timeout_ns, &mw);
	if (r <= 0)
		return r;
	*buf = payload(t, t->pos);
	*len = mw.len;
	t->peek_len = mw.len;
	t->peek_seq = mw.seq;
	t->peek_ext = mw.ext;
	return mw.len;
}

static int topic_release(shmkit_topic *t)
{
	if (!check_sub(t) || t->peek_len == 0)
		return -EINVAL;
	/* The user read the message in place: it was intact if reclaim never passed it. */
	atomic_thread_fence(memory_order_acquire);
	if (lapped(t)) {
		/* The peeked message is lost; the ones overwritten after it are reported by
		 * the next call (-EOVERFLOW), as any other gap. */
		t->peek_len = 0;
		t->expect = t->peek_seq + 1;
		t->lost++;
		int r = resync(t);
		if (r == -EOVERFLOW)
			t->pending_lost = t->last_lost;
		t->last_lost = 0;
		return -ESTALE;
	}
	consume(t, t->peek_ext, t->peek_seq);
	return 0;
}

/* ---- open, close ---- */

struct topic_geom {
	uint64_t cap;
	uint32_t max_pubs, max_subs;
	unsigned reliable;
	uint64_t pubs_off, subs_off, ring_off, data;
};

static void geom(struct topic_geom *g)
{
	g->pubs_off = sizeof(struct topic_ctl);
	g->subs_off = g->pubs_off + (uint64_t)g->max_pubs * sizeof(struct pub_slot);
	g->ring_off = g->subs_off + (uint64_t)g->max_subs * sizeof(struct sub_slot);
	g->ring_off = (g->ring_off + 4095) & ~(uint64_t)4095;
	g->data = g->ring_off + g->cap;
}

static int topic_init(void *data, size_t size, void *arg)
{
	struct topic_ctl *c = data;
	const struct topic_geom *g = arg;
	(void)size;
	c->magic = TOPIC_MAGIC;
	c->version = TOPIC_VERSION;
	c->flags = g->reliable;
	c->capacity = g->cap;
	c->max_msg = g->cap / 4;
	c->ring_off = g->ring_off;
	c->max_pubs = g->max_pubs;
	c->max_subs = g->max_subs;
	c->pubs_off = g->pubs_off;
	c->subs_off = g->subs_off;
	atomic_store_explicit(&c->last, UINT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&c->next_seq, 1, memory_order_relaxed);
	struct sub_slot *subs = (struct sub_slot *)((unsigned char *)data + g->subs_off);
	for (uint32_t i = 0; i < g->max_subs; i++)
		atomic_store_explicit(&subs[i].pos, POS_UNPLACED, memory_order_relaxed);
	/* Reserve the ring now (System V pages are not allocated yet). */
	if (madvise((unsigned char *)data + g->ring_off, g->cap, MADV_POPULATE_WRITE) < 0 &&
	    errno != EINVAL)
		return errno == ENOMEM || errno == EFAULT ? -ENOSPC : -errno;
	return 0;
}

static int validate(shmkit_topic *t, uint64_t want_cap)
{
	const struct topic_ctl *c = t->ctl;
	size_t data = shmkit_seg_size(t->seg);
	if (data < sizeof *c || c->magic != TOPIC_MAGIC || c->version != TOPIC_VERSION)
		return -EPROTO;
	struct topic_geom g = {.cap = c->capacity, .max_pubs = c->max_pubs,
			       .max_subs = c->max_subs, .reliable = c->flags & 1};
	if (g.cap < CAP_MIN || g.cap > CAP_MAX || (g.cap & (g.cap - 1)) || c->flags > 1 ||
	    g.max_pubs == 0 || g.max_pubs > PUBS_MAX || g.max_subs == 0 || g.max_subs > SUBS_MAX ||
	    c->max_msg != g.cap / 4)
		return -EPROTO;
	geom(&g);
	if (c->pubs_off != g.pubs_off || c->subs_off != g.subs_off || c->ring_off != g.ring_off ||
	    g.data > data)
		return -EPROTO;
	if (want_cap && want_cap != g.cap)
		return -EINVAL;
	t->cap = g.cap;
	t->mask = g.cap - 1;
	t->max_msg = g.cap / 4;
	t->max_pubs = g.max_pubs;
	t->max_subs = g.max_subs;
	t->reliable = g.reliable;
	t->pubs = (struct pub_slot *)((unsigned char *)t->ctl + g.pubs_off);
	t->subs = (struct sub_slot *)((unsigned char *)t->ctl + g.subs_off);
	t->ring = (unsigned char *)t->ctl + g.ring_off;
	return 0;
}

/* Raise a high-water mark to at least @n. */
static void hw_raise(_Atomic uint32_t *hwm, uint32_t n)
{
	uint32_t cur = atomic_load_explicit(hwm, memory_order_relaxed);
	while (cur < n && !atomic_compare_exchange_weak_explicit(hwm, &cur, n, memory_order_release,
								 memory_order_relaxed))
		;
}

/* Take a free slot, or one whose holder died: its index, -EUSERS when every slot is
 * held by a live holder, or -errno. *@dead says the slot was a dead holder's. */
static int slot_take(_Atomic uint64_t *(*owner_of)(shmkit_topic *, uint32_t), shmkit_topic *t,
		     uint32_t n, _Atomic uint32_t *hwm, uint64_t me, int *dead)
{
	/* First a never-held or freed slot, then dead holders. */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n; i++) {
			_Atomic uint64_t *o = owner_of(t, i);
			uint64_t cur = atomic_load_explicit(o, memory_order_relaxed);
			if (pass == 0 && cur != 0)
				continue;
			if (pass == 1 && (cur == 0 || shmkit__live_check(cur) != 0))
				continue;
			if (atomic_compare_exchange_strong_explicit(o, &cur, me, memory_order_acq_rel,
								    memory_order_relaxed)) {
				*dead = pass == 1;
				hw_raise(hwm, i + 1);
				return (int)i;
			}
		}
	}
	return -EUSERS;
}

static _Atomic uint64_t *pub_owner(shmkit_topic *t, uint32_t i)
{
	return &t->pubs[i].owner;
}

static _Atomic uint64_t *sub_owner(shmkit_topic *t, uint32_t i)
{
	return &t->subs[i].owner;
}

/* Free the slots of publishers that died: they count as closed from now on, so the
 * last publisher to close still ends the stream. */
static void pub_reap(shmkit_topic *t)
{
	struct topic_ctl *c = t->ctl;
	uint32_t hwm = atomic_load_explicit(&c->pub_hw, memory_order_acquire);
	hwm = hwm > t->max_pubs ? t->max_pubs : hwm;
	for (uint32_t i = 0; i < hwm; i++) {
		_Atomic uint64_t *o = &t->pubs[i].owner;
		uint64_t cur = atomic_load_explicit(o, memory_order_acquire);
		if (cur == 0 || cur == t->me || shmkit__live_check(cur) != 0)
			continue;
		if (!atomic_compare_exchange_strong_explicit(o, &cur, 0, memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		uint32_t n = atomic_load_explicit(&c->pubs, memory_order_relaxed);
		while (n > 0 && !atomic_compare_exchange_weak_explicit(&c->pubs, &n, n - 1,
								       memory_order_relaxed,
								       memory_order_relaxed))
			;
	}
}

static int pub_start(shmkit_topic *t)
{
	struct topic_ctl *c = t->ctl;
	int dead = 0;
	pub_reap(t);
	int r = slot_take(pub_owner, t, t->max_pubs, &c->pub_hw, t->me, &dead);
	if (r < 0)
		return r;
	t->slot = r;
	shmkit__who_set(&t->pubs[r].who, t->me, shmkit__pidns_self());
	if (!dead)
		atomic_fetch_add_explicit(&c->pubs, 1, memory_order_relaxed);
	atomic_store_explicit(&c->ended, 0, memory_order_release);
	return 0;
}

static int sub_start(shmkit_topic *t, unsigned flags)
{
	struct topic_ctl *c = t->ctl;
	int dead = 0;
	int r = slot_take(sub_owner, t, t->max_subs, &c->sub_hw, t->me, &dead);
	if (r == -EUSERS && !t->reliable)
		r = -1; /* unlisted: lossy subscribers need no slot */
	else if (r < 0)
		return r;
	t->slot = r;
	struct sub_slot *s = r >= 0 ? &t->subs[r] : NULL;
	if (s) {
		atomic_store_explicit(&s->pos, POS_UNPLACED, memory_order_relaxed);
		atomic_store_explicit(&s->state, SUB_AWAKE, memory_order_relaxed);
		atomic_store_explicit(&s->poll_token, 0, memory_order_relaxed);
		atomic_store_explicit(&s->received, 0, memory_order_relaxed);
		atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
		shmkit__who_set(&s->who, t->me, shmkit__pidns_self());
	}
	/* Start at the next claim, or at the oldest intact record, under the claim lock:
	 * so tail, reclaim and next_seq agree, and no publisher reclaims past our start
	 * before it sees our position (it rescans when sub_gen moved). */
	int r2 = lock_take(t, shmkit__deadline(LOCK_OPEN_NS));
	if (r2 < 0)
		return r2 == -ETIMEDOUT ? -EBUSY : r2;
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
	uint64_t p = tail, seq = atomic_load_explicit(&c->next_seq, memory_order_relaxed);
	/* Acquire, as idle_check()'s. A subscriber from the oldest asks for the history
	 * of the stream the ring holds, finished or not: its end is this one's too. */
	t->stale_end = flags & SHMKIT_TOPIC_OLDEST
			       ? 0
			       : atomic_load_explicit(&c->ended, memory_order_acquire);
	if (flags & SHMKIT_TOPIC_OLDEST) {
		uint64_t rc = atomic_load_explicit(&c->reclaim, memory_order_relaxed);
		if (rc != tail) {
			uint64_t w0 = atomic_load_explicit(hw(t, rc, 0), memory_order_acquire);
			if ((rc & 31) || tail - rc > t->cap || extent_of(t, rc, w0) == 0) {
				lock_release(t);
				return -EPROTO;
			}
			p = rc;
			seq = atomic_load_explicit(hw(t, rc, 1), memory_order_relaxed);
		}
	}
	if (p & 31) {
		lock_release(t);
		return -EPROTO;
	}
	t->pos = p;
	t->expect = seq;
	t->have_expect = 1;
	if (s) {
		/* Release pairs with the publishers' acquire in sub_min(). */
		atomic_store_explicit(&s->pos, p, memory_order_release);
		atomic_store_explicit(&s->seq, seq, memory_order_relaxed);
		atomic_store_explicit(&c->sub_gen,
				      atomic_load_explicit(&c->sub_gen, memory_order_relaxed) + 1,
				      memory_order_release);
	}
	lock_release(t);
	t->published = t->pos;
	return 0;
}

static int topic_open(const char *name, unsigned role, const struct shmkit_topic_opts *o,
		      shmkit_topic **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct shmkit_topic_opts def = {0};
	if (!o)
		o = &def;
	unsigned flags = o->flags;
	const unsigned seg_flags = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_SEG_SYSV;
	if (!name || role > SHMKIT_TOPIC_SUBSCRIBER ||
	    (flags & ~(seg_flags | SHMKIT_TOPIC_RELIABLE | SHMKIT_TOPIC_OLDEST)) ||
	    (uint64_t)o->capacity > CAP_MAX || o->max_subscribers > SUBS_MAX ||
	    o->max_publishers > PUBS_MAX || o->reserved[0] || o->reserved[1] || o->reserved[2] ||
	    o->reserved[3])
		return -EINVAL;
	struct topic_geom g = {.cap = 0,
			       .max_pubs = o->max_publishers ? o->max_publishers : PUBS_DEFAULT,
			       .max_subs = o->max_subscribers ? o->max_subscribers : SUBS_DEFAULT,
			       .reliable = (flags & SHMKIT_TOPIC_RELIABLE) != 0};
	if (o->capacity) {
		g.cap = CAP_MIN;
		while (g.cap < o->capacity)
			g.cap <<= 1;
	}
	uint64_t want = g.cap;
	if (g.cap == 0)
		g.cap = CAP_DEFAULT;
	geom(&g);
	shmkit_seg *seg;
	int r = -ENOENT;
	/* Create-or-open: open whatever exists (its capacity and limits are the ones that
	 * count; validate() checks a capacity asked for), else create; retry when another
	 * process wins either race. */
	for (int i = 0; i < 16; i++) {
		if (!(flags & SHMKIT_SEG_EXCL) || !(flags & SHMKIT_SEG_CREATE)) {
			r = shmkit__seg_open(name, SHMKIT_KIND_TOPIC, 0, 0,
					     flags & seg_flags & ~(unsigned)SHMKIT_SEG_CREATE, NULL,
					     NULL, &seg);
			if (r != -ENOENT || !(flags & SHMKIT_SEG_CREATE))
				break;
		}
		r = shmkit__seg_open(name, SHMKIT_KIND_TOPIC, g.data, o->mode ? o->mode : 0600,
				     (flags & seg_flags) | SHMKIT_SEG_EXCL, topic_init, &g, &seg);
		if (r != -EEXIST || (flags & SHMKIT_SEG_EXCL))
			break;
	}
	if (r < 0)
		return r;
	shmkit_topic *t = calloc(1, sizeof *t);
	if (!t) {
		shmkit_seg_close(seg);
		return -ENOMEM;
	}
	t->seg = seg;
	t->ctl = shmkit_seg_data(seg);
	t->seg_state = &shmkit__seg_hdr(seg)->state;
	t->role = role;
	t->slot = -1;
	t->spin_ns = -1; /* shmkit__spin_default_ns(), until set */
	t->sock = -1;
	t->pid = getpid();
	shmkit__poller_init(&t->poller);
	if (role == SHMKIT_TOPIC_SUBSCRIBER) {
		unsigned hi;
		shmkit__pause_counts(QUICK_SPIN_NS, QUICK_SPIN_NS, &t->quick_spins, &hi);
		shmkit__pause_counts(BACKOFF_MIN_NS, BACKOFF_MAX_NS, &t->backoff_min,
				     &t->backoff_max);
		t->backoff = t->backoff_min;
	}
	r = validate(t, want);
	if (r < 0)
		goto fail;
	if (role != SHMKIT_TOPIC_OBSERVER) {
		r = shmkit__live_token(&t->me);
		if (r < 0)
			goto fail;
		r = role == SHMKIT_TOPIC_PUBLISHER ? pub_start(t) : sub_start(t, flags);
		if (r < 0)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	if (t->slot >= 0)
		shmkit__role_release(role == SHMKIT_TOPIC_PUBLISHER ? &t->pubs[t->slot].owner
								    : &t->subs[t->slot].owner,
				     t->me);
	shmkit_seg_close(seg);
	free(t);
	return r;
}

static int topic_close(shmkit_topic *t)
{
	if (!t)
		return 0;
	struct topic_ctl *c = t->ctl;
	uint64_t tok = 0;
	int mine = t->role != SHMKIT_TOPIC_OBSERVER && t->pid == getpid() &&
		   shmkit__live_token(&tok) == 0 && tok == t->me;
	if (mine && t->role == SHMKIT_TOPIC_PUBLISHER && !deleted(t)) {
		if (!t->poisoned)
			withdraw(t);
		struct pub_slot *ps = &t->pubs[t->slot];
		/* The last one out ends the stream; release pairs with the subscribers'
		 * acquire of ended: our commits are visible with it. */
		uint32_t n = atomic_load_explicit(&c->pubs, memory_order_relaxed);
		while (n > 0 && !atomic_compare_exchange_weak_explicit(&c->pubs, &n, n - 1,
								       memory_order_acq_rel,
								       memory_order_relaxed))
			;
		if (n <= 1) {
			/* Each end its own number, never 0 (see end_taken). */
			uint32_t e = atomic_load_explicit(&c->end_seq, memory_order_relaxed) + 1;
			e += e == 0;
			atomic_store_explicit(&c->end_seq, e, memory_order_relaxed);
			atomic_store_explicit(&c->ended, e, memory_order_release);
		}
		shmkit__role_release(&ps->owner, t->me);
		wake_slow(t); /* fenced: sleepers and pollers learn of the end */
	} else if (mine && t->role == SHMKIT_TOPIC_SUBSCRIBER && t->slot >= 0) {
		struct sub_slot *s = &t->subs[t->slot];
		uint32_t st = SUB_POLLING;
		if (atomic_compare_exchange_strong_explicit(&s->state, &st, SUB_AWAKE,
							    memory_order_relaxed, memory_order_relaxed))
			atomic_fetch_sub_explicit(&c->sub_bell.armed, 1, memory_order_relaxed);
		atomic_store_explicit(&s->poll_token, 0, memory_order_relaxed);
		atomic_store_explicit(&s->pos, POS_UNPLACED, memory_order_release);
		shmkit__role_release(&s->owner, t->me);
		if (t->reliable) {
			atomic_thread_fence(memory_order_seq_cst);
			shmkit__bell_ring(&c->space_bell); /* publishers waiting on us go on */
		}
	}
	if (t->sock >= 0)
		close(t->sock);
	shmkit__poller_close(&t->poller);
	shmkit_seg_close(t->seg);
	free(t);
	return 0;
}

static int topic_fd(shmkit_topic *t)
{
	if (!check_sub(t))
		return -EINVAL;
	if (t->slot < 0)
		return -EUSERS;
	if (t->poller.epfd >= 0)
		return t->poller.epfd;
	int r = shmkit__poller_open(&t->poller, t->me);
	if (r < 0)
		return r;
	/* The last publisher's death shows only to a liveness check: come back. */
	r = shmkit__poller_use_timer(&t->poller, POLL_TIMER_NS);
	if (r < 0) {
		shmkit__poller_close(&t->poller);
		return r;
	}
	/* Release pairs with the publisher's acquire in wake_slow(). */
	atomic_store_explicit(&t->subs[t->slot].poll_token, t->poller.token, memory_order_release);
	/* Level-triggered from the start: readable at once if something waits. */
	struct msg_wait mw = {t, 0, 0, 0};
	r = msg_check(&mw, 0);
	if (r != WAIT)
		shmkit__poller_keep_ready(&t->poller);
	else if (fd_arm(t, &mw) != WAIT)
		shmkit__poller_keep_ready(&t->poller);
	return t->poller.epfd;
}

static int topic_stats(const shmkit_topic *t, struct shmkit_topic_stats *st)
{
	if (!t || !st)
		return -EINVAL;
	const struct topic_ctl *c = t->ctl;
	memset(st, 0, sizeof *st);
	st->capacity = t->cap;
	st->max_msg = t->max_msg;
	st->reliable = t->reliable;
	st->max_subscribers = t->max_subs;
	st->max_publishers = t->max_pubs;
	uint32_t ph = atomic_load_explicit(&c->pub_hw, memory_order_relaxed);
	uint32_t sh = atomic_load_explicit(&c->sub_hw, memory_order_relaxed);
	ph = ph > t->max_pubs ? t->max_pubs : ph;
	sh = sh > t->max_subs ? t->max_subs : sh;
	for (uint32_t i = 0; i < ph; i++) {
		if (atomic_load_explicit(&t->pubs[i].owner, memory_order_relaxed))
			st->publishers++;
		st->published += atomic_load_explicit(&t->pubs[i].msgs, memory_order_relaxed);
		st->bytes_published += atomic_load_explicit(&t->pubs[i].bytes, memory_order_relaxed);
	}
	for (uint32_t i = 0; i < sh; i++)
		if (atomic_load_explicit(&t->subs[i].owner, memory_order_relaxed))
			st->subscribers++;
	st->next_seq = atomic_load_explicit(&c->next_seq, memory_order_relaxed);
	st->evicted = atomic_load_explicit(&c->evicted, memory_order_relaxed);
	st->abandoned = atomic_load_explicit(&c->abandoned, memory_order_relaxed);
	if (t->role == SHMKIT_TOPIC_SUBSCRIBER) {
		st->received = t->received;
		st->lost = t->lost;
		uint64_t base = t->have_expect ? t->expect : st->next_seq;
		st->lag = st->next_seq - base <= (UINT64_C(1) << 62) ? st->next_seq - base : 0;
	}
	return 0;
}

static int topic_subscribers(const shmkit_topic *t, struct shmkit_topic_sub_info *out, size_t n)
{
	if (!t || (!out && n))
		return -EINVAL;
	const struct topic_ctl *c = t->ctl;
	uint32_t sh = atomic_load_explicit(&c->sub_hw, memory_order_relaxed);
	sh = sh > t->max_subs ? t->max_subs : sh;
	uint64_t next = atomic_load_explicit(&c->next_seq, memory_order_relaxed);
	int count = 0;
	for (uint32_t i = 0; i < sh; i++) {
		const struct sub_slot *s = &t->subs[i];
		uint64_t owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
		if (owner == 0)
			continue;
		if ((size_t)count < n) {
			struct shmkit_topic_sub_info *o = &out[count];
			memset(o, 0, sizeof *o);
			o->pid = shmkit__who_pid(&s->owner, &s->who);
			int a = shmkit__live_check(owner);
			o->alive = a < 0 ? -1 : a;
			o->received = atomic_load_explicit(&s->received, memory_order_relaxed);
			o->lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
			uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
			o->lag = seq && next - seq <= (UINT64_C(1) << 62) ? next - seq : 0;
		}
		if (count < INT_MAX)
			count++;
	}
	return count;
}

/* ---- the public calls: each a guarded call (see guard.c) ---- */

/* Leave a guarded call: -EFAULT if it met a truncation or the handle is poisoned.
 * A replaced mapping's header says DELETED, so the common case is one load of a line
 * the call has just read. */
static int64_t done(const shmkit_topic *t, int64_t r)
{
	int gone = t != NULL && deleted(t);
	int faulted = shmkit__guard_leave();
	if (__builtin_expect(faulted || gone, 0) && (faulted || shmkit__seg_poisoned(t->seg)))
		return -EFAULT;
	return r;
}

int shmkit_topic_open_opts(const char *name, unsigned role, const struct shmkit_topic_opts *opts,
			   shmkit_topic **out)
{
	shmkit__guard_enter();
	int r = topic_open(name, role, opts, out);
	if (done(r == 0 ? *out : NULL, r) == -EFAULT) {
		if (r == 0)
			topic_close(*out);
		if (out)
			*out = NULL;
		r = -EFAULT;
	}
	return r;
}

int shmkit_topic_open(const char *name, unsigned role, size_t capacity, unsigned mode,
		      unsigned flags, shmkit_topic **out)
{
	struct shmkit_topic_opts o = {.capacity = capacity, .mode = mode, .flags = flags};
	return shmkit_topic_open_opts(name, role, &o, out);
}

int shmkit_topic_close(shmkit_topic *t)
{
	shmkit__guard_enter();
	int r = topic_close(t);
	shmkit__guard_leave();
	return r;
}

int shmkit_topic_publish(shmkit_topic *t, const void *buf, size_t len, int64_t timeout_ns)
{
	shmkit__guard_enter();
	return (int)done(t, topic_publish(t, buf, len, timeout_ns));
}

int shmkit_topic_publishv(shmkit_topic *t, const struct iovec *msgs, int n, int64_t timeout_ns)
{
	shmkit__guard_enter();
	return (int)done(t, topic_publishv(t, msgs, n, timeout_ns));
}

int shmkit_topic_loan(shmkit_topic *t, size_t len, int64_t timeout_ns, void **buf)
{
	shmkit__guard_enter();
	int r = (int)done(t, topic_loan(t, len, timeout_ns, buf));
	if (r == -EFAULT && buf)
		*buf = NULL;
	return r;
}

int shmkit_topic_commit(shmkit_topic *t, size_t len)
{
	shmkit__guard_enter();
	return (int)done(t, topic_commit(t, len));
}

ssize_t shmkit_topic_receive(shmkit_topic *t, void *buf, size_t cap, int64_t timeout_ns)
{
	shmkit__guard_enter();
	return (ssize_t)done(t, topic_receive(t, buf, cap, timeout_ns));
}

uint64_t shmkit_topic_lost(const shmkit_topic *t)
{
	return t ? t->last_lost : 0;
}

ssize_t shmkit_topic_peek(shmkit_topic *t, const void **buf, size_t *len, int64_t timeout_ns)
{
	shmkit__guard_enter();
	ssize_t r = (ssize_t)done(t, topic_peek(t, buf, len, timeout_ns));
	if (r == -EFAULT && buf && len) {
		*buf = NULL;
		*len = 0;
	}
	return r;
}

int shmkit_topic_release(shmkit_topic *t)
{
	shmkit__guard_enter();
	return (int)done(t, topic_release(t));
}

int shmkit_topic_fd(shmkit_topic *t)
{
	shmkit__guard_enter();
	return (int)done(t, topic_fd(t));
}

int shmkit_topic_set_spin(shmkit_topic *t, int64_t spin_ns)
{
	if (!t)
		return -EINVAL;
	t->spin_ns = spin_ns < 0 ? 0 : spin_ns > SHMKIT_SEC ? SHMKIT_SEC : spin_ns;
	return 0;
}

int shmkit_topic_stats(const shmkit_topic *t, struct shmkit_topic_stats *st)
{
	shmkit__guard_enter();
	int r = (int)done(t, topic_stats(t, st));
	if (r == -EFAULT && st)
		memset(st, 0, sizeof *st);
	return r;
}

int shmkit_topic_subscribers(const shmkit_topic *t, struct shmkit_topic_sub_info *out, size_t n)
{
	shmkit__guard_enter();
	return (int)done(t, topic_subscribers(t, out, n));
}

shmkit_seg *shmkit_topic_seg(const shmkit_topic *t)
{
	return t ? t->seg : NULL;
}
