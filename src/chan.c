/* shmkit — the message channel: a single-producer single-consumer ring of
 * variable-length, contiguous messages in one segment.
 *
 * Records. A message is one record at an 8-aligned, free-running position: an 8-byte
 * header word, then the payload, padded to 8. The header's low half is the length,
 * its high half a tag computed from the record's own position. The producer writes
 * the payload, then release-stores the header; the consumer spins on the header of
 * the next record with acquire (prefetching the line after it). A message therefore
 * costs the consumer the line it already spins on, not a separate index line first.
 * A header left from an earlier lap carries another position's tag and never looks
 * committed; and after each record the producer zeroes the header slot of the next
 * one when that slot is free, so the slot the consumer waits on holds 0, or the header
 * written exactly one lap earlier at a record boundary, never stale payload bytes
 * that could imitate a header. A message that does not fit before the end of the ring
 * follows a pad record that fills the end, so every message is contiguous and both
 * zero-copy APIs work. A payload of ALIGN_MIN_LINES cache lines or more starts on a
 * line: the producer puts a short pad record before its header when needed (see
 * align_skip(); the line size is the kernel's, and only the producer needs it).
 *
 * Large messages are committed whole, as any other. Streaming them (the header with
 * the final length first, then a progress word per chunk, so that the receive copies
 * chunk i while the producer writes chunk i+1) was built and measured for issue 10:
 * correct, producer deaths included, but the 1 MiB copy ran at 0.3-0.5 times the
 * whole-message speed in every interleaved run on a 2-vCPU AMD EPYC VM under heavy
 * load from other processes, with 2-4 times as many consumer sleeps per message (a
 * receive tied to the producer's progress waits whenever the producer is preempted
 * mid-message); chunks of 256 KiB, or a consumer kept 256 KiB behind, did no better.
 * Not measured on a quiet machine. The record format keeps no trace of it.
 *
 * Positions. Free-running uint64 byte positions, masked by capacity - 1 (a power of
 * two). The consumer publishes its released position ("head") lazily: every
 * capacity/8 bytes, when it finds the ring empty, and at close. The producer caches
 * it and reads the shared copy only when the cache says the ring is full. The
 * producer's committed position ("tail") is stored on its own line after every
 * commit, but the consumer reads it only when it is idle (end-of-stream, consistency
 * checks), never to find messages.
 *
 * Waiting. Each side spins for a budget, then sleeps on a futex word of its own
 * (c_state, p_state), which the other side reads with one load of a line that is
 * written only when someone goes to sleep. The producer's per-message check is that
 * single relaxed load, with no fence: a full fence per message would stall on the
 * line the consumer is spinning on and cost most of the throughput. The Dekker
 * handshake is completed asymmetrically: the consumer announces "drowsy"
 * SHMKIT__GRACE_NS before it announces "sleeping"; a producer that sees anything but
 * "awake" fences and rechecks (the textbook seq_cst handshake). A producer that saw
 * "awake" read it before the drowsy store reached it, so its earlier header store was
 * already in its store buffer, and that buffer drains in well under SHMKIT__GRACE_NS:
 * the consumer's grace spin sees the header. Should a wake-up nevertheless be lost,
 * it only costs the first sleep slice (SHMKIT__SLICE_FIRST_NS), never a hang. Every
 * path where the producer itself is about to wait or finish (full ring, sendv, close)
 * uses the full fence. A producer that wakes a sleeping consumer leaves its state
 * DROWSY, not AWAKE, so its own later checks stay fenced until the consumer says
 * AWAKE again. A consumer in sleep mode (spin 0) therefore keeps DROWSY between
 * messages, once the producer set it or it itself stayed drowsy for a whole grace,
 * and sleeps at once on the next wait:
 * DROWSY met at the start of a wait always means the grace is already done. The
 * producer sleeping on a full ring needs no grace: the consumer publishes with a
 * seq_cst store and then checks p_state, at the latest just before it sleeps.
 *
 * Liveness. A role word holds its holder's liveness token (the role words of
 * src/live.c, declared in wait.h): claimed with CAS, asked only of
 * shmkit__live_check(), which means the same in every pid namespace and survives fork.
 * A check costs about three system calls, so only slow paths make one, at most every
 * SHMKIT__LIVE_CHECK_NS. Sleeps are sliced, and each slice that expires checks the
 * peer, so a dead peer is reported within about SHMKIT__SLICE_NS even to a sleeper.
 *
 * Poll mode. shmkit_chan_fd() gives either side a poller (src/poll.c): an epoll
 * descriptor that the other side signals, with a pidfd (or a timer) watching the
 * other side's death. A side signals only when the other announced POLLING in its
 * state word, so the producer's per-message check stays the one relaxed load of
 * c_state. The consumer's descriptor is level-triggered: it is readable whenever a
 * message, end-of-stream, a dead producer or a deleted segment waits. A receive that
 * finds nothing drains the descriptor, announces POLLING and rechecks (the handshake
 * above); whatever the consumer finds after a drain, or leaves behind a blocking wait
 * (which replaces POLLING by its own states), it keeps readable with a signal to
 * itself, so the descriptor never goes quiet while something waits. The producer's
 * descriptor is readable when at least max(capacity / 2, the room the last refused
 * send needed) bytes are free, or the consumer closed or died: a send refused with
 * -EAGAIN drains it, stores the head position it waits for in p_want, announces
 * POLLING in p_state and rechecks the head; the consumer, which loads p_state after
 * each publish anyway, signals once its head reaches p_want. Half the ring, so that
 * a producer woken once writes many messages before it polls again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmkit/chan.h>
#include "internal.h"
#include "wait.h"

#define CHAN_MAGIC UINT64_C(0x314e414843544b53) /* "SKTCHAN1" little-endian */
/* 2: role words hold liveness tokens, with the holder's pid and pid namespace beside.
 * 3: the producer may poll (p_state POLLING, p_token, p_want), which a consumer of
 * version 2 would never signal.
 * 4: pads may be short, to start a large payload on a cache line (pad_size()); a
 * consumer of version 3 would call them corrupt. Also sessions: p_closed and
 * c_closed hold the closing side's session, and eos_taken the end-of-stream a
 * consumer received (a version 3 peer would deliver a received end again). */
#define CHAN_VERSION 4u

/* The ring starts one page into the data area, so it is page aligned. */
#define RING_OFF 4096u
#define CAP_MIN ((uint64_t)4096)
/* Lengths fit the header's 31 bits, and tags (31 bits of position / 8) differ between
 * a position and the same offset one lap earlier as long as capacity < 2^34. */
#define CAP_MAX ((uint64_t)1 << 30)
/* The default ring is half the L2 cache the kernel reports (see cap_default()), a
 * power of two within these limits, so that it fits the L2 caches of both cores with
 * room to spare and messages move cache to cache; CAP_DEFAULT_FALLBACK when the kernel
 * reports no L2 size. */
#define CAP_DEFAULT_MIN ((uint64_t)64 << 10)
#define CAP_DEFAULT_MAX ((uint64_t)4 << 20)
#define CAP_DEFAULT_FALLBACK ((uint64_t)256 << 10)

#define HDR 8u                 /* record header bytes */
#define PAD_BIT 0x80000000u    /* in the length half: a pad record (see pad_size()) */
#define TAG_BIT 0x80000000u    /* always set in a tag, so a zero word never matches */
/* Alignment pads are shorter than this: the largest cache line a producer aligns to. */
#define LINE_MAX_ALIGN 256u
/* A payload of at least this many cache lines starts on a line (see align_skip()). */
#define ALIGN_MIN_LINES 4u

/* The spin budget before a sleep is measured (shmkit__spin_default_ns()) unless set.
 * A wait behind a large message spins longer than the budget: about as long as the
 * other side needs to move a message of that size at a slow 1 GB/s, up to a cap. A
 * sleep costs a wake-up (20 µs on a VM) and, worse, lets the idle CPU lose its caches,
 * which a 1 MiB copy needs warm; spinning through a copy costs only the spinner. */
#define SPIN_NS_PER_BYTE 1
#define SPIN_SIZED_MAX_NS (2 * SHMKIT_MSEC)
/* A consumer that catches up with a streaming producer and polls the line the
 * producer is writing takes that line away after every store: the producer's stores
 * then wait for the other core one by one, and 64-byte messages flow at 9 M/s instead
 * of 30 M/s (two vCPUs far apart). So a wait first pauses without looking, about
 * BACKOFF_MIN_NS (less than any round trip, so a request-reply exchange loses
 * nothing), doubling up to about BACKOFF_MAX_NS while every first look finds a
 * message with a second one ready behind it (a producer streaming ahead, which now
 * writes many lines undisturbed), and halving when it does not. Counted in pause
 * instructions, so that no clock is read; how long one takes differs between CPUs
 * (19 ns on the AMD EPYC this was measured on, about 40 on Intel since Skylake, next
 * to nothing for an ARM yield), so shmkit__pause_counts() measures it once per
 * process. */
#define BACKOFF_MIN_NS 40
#define BACKOFF_MAX_NS 2400
/* Checks spin loops make only every so many iterations. */
#define SPIN_CLOCK_MASK 63u
#define SPIN_PEER_MASK 1023u

#ifndef MADV_POPULATE_READ /* Linux 5.14; older kernels answer EINVAL */
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* c_state and p_state: what a side is doing, for the other side's wake check. */
enum { ST_AWAKE = 0, ST_DROWSY = 1, ST_SLEEPING = 2, ST_POLLING = 3 };

/* Internal result of the consumer's checks: keep waiting. */
#define WAIT 2

/* At the start of the channel segment's data area; the ring follows at RING_OFF.
 * "P" is the producer handle, "C" the consumer handle. Every field is read by every
 * handle as hostile input: values are checked before use and never index memory. */
struct chan_ctl {
	/* Line 0: written by the creator in chan_init() before the segment becomes READY
	 * (published by the seg layer's release store), read-only afterwards; openers
	 * validate it and keep copies. */
	uint64_t magic;     /* CHAN_MAGIC */
	uint32_t version;   /* CHAN_VERSION */
	uint32_t hdr_size;  /* HDR */
	uint64_t capacity;  /* ring bytes, a power of two */
	uint64_t max_msg;   /* capacity / 2 */
	uint64_t ring_off;  /* RING_OFF */
	uint64_t reserved0[3];

	/* Line 1: the producer's role. Written when a producer opens or closes. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t p_owner; /* the holder's liveness token,
	                             * 0 if none: CAS by an opening producer (also over a
	                             * dead holder), CAS to 0 by its close; read by openers
	                             * and by C, which ask shmkit__live_check() if it lives */
	_Atomic uint32_t p_closed;  /* end-of-stream: the session (p_session) of the
	                             * producer that closed, never 0; 0 when one opens:
	                             * written by P with release after its last commit,
	                             * read by C with acquire. One word, so that a consumer
	                             * learns which stream ended with the fact that it did */
	_Atomic uint32_t p_session; /* producer sessions: each producer that attaches adds
	                             * 1 (skipping 0) before it clears p_closed; read and
	                             * written only by P (the role is exclusive): relaxed */
	struct shmkit__who p_who;   /* who holds p_owner, for people and pidfds */
	_Atomic uint64_t p_token;   /* the producer's poller token, 0 if none: written by P
	                             * (release) before it ever announces POLLING, read by C
	                             * (acquire) when it signals */
	_Atomic uint64_t p_want;    /* while p_state is POLLING: the head position at which
	                             * P's descriptor is ready; written by P (relaxed) before
	                             * its seq_cst store of POLLING, read by C after loading
	                             * POLLING; only compared */
	uint64_t reserved1[1];

	/* Line 2: the consumer's role. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t c_owner; /* as p_owner, for C */
	_Atomic uint64_t c_token;   /* poll-mode socket address, 0 if none: written by C
	                             * (release) before it ever announces POLLING, read by P
	                             * (acquire) when it signals */
	_Atomic uint32_t c_closed;  /* the session (c_session) of the consumer that closed,
	                             * 0 while one is attached: written by C with release,
	                             * read by P when the ring is full (-EPIPE, unless it is
	                             * the close P found when it attached: see stale_close) */
	_Atomic uint32_t c_session; /* as p_session, for C */
	struct shmkit__who c_who;   /* as p_who, for C */
	_Atomic uint32_t eos_taken; /* the p_closed value whose end-of-stream a consumer
	                             * received (recv or peek returned 0), 0 if none: a
	                             * later consumer does not receive it again but waits
	                             * for the next producer, as a FIFO's reader waits for
	                             * a writer. Written by C with release, read by C with
	                             * acquire (and only compared) */
	uint32_t reserved2b;
	uint64_t reserved2[1];

	/* Line 3: written by P on every commit; read by C only when idle, and by stats. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t tail; /* committed position: stored with
	                             * release after the header it covers */
	_Atomic uint64_t msgs_sent; /* counters: P's relaxed stores */
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t p_sleeps;
	_Atomic uint64_t p_wakes;
	uint64_t reserved3[3];

	/* Line 4: the released position, published by C lazily (see publish()); read by
	 * P only when its cached copy says the ring is full. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t head;
	uint64_t reserved4[7];

	/* Line 5: C's counters, relaxed stores by C on every message; read by stats. */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t msgs_recv;
	_Atomic uint64_t bytes_recv;
	_Atomic uint64_t c_sleeps;
	_Atomic uint64_t c_wakes;
	uint64_t reserved5[4];

	/* Line 6: C's wait state and futex word: written by C when it starts or stops
	 * waiting, by P only to wake it (CAS to DROWSY or AWAKE); read by P after every
	 * commit. */
	alignas(SHMKIT_CACHELINE) _Atomic uint32_t c_state;
	uint32_t reserved6a;
	_Atomic int64_t c_rung;     /* when P last woke C from a sleep: stored by P
	                             * (relaxed) before its FUTEX_WAKE, read by C after
	                             * waking, as a sample of what a wake-up costs
	                             * (shmkit__wake_sample(); any value is harmless) */
	uint32_t reserved6[12];

	/* Line 7: P's wait state and futex word: written by P when it sleeps on a full
	 * ring or polls, by C only to wake it (CAS to AWAKE); read by C each time it
	 * publishes. */
	alignas(SHMKIT_CACHELINE) _Atomic uint32_t p_state;
	uint32_t reserved7a;
	_Atomic int64_t p_rung;     /* as c_rung, when C last woke P */
	uint32_t reserved7[12];
};
_Static_assert(sizeof(struct chan_ctl) == 8 * SHMKIT_CACHELINE, "channel control block is 8 lines");
_Static_assert(offsetof(struct chan_ctl, p_owner) == 64, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, p_who) == 80, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, p_token) == 104, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, p_want) == 112, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, c_owner) == 128, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, c_who) == 152, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, p_session) == 76, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, c_session) == 148, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, eos_taken) == 176, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, tail) == 192, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, head) == 256, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, msgs_recv) == 320, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, c_state) == 384, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, p_state) == 448, "channel layout changed");
_Static_assert(offsetof(struct chan_ctl, c_rung) == 392 && offsetof(struct chan_ctl, p_rung) == 456,
	       "channel layout changed");
_Static_assert(sizeof(struct chan_ctl) <= RING_OFF, "control block fits before the ring");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8,
	       "header words are lock-free 8-byte atomics");

struct shmkit_chan {
	shmkit_seg *seg;
	struct chan_ctl *ctl;
	_Atomic uint32_t *seg_state; /* the segment header's state word (-EIDRM) */
	/* Validated at open, never re-read from shared memory. */
	unsigned char *ring;
	uint64_t cap, mask, max_msg;
	unsigned role;
	int poisoned;           /* the ring was found corrupt: every call gives -EPROTO */
	int64_t spin_ns;        /* the spin budget; -1: shmkit__spin_default_ns() */
	uint64_t me;            /* our role word: this process's liveness token */
	int64_t live_checked;   /* when a non-blocking call last checked the peer */

	/* Producer. */
	uint64_t tail;          /* next record's position: the truth, never re-read */
	uint64_t head_cache;    /* consumer's head as last read */
	uint64_t resv_pos;      /* position of the pending reservation */
	uint64_t line_mask;     /* cache line size - 1, from the kernel (line_size()) */
	uint64_t align_min;     /* payloads from this length start on a line */
	size_t resv_len;        /* its length; 0: no reservation */
	int sock;               /* either side: datagram socket for signals to the peer's
	                         * poller, -1 until needed (here, where the producer's
	                         * was, so that the hot fields keep their places) */
	uint64_t copy_cost[2];  /* copy_large(): ticks per KiB, plain [0] and claimed [1] */
	unsigned copy_n;        /* large copies made */
	unsigned char copy_claim; /* the way in use: 1 claim_copy(), 0 memcpy */
	uint64_t n_psleeps, n_pwakes; /* copies of our rare counters */

	/* Consumer. */
	uint64_t pos;           /* first unreleased record: the truth, never re-read */
	uint64_t published;     /* the head we last stored */
	uint64_t pub_batch;     /* publish after this many released bytes */
	size_t peek_len;        /* length of the peeked message; 0: none */
	uint32_t last_len;      /* length of the last message released (spin_budget()) */
	unsigned backoff;       /* pauses before a wait's first look (BACKOFF_MIN_NS) */
	unsigned backoff_min, backoff_max; /* the same limits, in pauses */
	uint64_t n_csleeps, n_cwakes;

	/* Either side: poll mode (shmkit_chan_fd()); poll.epfd < 0 when unused. */
	struct shmkit__poller poll;

	/* Rarely used; last, so that the hot fields above keep their places. */
	pid_t pid;              /* getpid() at open: tells a handle inherited through fork */
	uint64_t pidns;         /* shmkit__pidns_self() at open, 0 for an observer */
	uint64_t dead_owner;    /* the peer's role word, once found dead; 0 if none */
	uint32_t session;       /* our p_session or c_session value */
	/* Producer: the consumer's end we found when we attached (its c_closed, or its
	 * dead holder's token): not ours to report. A ring that fills with no consumer
	 * since waits for one, as a FIFO's writer waits for a reader. */
	uint32_t stale_close;
	uint64_t stale_owner;
	/* Consumer: the p_closed value idle_check() last answered 0 for, and the one
	 * whose end-of-stream this handle received (answered again until a producer
	 * attaches). */
	uint32_t eos_seen, eos_mine;
	/* Consumer, peek_next(): messages peeked ahead and not released yet, and the
	 * position of the first of them (the head we may publish while any are). */
	uint64_t nahead;
	uint64_t rel;
};

/* The next session number of a role: never 0, which means "none". */
static uint32_t next_session(_Atomic uint32_t *counter)
{
	uint32_t s = atomic_load_explicit(counter, memory_order_relaxed) + 1;
	s += s == 0;
	atomic_store_explicit(counter, s, memory_order_relaxed);
	return s;
}

static inline uint64_t rec_size(uint64_t len)
{
	return (HDR + len + 7) & ~(uint64_t)7;
}

static inline uint32_t tag_of(uint64_t pos)
{
	return TAG_BIT | (uint32_t)(pos >> 3);
}

static inline uint64_t hdr_word(uint64_t pos, uint32_t len)
{
	return (uint64_t)tag_of(pos) << 32 | len;
}

/* The bytes a pad record with length word @n skips at ring offset @off, or 0 if no
 * producer writes such a pad: either the rest of the lap (never a whole lap), or an
 * alignment pad (see align_skip()), 8-aligned and shorter than LINE_MAX_ALIGN. */
static inline uint64_t pad_size(const shmkit_chan *ch, uint64_t off, uint32_t n)
{
	uint64_t p = n & ~PAD_BIT;
	if (off != 0 && p == ch->cap - off)
		return p;
	if (p == 0 || (p & 7) || p >= LINE_MAX_ALIGN || p > ch->cap - off)
		return 0;
	return p;
}

static inline _Atomic uint64_t *slot(const shmkit_chan *ch, uint64_t pos)
{
	return (_Atomic uint64_t *)(void *)(ch->ring + (pos & ch->mask));
}

static inline int deleted(const shmkit_chan *ch)
{
	/* Acquire, as shmkit_seg_check(): pairs with the deleter's release store. */
	return atomic_load_explicit(ch->seg_state, memory_order_acquire) == SHMKIT_STATE_DELETED;
}

static int poison(shmkit_chan *ch)
{
	ch->poisoned = 1;
	return -EPROTO;
}

/* ---- waking ---- */

/* Producer: the consumer may be waiting for what we committed. */
static void wake_consumer(shmkit_chan *ch)
{
	struct chan_ctl *c = ch->ctl;
	/* The sleeper handshake, waker side: our headers (stored before) become visible
	 * before we look at c_state. Pairs with the consumer's seq_cst store of SLEEPING or
	 * POLLING followed by its recheck of the header: either it sees our records, or we
	 * see its state here. */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t s = atomic_load_explicit(&c->c_state, memory_order_seq_cst);
	if (s != ST_SLEEPING && s != ST_POLLING)
		return;
	/* CAS, so that only one wake-up is sent per sleep. A sleeper is left DROWSY, not
	 * AWAKE: our later commits keep checking with a fence until the consumer itself
	 * says AWAKE, so a consumer in sleep mode can go back to sleep without a grace
	 * (wait_data()). A poller is left AWAKE: it drains with non-blocking calls, and
	 * its next fd_arm() spins the grace again, so our checks need no fence meanwhile. */
	if (!atomic_compare_exchange_strong_explicit(&c->c_state, &s,
						     s == ST_SLEEPING ? ST_DROWSY : ST_AWAKE,
						     memory_order_seq_cst, memory_order_relaxed))
		return;
	if (s == ST_SLEEPING) {
		atomic_store_explicit(&c->c_rung, shmkit__now_ns(), memory_order_relaxed);
		shmkit__futex_wake(&c->c_state, 1);
	} else
		/* Acquire pairs with the consumer's release store of its token in chan_fd(). */
		shmkit__poller_signal(&ch->sock,
				      atomic_load_explicit(&c->c_token, memory_order_acquire));
	/* Our own counter, on our own line: relaxed. */
	atomic_store_explicit(&c->p_wakes, ++ch->n_pwakes, memory_order_relaxed);
}

/* Producer, after each commit: one load of a line written only around sleeps. */
static inline void wake_check(shmkit_chan *ch)
{
	/* Relaxed and unfenced on purpose: see "Waiting" at the top of the file. Any state
	 * but AWAKE takes the fenced path. */
	if (__builtin_expect(atomic_load_explicit(&ch->ctl->c_state, memory_order_relaxed) !=
				     ST_AWAKE,
			     0))
		wake_consumer(ch);
}

/* Consumer: the head we may publish: our position, or while messages peeked with
 * peek_next() are unreleased, the first of them (the producer must not overwrite
 * them, and a successor must read them again). */
static inline uint64_t head_pos(const shmkit_chan *ch)
{
	return __builtin_expect(ch->nahead != 0, 0) ? ch->rel : ch->pos;
}

/* Consumer: make the released position visible. */
static inline void publish_head(shmkit_chan *ch)
{
	uint64_t h = head_pos(ch);
	/* Release pairs with the producer's acquire in refresh_head(): it overwrites what
	 * we read only after it sees this. */
	atomic_store_explicit(&ch->ctl->head, h, memory_order_release);
	ch->published = h;
}

/* Consumer: a producer announced that it sleeps or polls (state @s, loaded after our
 * latest head store and a fence). Wake a sleeper; signal a poller once our head
 * reached the position it waits for (p_want), or whatever the room when @force (we
 * are closing: its descriptor must report that). */
__attribute__((noinline)) static void wake_producer(shmkit_chan *ch, uint32_t s, int force)
{
	struct chan_ctl *c = ch->ctl;
	if (s == ST_POLLING) {
		/* Relaxed: stored before POLLING, which we loaded seq_cst. A peer's garbage
		 * only decides when a signal goes. */
		uint64_t want = atomic_load_explicit(&c->p_want, memory_order_relaxed);
		if (!force && (int64_t)(ch->published - want) < 0)
			return;
	} else if (s != ST_SLEEPING) {
		return;
	}
	/* CAS, so that only one wake-up is sent per sleep or arming. */
	if (!atomic_compare_exchange_strong_explicit(&c->p_state, &s, ST_AWAKE,
						     memory_order_seq_cst, memory_order_relaxed))
		return;
	if (s == ST_SLEEPING) {
		atomic_store_explicit(&c->p_rung, shmkit__now_ns(), memory_order_relaxed);
		shmkit__futex_wake(&c->p_state, 1);
	} else
		/* Acquire pairs with the producer's release store of its token in chan_fd(). */
		shmkit__poller_signal(&ch->sock,
				      atomic_load_explicit(&c->p_token, memory_order_acquire));
	atomic_store_explicit(&c->c_wakes, ++ch->n_cwakes, memory_order_relaxed);
}

/* Consumer: publish, and wake a producer sleeping or polling for room. */
static void publish_to(shmkit_chan *ch, int force)
{
	struct chan_ctl *c = ch->ctl;
	/* A guarded call of its own: SHMKIT__GUARDED_CODE (release) may call it. */
	shmkit__guard_enter();
	publish_head(ch);
	/* The handshake with wait_space() and producer_arm(), which store p_state =
	 * SLEEPING or POLLING then reload head, both seq_cst: with this fence between our
	 * head store (here or in an earlier publish_head()) and our load of p_state, they
	 * see the head, or we see their state. */
	atomic_thread_fence(memory_order_seq_cst);
	uint32_t s = atomic_load_explicit(&c->p_state, memory_order_seq_cst);
	if (__builtin_expect(s != ST_AWAKE, 0))
		wake_producer(ch, s, force);
	/* A truncation met here shows in the replacement's header: the caller sees it. */
	(void)shmkit__guard_leave();
}

static inline void publish(shmkit_chan *ch)
{
	publish_to(ch, 0);
}

/* ---- consumer side ---- */

/* The record at the consumer's position: 1 and *len for a message (pads before it
 * are skipped), 0 if nothing is committed there, -EPROTO if the header is corrupt. */
static inline __attribute__((always_inline)) int next_msg(shmkit_chan *ch, uint32_t *len)
{
	/* At most a lap-end pad and an alignment pad precede a message. */
	for (int i = 0; i < 3; i++) {
		uint64_t pos = ch->pos;
		/* Acquire pairs with the producer's release store of this header: the payload
		 * (and the zeroed slot after it) written before are visible. */
		uint64_t h = atomic_load_explicit(slot(ch, pos), memory_order_acquire);
		if ((uint32_t)(h >> 32) != tag_of(pos))
			return 0;
		uint32_t n = (uint32_t)h;
		uint64_t off = pos & ch->mask;
		if (n & PAD_BIT) {
			uint64_t p = pad_size(ch, off, n);
			if (p == 0)
				return poison(ch);
			ch->pos += p;
			continue;
		}
		if (n == 0 || n > ch->max_msg || off + HDR + n > ch->cap)
			return poison(ch);
		*len = n;
		return 1;
	}
	return poison(ch); /* three pads in a row */
}

/* The consumer found nothing at its position: end-of-stream, dead producer, a
 * corrupt ring, a message after all, or WAIT. @live: also check the producer lives. */
static int idle_check(shmkit_chan *ch, int live, uint32_t *len)
{
	struct chan_ctl *c = ch->ctl;
	if (deleted(ch))
		return -EIDRM;
	/* Acquire pairs with the release store in the producer's close: its last tail and
	 * every header it committed are visible. */
	uint32_t closed = atomic_load_explicit(&c->p_closed, memory_order_acquire);
	/* Acquire pairs with the release store of tail after each header: a tail past us
	 * means the header at our position is committed and visible. */
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);
	int r = next_msg(ch, len);
	if (r != 0)
		return r;
	/* After next_msg(), which may have skipped a pad: the position it stopped at. */
	uint64_t ahead = tail - ch->pos;
	if (ahead != 0 && ahead <= ch->cap)
		return poison(ch); /* the producer says committed, the header disagrees */
	/* A tail behind us by up to a lap is legitimate: a producer that died between a
	 * header and the tail store after it. Anything else is garbage. */
	if (ahead > ch->cap && ch->pos - tail > ch->cap)
		return poison(ch);
	/* An end-of-stream that an earlier consumer received is not ours: wait for the
	 * next producer. Acquire pairs with the release store in consumer_idle(). */
	if (closed && (closed == ch->eos_mine ||
		       closed != atomic_load_explicit(&c->eos_taken, memory_order_acquire))) {
		ch->eos_seen = closed;
		return 0;
	}
	/* Acquire pairs with the claiming CAS of a (new) producer. */
	uint64_t owner = atomic_load_explicit(&c->p_owner, memory_order_acquire);
	if (owner != 0 && owner == ch->dead_owner)
		return -EPIPE; /* known dead, and not replaced yet */
	if (live && owner != 0) {
		ch->live_checked = shmkit__now_ns();
		if (shmkit__live_check(owner) == 0) {
			ch->dead_owner = owner;
			/* Dead: nothing it committed can still appear; recheck once. */
			r = next_msg(ch, len);
			return r != 0 ? r : -EPIPE;
		}
	}
	return WAIT;
}

/* ---- poll mode (the poller is src/poll.c) ---- */

/* Watch the peer's role through the poller: 1 if its holder is known dead. That
 * holder is remembered in dead_owner, which idle_check() and consumer_gone() answer
 * without another check (the wake-up queued for it may be drained before anyone
 * looks). */
static int fd_watch(shmkit_chan *ch)
{
	const struct chan_ctl *c = ch->ctl;
	int prod = ch->role == SHMKIT_CHAN_PRODUCER;
	if (!shmkit__poller_watch(&ch->poll, prod ? &c->c_owner : &c->p_owner,
				  prod ? &c->c_who : &c->p_who, ch->pidns))
		return 0;
	ch->dead_owner = ch->poll.watched;
	return 1;
}

/* Drain what made the descriptor readable: 1 if the peer must be checked (its pidfd
 * or the timer fired, or it is known dead). */
static int fd_drain(shmkit_chan *ch)
{
	int live = fd_watch(ch);
	return shmkit__poller_drain(&ch->poll) | live;
}

/* Consumer: announce POLLING, so that the producer's next commit signals the socket.
 * Returns 1 if a message turned up meanwhile, or an error. */
static int fd_arm(shmkit_chan *ch, uint32_t *len)
{
	struct chan_ctl *c = ch->ctl;
	int r;
	/* Our own word (the producer only moves it from SLEEPING to DROWSY and from
	 * POLLING to AWAKE): relaxed. */
	uint32_t s = atomic_load_explicit(&c->c_state, memory_order_relaxed);
	if (s != ST_POLLING && s != ST_DROWSY) {
		/* Drowsy first, for SHMKIT__GRACE_NS: see "Waiting" at the top of the file. A
		 * hint only (the fenced handshake follows), so relaxed. Not needed when already
		 * DROWSY: the producer stored that when it woke us, or we did, in sleep mode,
		 * after a full grace. */
		atomic_store_explicit(&c->c_state, ST_DROWSY, memory_order_relaxed);
		int64_t end = shmkit__now_ns() + SHMKIT__GRACE_NS;
		for (unsigned i = 1;; i++) {
			r = next_msg(ch, len);
			if (r != 0)
				goto found;
			shmkit__cpu_relax();
			if ((i & SPIN_CLOCK_MASK) == 0 && shmkit__now_ns() >= end)
				break;
		}
	}
	/* Handshake, sleeper side: announce, then recheck; pairs with wake_consumer().
	 * The fence, because the recheck is an acquire load, which C11 lets pass a seq_cst
	 * store (x86 does not, but AArch64's ldapr may). */
	atomic_store_explicit(&c->c_state, ST_POLLING, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	r = next_msg(ch, len);
	if (r == 0)
		return 0;
found:
	/* Relaxed: a producer that still reads POLLING only sends a spare signal. */
	atomic_store_explicit(&c->c_state, ST_AWAKE, memory_order_relaxed);
	return r;
}

/* ---- consumer waiting ---- */

/* How long to spin before sleeping, for a wait whose other side moves about @bytes
 * before it can end it (the consumer: the size of the last message; the producer: the
 * room it needs). 0 in sleep mode (set_spin(0)). See SPIN_NS_PER_BYTE. */
static int64_t spin_budget(const shmkit_chan *ch, uint64_t bytes)
{
	if (ch->spin_ns == 0)
		return 0;
	int64_t base = ch->spin_ns < 0 ? shmkit__spin_default_ns() : ch->spin_ns;
	int64_t scaled = bytes >= SPIN_SIZED_MAX_NS / SPIN_NS_PER_BYTE
				 ? SPIN_SIZED_MAX_NS
				 : (int64_t)bytes * SPIN_NS_PER_BYTE;
	return scaled > base ? scaled : base;
}

/* The consumer found nothing at its position. Returns 1 (a message: *len), 0 (end of
 * stream), or an error. */
static int wait_data(shmkit_chan *ch, int64_t deadline, uint32_t *len)
{
	struct chan_ctl *c = ch->ctl;
	int r;
	if (deadline == 0) {
		/* Before answering, make our progress visible: a producer waiting for room
		 * must not wait on us (the handshake inside publish()). */
		publish(ch);
		int live, polled = ch->poll.epfd >= 0;
		if (polled)
			live = fd_drain(ch);
		else
			live = shmkit__now_ns() - ch->live_checked >= SHMKIT__LIVE_CHECK_NS;
		r = idle_check(ch, live, len);
		if (r == WAIT && polled) {
			r = fd_arm(ch, len);
			if (r == 0)
				r = WAIT;
		}
		/* Drained, and yet a message is here, which may not be the last: the
		 * descriptor stays readable (level-triggered) until a receive finds nothing.
		 * Lasting conditions: consumer_next(). */
		if (r == 1 && polled)
			shmkit__poller_keep_ready(&ch->poll);
		if (r == WAIT && head_pos(ch) != ch->published)
			publish(ch); /* skipped a pad meanwhile */
		return r == WAIT ? -EAGAIN : r;
	}

	/* DROWSY at entry was stored by the producer when it woke us, or left by us in
	 * sleep mode after a full grace: either way the producer already fences its wake
	 * checks, and we may sleep without a grace (see "Waiting" at the top). */
	int drowsy = atomic_load_explicit(&c->c_state, memory_order_relaxed) == ST_DROWSY;
	int safe = drowsy;
	int64_t spin = spin_budget(ch, ch->last_len);
	if (!drowsy && spin < SHMKIT__GRACE_NS)
		spin = SHMKIT__GRACE_NS;

	/* Spin: the budget, the last SHMKIT__GRACE_NS of it drowsy. The first
	 * SPIN_CLOCK_MASK rounds read no clock and make no fence: at full speed the
	 * consumer waits like this for nearly every message, and a clock read or a fence
	 * would cost as much as the message. The fenced publish() is due at the first
	 * clock read, and again after skipping a pad. */
	int64_t now = 0, spin_end = 0, drowsy_at = 0;
	int fence_due = 1;
	if (spin > 0) {
		/* Back off before the first look (see BACKOFF_MIN_NS): two messages ready
		 * then mean a producer streaming ahead of us, and the next backoff doubles
		 * to let it write more lines undisturbed; otherwise it halves. */
		unsigned bo = ch->backoff;
		for (unsigned k = 0; k < bo; k++)
			shmkit__cpu_relax();
		r = next_msg(ch, len);
		unsigned next = bo / 2 > ch->backoff_min ? bo / 2 : ch->backoff_min;
		if (r == 1) {
			/* A second message ready behind it: streaming. Only one: it may have
			 * waited for us (a reply in a request-reply exchange), so shrink. A
			 * relaxed peek at a header, only a hint. */
			uint64_t p2 = ch->pos + rec_size(*len);
			if ((uint32_t)(atomic_load_explicit(slot(ch, p2), memory_order_relaxed) >> 32) ==
			    tag_of(p2))
				next = bo * 2 < ch->backoff_max ? bo * 2 : ch->backoff_max;
		}
		ch->backoff = next;
		if (r != 0)
			goto out;
	}
	for (unsigned i = 1; spin > 0; i++) {
		r = next_msg(ch, len);
		if (r != 0)
			goto out;
		/* Skipped a pad: the producer may be waiting for exactly that room. */
		if (__builtin_expect(head_pos(ch) != ch->published, 0)) {
			publish_head(ch);
			fence_due = 1;
		}
		/* The payload of a message starting here likely spills into the next line:
		 * fetch it while spinning, so that it travels with the header's line. */
		__builtin_prefetch(ch->ring + ((ch->pos + SHMKIT_CACHELINE) & ch->mask));
		shmkit__cpu_relax();
		if ((i & SPIN_CLOCK_MASK) != 0)
			continue;
		now = shmkit__now_ns();
		if (fence_due) {
			publish(ch);
			fence_due = 0;
		}
		if (spin_end == 0) {
			spin_end = now + spin;
			drowsy_at = spin_end - SHMKIT__GRACE_NS;
		}
		if (deadline > 0 && now >= deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
		if ((i & SPIN_PEER_MASK) == 0) {
			r = idle_check(ch, 0, len);
			if (r != WAIT)
				goto out;
		}
		if (!drowsy && now >= drowsy_at) {
			/* A hint that turns the producer's wake checks fenced; relaxed. */
			atomic_store_explicit(&c->c_state, ST_DROWSY, memory_order_relaxed);
			drowsy = 1;
		}
		if (now >= spin_end)
			break;
	}

	/* Sleep, in slices; each expired slice checks the producer. */
	drowsy = safe = 1;
	publish(ch);
	int live = 0;
	for (int64_t slice = SHMKIT__SLICE_FIRST_NS;; slice = SHMKIT__SLICE_NS) {
		/* Handshake, sleeper side: announce, then recheck the header; pairs with the
		 * fence in wake_consumer(). */
		atomic_store_explicit(&c->c_state, ST_SLEEPING, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst); /* the recheck is acquire: see fd_arm() */
		r = idle_check(ch, live, len);
		if (r != WAIT)
			goto out;
		if (head_pos(ch) != ch->published)
			publish(ch); /* skipped a pad meanwhile */
		now = shmkit__now_ns();
		if (deadline > 0 && now >= deadline) {
			r = -ETIMEDOUT;
			goto out;
		}
		atomic_store_explicit(&c->c_sleeps, ++ch->n_csleeps, memory_order_relaxed);
		int fr = shmkit__sleep_until(&c->c_state, ST_SLEEPING,
					     shmkit__slice_end(now, slice, deadline));
		if (fr == 0)
			shmkit__wake_sample(atomic_load_explicit(&c->c_rung, memory_order_relaxed));
		/* An expired slice checks the producer, at most every SHMKIT__LIVE_CHECK_NS
		 * (short timeouts in a loop must not pay for a liveness check each time). */
		live = fr == -ETIMEDOUT &&
		       shmkit__now_ns() - ch->live_checked >= SHMKIT__LIVE_CHECK_NS;
	}
out:
	/* Only if we announced something: the producer loads this line after every
	 * commit, and a store on every return from a short spin would cost it a miss each
	 * time. Sleep mode stays drowsy once that is safe, so that the next wait sleeps at
	 * once; otherwise back to AWAKE, and the producer's checks are fence-free again.
	 * Relaxed: a producer that still reads SLEEPING only sends a spare wake-up. */
	if (drowsy) {
		atomic_store_explicit(&c->c_state, ch->spin_ns == 0 && safe ? ST_DROWSY : ST_AWAKE,
				      memory_order_relaxed);
		/* We replaced POLLING, if it was there, by states the producer answers with
		 * futex wakes, never signals: keep the descriptor readable, and the next
		 * receive that finds nothing arms it again. */
		shmkit__poller_keep_ready(&ch->poll);
	}
	return r;
}

/* consumer_next() ends without a message (@r <= 0). */
__attribute__((noinline)) static void consumer_idle(shmkit_chan *ch, int r)
{
	/* Lasting conditions keep a poll-mode descriptor readable, as a pipe stays
	 * readable at end-of-file. */
	if (r == 0 || r == -EPIPE || r == -EIDRM || r == -EPROTO)
		shmkit__poller_keep_ready(&ch->poll);
	/* Delivered: later consumers wait for the next producer. Release pairs with the
	 * acquire in idle_check(). */
	if (r == 0 && ch->eos_mine != ch->eos_seen) {
		ch->eos_mine = ch->eos_seen;
		atomic_store_explicit(&ch->ctl->eos_taken, ch->eos_seen, memory_order_release);
	}
	/* A producer polling for room learns of a deletion from us (fenced). */
	if (r == -EIDRM)
		publish_to(ch, 1);
}

/* The next message for recv/peek: 1 (and *len), 0 at end-of-stream, or an error. */
static int consumer_next(shmkit_chan *ch, int64_t timeout_ns, uint32_t *len)
{
	int r = ch->poisoned ? -EPROTO : deleted(ch) ? -EIDRM : next_msg(ch, len);
	if (r == 0)
		r = wait_data(ch, shmkit__deadline(timeout_ns), len);
	if (__builtin_expect(r <= 0, 0))
		consumer_idle(ch, r);
	return r;
}

static inline void consume(shmkit_chan *ch, uint32_t len)
{
	struct chan_ctl *c = ch->ctl;
	ch->pos += rec_size(len);
	ch->peek_len = 0;
	ch->last_len = len;
	/* Our counters, on our own line, which only we write: relaxed load and store. */
	atomic_store_explicit(&c->msgs_recv,
			      atomic_load_explicit(&c->msgs_recv, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&c->bytes_recv,
			      atomic_load_explicit(&c->bytes_recv, memory_order_relaxed) + len,
			      memory_order_relaxed);
	if (ch->pos - ch->published >= ch->pub_batch) {
		publish(ch);
	} else if ((uint32_t)(atomic_load_explicit(slot(ch, ch->pos), memory_order_relaxed) >> 32) !=
		   tag_of(ch->pos)) {
		/* The ring looks empty: publish now (no fence; the handshake follows when we
		 * wait), so a producer never finds the ring full of messages we already
		 * took. Relaxed load: only a hint, rechecked with acquire before any use. */
		publish_head(ch);
	}
}

static int check_consumer(const shmkit_chan *ch)
{
	return ch && ch->role == SHMKIT_CHAN_CONSUMER;
}

static int check_producer(const shmkit_chan *ch)
{
	return ch && ch->role == SHMKIT_CHAN_PRODUCER;
}

static inline ssize_t chan_recv(shmkit_chan *ch, void *buf, size_t cap, int64_t timeout_ns)
{
	uint32_t len;
	if (!check_consumer(ch) || !buf)
		return -EINVAL;
	if (__builtin_expect(ch->nahead != 0, 0))
		return ch->poisoned ? -EPROTO : -EINVAL; /* see chan_peek_next() */
	int r = consumer_next(ch, timeout_ns, &len);
	if (r <= 0)
		return r;
	if (len > cap)
		return -EMSGSIZE;
	memcpy(buf, ch->ring + (ch->pos & ch->mask) + HDR, len);
	consume(ch, len);
	return len;
}

static inline ssize_t chan_peek(shmkit_chan *ch, const void **buf, size_t *len, int64_t timeout_ns)
{
	uint32_t n;
	if (!check_consumer(ch) || !buf || !len)
		return -EINVAL;
	*buf = NULL;
	*len = 0;
	if (ch->nahead != 0)
		return ch->poisoned ? -EPROTO : -EINVAL;
	int r = consumer_next(ch, timeout_ns, &n);
	if (r <= 0)
		return r;
	*buf = ch->ring + (ch->pos & ch->mask) + HDR;
	*len = n;
	ch->peek_len = n;
	return n;
}

static inline int chan_release(shmkit_chan *ch)
{
	if (!check_consumer(ch) || ch->peek_len == 0)
		return -EINVAL;
	consume(ch, (uint32_t)ch->peek_len);
	return 0;
}

/* Peeking ahead (the JetStream bridge's sender: it releases a message only once the
 * server stored it, and keeps several in flight). The read position moves past each
 * message peeked; the head stays at the first unreleased one (head_pos()). */
static ssize_t chan_peek_next(shmkit_chan *ch, const void **buf, size_t *len, uint64_t *pos,
			      int64_t timeout_ns)
{
	uint32_t n;
	if (!check_consumer(ch) || !buf || !len || !pos)
		return -EINVAL;
	*buf = NULL;
	*len = 0;
	if (ch->peek_len != 0)
		return ch->poisoned ? -EPROTO : -EINVAL;
	int r = consumer_next(ch, timeout_ns, &n);
	if (r <= 0)
		return r;
	*buf = ch->ring + (ch->pos & ch->mask) + HDR;
	*len = n;
	*pos = ch->pos;
	if (ch->nahead++ == 0)
		ch->rel = ch->pos;
	ch->pos += rec_size(n);
	return n;
}

/* Release the messages peeked ahead up to and including the one at @to. Their
 * headers are read again from the ring, which is the producer's to corrupt: each is
 * checked as next_msg() checks it, and the walk ends within what we peeked. */
static int chan_release_to(shmkit_chan *ch, uint64_t to)
{
	if (!check_consumer(ch))
		return -EINVAL;
	if (ch->poisoned)
		return -EPROTO;
	if (ch->nahead == 0 || to - ch->rel >= ch->pos - ch->rel)
		return -EINVAL;
	uint64_t p = ch->rel, msgs = 0, bytes = 0;
	uint32_t last = 0;
	for (;;) {
		/* Relaxed: next_msg() loaded each of these headers with acquire before. */
		uint64_t h = atomic_load_explicit(slot(ch, p), memory_order_relaxed);
		uint32_t n = (uint32_t)h;
		uint64_t off = p & ch->mask, size;
		if ((uint32_t)(h >> 32) != tag_of(p))
			return poison(ch);
		if (n & PAD_BIT) {
			if ((size = pad_size(ch, off, n)) == 0)
				return poison(ch);
		} else {
			if (n == 0 || n > ch->max_msg || off + HDR + n > ch->cap)
				return poison(ch);
			size = rec_size(n);
			msgs++;
			bytes += n;
			last = n;
		}
		if (p == to && !(n & PAD_BIT)) {
			p += size;
			break;
		}
		p += size;
		if (p - ch->rel > to - ch->rel)
			return -EINVAL; /* @to is not where a message we peeked starts */
	}
	if (msgs > ch->nahead)
		return poison(ch); /* the headers changed since we peeked them */
	ch->nahead -= msgs;
	ch->rel = p;
	ch->last_len = last;
	struct chan_ctl *c = ch->ctl;
	atomic_store_explicit(&c->msgs_recv,
			      atomic_load_explicit(&c->msgs_recv, memory_order_relaxed) + msgs,
			      memory_order_relaxed);
	atomic_store_explicit(&c->bytes_recv,
			      atomic_load_explicit(&c->bytes_recv, memory_order_relaxed) + bytes,
			      memory_order_relaxed);
	/* Released in batches: publish each one, fenced, so that a producer waiting for
	 * room learns of it (the caller may not come back to wait for a while). */
	publish(ch);
	return 0;
}

static int chan_position(const shmkit_chan *ch, uint64_t *pos)
{
	if (!ch || !pos)
		return -EINVAL;
	if (ch->role == SHMKIT_CHAN_CONSUMER)
		*pos = head_pos(ch);
	else if (ch->role == SHMKIT_CHAN_PRODUCER)
		*pos = ch->resv_len != 0 ? ch->resv_pos : ch->tail;
	else
		return -EINVAL;
	return 0;
}

/* ---- producer side ---- */

/* The consumer closed or died: -EPIPE. @live: also check that it lives. */
static int consumer_gone(shmkit_chan *ch, int live)
{
	struct chan_ctl *c = ch->ctl;
	if (deleted(ch))
		return -EIDRM;
	/* Acquire pairs with the consumer's release store in close. Checked before the
	 * owner: the closing consumer wakes us before it leaves its role. */
	uint32_t closed = atomic_load_explicit(&c->c_closed, memory_order_acquire);
	if (closed && closed != ch->stale_close)
		return -EPIPE;
	uint64_t owner = atomic_load_explicit(&c->c_owner, memory_order_acquire);
	if (owner != 0 && owner == ch->stale_owner)
		return 0; /* died before we came: wait for the next consumer */
	if (owner != 0 && owner == ch->dead_owner)
		return -EPIPE; /* known dead, and not replaced yet */
	if (live && owner != 0) {
		ch->live_checked = shmkit__now_ns();
		if (shmkit__live_check(owner) == 0) {
			ch->dead_owner = owner;
			return -EPIPE;
		}
	}
	return 0;
}

/* Re-read the consumer's head: 1 if @need bytes are now free, 0 if not, -EPROTO. */
static int refresh_head(shmkit_chan *ch, uint64_t need)
{
	/* seq_cst (a plain load on x86): acquire pairs with publish()'s store, so the
	 * consumer is done with everything below it; seq_cst is the producer's half of
	 * the handshake in wait_space(). */
	uint64_t h = atomic_load_explicit(&ch->ctl->head, memory_order_seq_cst);
	if ((h & 7) || h - ch->head_cache > ch->tail - ch->head_cache)
		return poison(ch);
	ch->head_cache = h;
	return (ch->tail - h) + need <= ch->cap;
}

/* Producer in poll mode, after a send refused for want of @need bytes: arm the
 * descriptor, so that the consumer signals it once max(@need, capacity / 2) bytes are
 * free (see "Poll mode" at the top of the file), or keep it readable when that room,
 * or the consumer's end, came meanwhile. @live: check that the consumer lives. */
static void producer_arm(shmkit_chan *ch, uint64_t need, int live)
{
	struct chan_ctl *c = ch->ctl;
	uint64_t want = need > ch->cap / 2 ? need : ch->cap / 2;
	live |= fd_drain(ch);
	/* Relaxed: published by the seq_cst store of POLLING below. The head at which
	 * want bytes are free. */
	atomic_store_explicit(&c->p_want, ch->tail + want - ch->cap, memory_order_relaxed);
	/* Handshake, poller side: announce, then reload head (seq_cst, in refresh_head());
	 * pairs with the fence in publish_to(). The fence: see fd_arm(). */
	atomic_store_explicit(&c->p_state, ST_POLLING, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	int r = refresh_head(ch, want);
	if (r == 0)
		r = consumer_gone(ch, live);
	if (r == 0)
		return;
	/* Relaxed: a consumer that still reads POLLING only sends a spare signal. */
	atomic_store_explicit(&c->p_state, ST_AWAKE, memory_order_relaxed);
	shmkit__poller_keep_ready(&ch->poll);
}

/* Wait until @need bytes are free at the tail. 0, or an error. */
static int wait_space(shmkit_chan *ch, uint64_t need, int64_t deadline)
{
	struct chan_ctl *c = ch->ctl;
	int r = refresh_head(ch, need);
	if (r != 0)
		return r < 0 ? r : 0;
	/* The consumer may be asleep on records we committed without a fence; it must
	 * not be, or it would never free the room we wait for. */
	wake_consumer(ch);
	r = consumer_gone(ch, deadline == 0 &&
				      shmkit__now_ns() - ch->live_checked >= SHMKIT__LIVE_CHECK_NS);
	if (r != 0)
		return r;
	if (deadline == 0) {
		if (ch->poll.epfd >= 0)
			producer_arm(ch, need, 0);
		return -EAGAIN;
	}

	int64_t now = shmkit__now_ns(), spin_end = now + spin_budget(ch, need);
	for (unsigned i = 1;; i++) {
		r = refresh_head(ch, need);
		if (r != 0)
			return r < 0 ? r : 0;
		shmkit__cpu_relax();
		if ((i & SPIN_CLOCK_MASK) != 0)
			continue;
		now = shmkit__now_ns();
		if (deadline > 0 && now >= deadline)
			return -ETIMEDOUT;
		if ((i & SPIN_PEER_MASK) == 0 && (r = consumer_gone(ch, 0)) != 0)
			return r;
		if (now >= spin_end)
			break;
	}

	int live = 0;
	for (int64_t slice = SHMKIT__SLICE_FIRST_NS;; slice = SHMKIT__SLICE_NS) {
		/* Handshake, sleeper side: announce, then reload head (seq_cst, in
		 * refresh_head); pairs with publish(). */
		atomic_store_explicit(&c->p_state, ST_SLEEPING, memory_order_seq_cst);
		r = refresh_head(ch, need);
		if (r == 0)
			r = consumer_gone(ch, live);
		if (r == 0) {
			now = shmkit__now_ns();
			if (deadline > 0 && now >= deadline)
				r = -ETIMEDOUT;
		}
		if (r != 0)
			break;
		atomic_store_explicit(&c->p_sleeps, ++ch->n_psleeps, memory_order_relaxed);
		int fr = shmkit__sleep_until(&c->p_state, ST_SLEEPING,
					     shmkit__slice_end(now, slice, deadline));
		if (fr == 0)
			shmkit__wake_sample(atomic_load_explicit(&c->p_rung, memory_order_relaxed));
		live = fr == -ETIMEDOUT &&
		       shmkit__now_ns() - ch->live_checked >= SHMKIT__LIVE_CHECK_NS;
	}
	/* Relaxed: a consumer that still reads SLEEPING only sends a spare wake-up. */
	atomic_store_explicit(&c->p_state, ST_AWAKE, memory_order_relaxed);
	/* We replaced POLLING, if it was there: keep the descriptor readable, and the next
	 * send refused for room arms it again. */
	shmkit__poller_keep_ready(&ch->poll);
	return r < 0 ? r : 0;
}

/* Publish a record's header. The slot after it is zeroed first when it is free (see
 * the top of the file); when it is not, it holds the header of the record one lap
 * earlier, at the consumer's head, whose tag cannot match. */
static inline void put_record(shmkit_chan *ch, uint64_t size, uint32_t lenword)
{
	uint64_t pos = ch->tail, next = pos + size;
	if ((next - ch->head_cache) + HDR <= ch->cap)
		/* Relaxed: ordered before the consumer can look at it by the release below. */
		atomic_store_explicit(slot(ch, next), 0, memory_order_relaxed);
	/* Release pairs with the consumer's acquire in next_msg(): the payload and the
	 * zeroed slot are visible before the header that commits them. */
	atomic_store_explicit(slot(ch, pos), hdr_word(pos, lenword), memory_order_release);
	ch->tail = next;
	/* Release, after the header: a tail past a position means "committed there"
	 * (idle_check relies on it). Our own line; the consumer reads it only when idle. */
	atomic_store_explicit(&ch->ctl->tail, next, memory_order_release);
}

/* The alignment pad a message of @len bytes needs at ring offset @off: 0, or the bytes
 * that put its payload at the start of a cache line. A payload of several lines that
 * starts 8 bytes into one touches a line more than it needs, and every vector store
 * and load of both copies then straddles two lines: at 4 KiB the channel moved 0.77
 * times the textbook ring's messages per second that way, 0.94 with the payload on a
 * line (AMD EPYC family 25 model 1, interleaved runs). Smaller payloads stay packed:
 * their lines are few, and a pad costs up to a line of ring and a header store. Only
 * the producer decides this; the consumer just skips pads (pad_size()). */
static inline uint64_t align_skip(const shmkit_chan *ch, size_t len, uint64_t off)
{
	if (len < ch->align_min)
		return 0;
	return (ch->line_mask + 1 - ((off + HDR) & ch->line_mask)) & ch->line_mask;
}

/* Room for a message of @len bytes at the tail, padding the end of the lap when it
 * does not fit there and padding to a line when align_skip() says so: 0 and *p, or an
 * error. The common case is room_fast(). */
static int find_room(shmkit_chan *ch, size_t len, int64_t deadline, void **p)
{
	if (ch->poisoned)
		return -EPROTO;
	if (deleted(ch)) {
		/* A consumer polling for our messages learns of it from us (fenced). */
		wake_consumer(ch);
		return -EIDRM;
	}
	uint64_t size = rec_size(len), off = ch->tail & ch->mask, skip = align_skip(ch, len, off);
	int r;
	if (__builtin_expect(off + size > ch->cap, 0)) {
		/* Pad first, and publish it now: the consumer must get past it before the
		 * start of the lap is free, whatever the message's size. */
		uint64_t pad = ch->cap - off;
		if ((ch->tail - ch->head_cache) + pad > ch->cap &&
		    (r = wait_space(ch, pad, deadline)) < 0)
			return r;
		put_record(ch, pad, PAD_BIT | (uint32_t)pad);
		off = 0;
		skip = align_skip(ch, len, off);
	} else if (off + skip + size > ch->cap) {
		skip = 0; /* an alignment is not worth a lap-end pad */
	}
	/* A blocking send waits for the room of the pad too (a streaming producer waits
	 * for room before nearly every message, and would otherwise rarely align); a
	 * non-blocking one never fails for want of the pad's room alone (nor arms its
	 * descriptor for it): without the pad, it needs what it needed before alignment
	 * pads existed. */
	if (skip != 0 && (ch->tail - ch->head_cache) + skip + size > ch->cap) {
		if ((r = refresh_head(ch, skip + size)) < 0)
			return r;
		if (r == 0 && deadline == 0)
			skip = 0;
		else if (r == 0 && (r = wait_space(ch, skip + size, deadline)) < 0)
			return r;
	}
	if (skip != 0) {
		/* Published at once, like any record; it shares the line of the header whose
		 * payload it aligns. */
		put_record(ch, skip, PAD_BIT | (uint32_t)skip);
		off += skip;
	}
	if ((ch->tail - ch->head_cache) + size > ch->cap && (r = wait_space(ch, size, deadline)) < 0)
		return r;
	*p = ch->ring + off + HDR;
	return 0;
}

/* find_room(), and in poll mode a descriptor kept readable while a lasting condition
 * holds (-EPIPE, -EIDRM, -EPROTO; -EAGAIN armed it instead). */
__attribute__((noinline)) static int make_room(shmkit_chan *ch, size_t len, int64_t deadline,
					       void **p)
{
	int r = find_room(ch, len, deadline, p);
	if (r < 0 && r != -EAGAIN)
		shmkit__poller_keep_ready(&ch->poll);
	return r;
}

/* The common case of make_room(): room at the tail without a pad, and nothing wrong.
 * Returns where the payload goes, or NULL for the slow path. Inline, with no store:
 * streaming 64-byte messages, the producer is bound by its stores (each waits in the
 * store buffer for a cache line the consumer holds), so every store, even to our own
 * stack or handle, measurably costs throughput when the cores are far apart. */
static inline unsigned char *room_fast(const shmkit_chan *ch, size_t len)
{
	uint64_t size = rec_size(len), off = ch->tail & ch->mask;
	if (__builtin_expect(!ch->poisoned && !deleted(ch) && off + size <= ch->cap &&
				     (ch->tail - ch->head_cache) + size <= ch->cap &&
				     align_skip(ch, len, off) == 0,
			     1))
		return ch->ring + off + HDR;
	return NULL;
}

/* Copy a large payload into the ring: claim each chunk's lines with a memset first,
 * then copy into them. The ring's lines were last read by the consumer, so when the
 * two cores are far apart each store of a plain copy first waits for the other core
 * to give its line up, and a copy runs at about 7 GB/s; a large memset (rep stosb)
 * takes lines over without those waits, and the copy after it finds them in its own
 * cache: 19-21 GB/s for 1 MiB, 10.5 against 6.4 GB/s for 8 KiB (slower at 4 KiB,
 * 6.1 against 7.0, with the payload 8 bytes into a line). When the host places the
 * two vCPUs close together, though, the plain copy is the faster one (42 against 32
 * GB/s for 1 MiB). (Two threads or processes on the two vCPUs of the AMD EPYC VM this
 * was written on, alternating runs; the chunk stays well inside any L2.) Which way
 * wins depends on the CPU, the size and where the host puts the vCPUs, and other
 * CPUs have other ways to take a line without reading it (AArch64's memset zeroes
 * with DC ZVA): so copy_large() measures both, on every architecture, and uses the
 * faster, from COPY_MEASURED_MIN bytes, a size at which a sampled timing costs well
 * under 1 % of the copy. */
#define COPY_MEASURED_MIN ((size_t)4 << 10)
#define CLAIM_CHUNK ((size_t)128 << 10)
/* copy_large() tries the way it is not using once every so many large copies, and
 * times one copy in COPY_SAMPLE of the way in use. */
#define COPY_EXPLORE 128u
#define COPY_SAMPLE 4u

__attribute__((noinline)) static void claim_copy(unsigned char *d, const unsigned char *q,
						 size_t len)
{
	for (size_t i = 0; i < len; i += CLAIM_CHUNK) {
		size_t n = len - i < CLAIM_CHUNK ? len - i : CLAIM_CHUNK;
		memset(d + i, 0, n);
		/* Keep the memset: the compiler may not merge it into the copy. */
		__asm__ __volatile__("" : : "r"(d + i) : "memory");
		memcpy(d + i, q + i, n);
	}
}

/* Copy a payload of at least COPY_MEASURED_MIN bytes into the ring, the plain way or
 * by claim_copy(), whichever costs less per byte lately. One copy in COPY_SAMPLE is
 * timed (two counter reads); the way in use keeps a moving average of those, and once
 * every COPY_EXPLORE copies (and on the first) the other way is tried and timed;
 * whenever the other way's last cost is below this one's average by more than an
 * eighth, it takes over. A try costs at most one copy in COPY_EXPLORE at the slower
 * way's speed. */
static void copy_large(shmkit_chan *ch, unsigned char *d, const unsigned char *q, size_t len)
{
	unsigned cur = ch->copy_claim, m = cur;
	unsigned n = ++ch->copy_n;
	int timed = (n & (COPY_SAMPLE - 1)) == 0;
	if ((n & (COPY_EXPLORE - 1)) == 0 || ch->copy_cost[!cur] == 0) {
		m = !cur;
		timed = 1;
	}
	uint64_t t0 = timed ? shmkit__ticks() : 0;
	if (m)
		claim_copy(d, q, len);
	else
		memcpy(d, q, len);
	if (!timed)
		return;
	uint64_t c = (shmkit__ticks() - t0) * 1024 / len + 1; /* per KiB; never 0 */
	if (m == cur) {
		uint64_t avg = ch->copy_cost[m];
		ch->copy_cost[m] = avg ? avg - avg / 8 + c / 8 : c;
	} else {
		ch->copy_cost[m] = c;
	}
	/* Switch when the other way's last cost is clearly below this one's. */
	uint64_t other = ch->copy_cost[!cur];
	if (other != 0 && other + other / 8 < ch->copy_cost[cur])
		ch->copy_claim = (unsigned char)!cur;
}

/* Copy a payload into the ring. Small payloads go in 8-byte stores: the payload
 * starts 8 bytes into its record, so a vector memcpy of it always writes across two
 * cache lines, and a store that needs two lines at once, one of them the line the
 * consumer is polling, stalls the producer badly (measured: a third slower when the
 * two processes sit on distant cores). 8-byte stores at 8-aligned addresses never
 * straddle a line. */
static inline __attribute__((always_inline)) void copy_small(void *dst, const void *src,
								  size_t len)
{
	unsigned char *d = dst;
	const unsigned char *q = src;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, q + i, 8);
		memcpy(d + i, &w, 8);
	}
	/* The tail in fixed sizes: no library call, so the fast path needs no frame. */
	if (len - i >= 4) {
		uint32_t w;
		memcpy(&w, q + i, 4);
		memcpy(d + i, &w, 4);
		i += 4;
	}
	if (len - i >= 2) {
		uint16_t w;
		memcpy(&w, q + i, 2);
		memcpy(d + i, &w, 2);
		i += 2;
	}
	if (i < len)
		d[i] = q[i];
}

static inline void copy_in(shmkit_chan *ch, void *dst, const void *src, size_t len)
{
	if (len <= 64)
		copy_small(dst, src, len);
	else if (len >= COPY_MEASURED_MIN)
		copy_large(ch, dst, src, len);
	else
		memcpy(dst, src, len);
}

static inline void commit_msg(shmkit_chan *ch, uint32_t len)
{
	struct chan_ctl *c = ch->ctl;
	put_record(ch, rec_size(len), len);
	/* Our counters, on our own line, which only we write: relaxed load and store (not
	 * an atomic add, and no copy in the handle: one store each, nothing more). */
	atomic_store_explicit(&c->msgs_sent,
			      atomic_load_explicit(&c->msgs_sent, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&c->bytes_sent,
			      atomic_load_explicit(&c->bytes_sent, memory_order_relaxed) + len,
			      memory_order_relaxed);
}

/* Producer: the fenced wake check, as a tail call from the fast path; a guarded call
 * of its own (see shmkit_chan_send()). */
__attribute__((noinline)) static int wake_consumer_ret(shmkit_chan *ch)
{
	shmkit__guard_enter();
	wake_consumer(ch);
	return shmkit__guard_leave() ? -EFAULT : 0;
}

/* shmkit_chan_send() beyond its fast path: arguments, errors, large messages, pads,
 * waiting for room. */
__attribute__((noinline)) static int send_slow(shmkit_chan *ch, const void *buf, size_t len,
					       int64_t timeout_ns)
{
	if (!check_producer(ch) || !buf || len == 0)
		return -EINVAL;
	if (len > ch->max_msg)
		return -EMSGSIZE;
	ch->resv_len = 0; /* a send discards a pending reservation, even one that fails */
	unsigned char *d = room_fast(ch, len);
	if (d == NULL) {
		void *p;
		int r = make_room(ch, len, shmkit__deadline(timeout_ns), &p);
		if (r < 0)
			return r;
		d = p;
	}
	copy_in(ch, d, buf, len);
	commit_msg(ch, (uint32_t)len);
	wake_check(ch);
	return 0;
}

/* The end of a guarded call: -EFAULT if it met a truncation, or if the handle is
 * poisoned (a replaced mapping's header says DELETED, so the common case costs one
 * load of a line the call has just read, made before leaving: it may fault too). */
static inline int64_t guard_end(const shmkit_chan *ch, int64_t r)
{
	int gone = ch != NULL && deleted(ch);
	int faulted = shmkit__guard_leave();
	if (__builtin_expect(faulted || gone, 0) && (faulted || shmkit__seg_poisoned(ch->seg)))
		return -EFAULT;
	return r;
}

/* send_slow() as a guarded call of its own, for the fast path's tail call. */
__attribute__((noinline)) static int send_slow_guarded(shmkit_chan *ch, const void *buf,
						       size_t len, int64_t timeout_ns)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, send_slow(ch, buf, len, timeout_ns));
}

/* Guarded code met a DELETED header: -EFAULT if a truncation put it there, else r. */
__attribute__((noinline)) static int gone_result(const shmkit_chan *ch, int r)
{
	return shmkit__seg_poisoned(ch->seg) ? -EFAULT : r;
}

SHMKIT__GUARDED_CODE int shmkit_chan_send(shmkit_chan *ch, const void *buf, size_t len,
					  int64_t timeout_ns)
{
	/* The fast path: a small message, room for it, nothing pending. It makes no call,
	 * so the compiler needs no stack frame: a streaming producer is bound by its
	 * stores (see room_fast()), and saving registers on every call would add five.
	 * For the same reason the SIGBUS guard knows it by its code's address rather than
	 * by the marker's stores (SHMKIT__GUARDED_CODE); its slow paths are guarded calls
	 * of their own, still reached by tail calls. */
	if (__builtin_expect(ch != NULL && ch->role == SHMKIT_CHAN_PRODUCER && buf != NULL &&
				     len - 1 < 64 && ch->resv_len == 0,
			     1)) {
		SHMKIT__FAST_ENTER();
		unsigned char *d = room_fast(ch, len);
		if (__builtin_expect(d != NULL, 1)) {
			copy_small(d, buf, len);
			commit_msg(ch, (uint32_t)len);
			uint32_t s = atomic_load_explicit(&ch->ctl->c_state, memory_order_relaxed);
			/* A truncation met above (here or by a thread sharing the handle)
			 * left a replacement whose header says DELETED: one load. */
			int gone = deleted(ch);
			SHMKIT__FAST_LEAVE();
			if (__builtin_expect(gone, 0))
				return gone_result(ch, 0);
			/* wake_check(), with its rare call made a tail call. */
			if (__builtin_expect(s == ST_AWAKE, 1))
				return 0;
			return wake_consumer_ret(ch);
		}
		SHMKIT__FAST_LEAVE();
	}
	return send_slow_guarded(ch, buf, len, timeout_ns);
}

static int chan_sendv(shmkit_chan *ch, const struct iovec *msgs, int n, int64_t timeout_ns)
{
	if (!check_producer(ch) || !msgs || n <= 0)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (msgs[i].iov_len == 0 || !msgs[i].iov_base)
			return -EINVAL;
		if (msgs[i].iov_len > ch->max_msg)
			return -EMSGSIZE;
	}
	int64_t deadline = INT64_MIN; /* one for the whole call, set at the first wait */
	int sent = 0, r = 0;
	if (ch->resv_len)
		ch->resv_len = 0;
	for (; sent < n; sent++) {
		unsigned char *d = room_fast(ch, msgs[sent].iov_len);
		if (d == NULL) {
			void *p;
			if (deadline == INT64_MIN)
				deadline = shmkit__deadline(timeout_ns);
			/* make_room() wakes the consumer before it waits for room. */
			r = make_room(ch, msgs[sent].iov_len, deadline, &p);
			if (r < 0)
				break;
			d = p;
		}
		copy_in(ch, d, msgs[sent].iov_base, msgs[sent].iov_len);
		commit_msg(ch, (uint32_t)msgs[sent].iov_len);
	}
	if (sent == 0)
		return r;
	/* One fenced wake check for the whole batch. */
	wake_consumer(ch);
	return sent;
}

static inline int chan_reserve(shmkit_chan *ch, size_t len, int64_t timeout_ns, void **buf)
{
	void *p;
	if (buf)
		*buf = NULL;
	if (!check_producer(ch) || !buf || len == 0)
		return -EINVAL;
	if (len > ch->max_msg)
		return -EMSGSIZE;
	ch->resv_len = 0; /* discards a pending reservation */
	p = room_fast(ch, len);
	if (p == NULL) {
		int r = make_room(ch, len, shmkit__deadline(timeout_ns), &p);
		if (r < 0)
			return r;
	}
	ch->resv_pos = ch->tail;
	ch->resv_len = len;
	*buf = p;
	return 0;
}

static inline int chan_commit(shmkit_chan *ch, size_t len)
{
	if (!check_producer(ch) || ch->resv_len == 0 || len == 0 || len > ch->resv_len ||
	    ch->resv_pos != ch->tail)
		return -EINVAL;
	ch->resv_len = 0;
	commit_msg(ch, (uint32_t)len);
	wake_check(ch);
	return 0;
}

/* ---- open, close ---- */

/* A number sysfs reports for cpu0's data or unified cache of @level (cpu0: a process
 * may run on any): @attr "size" (with its K or M suffix) or "coherency_line_size"; 0 if
 * sysfs does not say (it may be absent in a container). */
static uint64_t sysfs_cache(int level, const char *attr)
{
	for (int i = 0; i < 16; i++) {
		char path[96], val[3][32];
		const char *what[3] = {"level", "type", attr};
		for (int k = 0; k < 3; k++) {
			snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/%s", i,
				 what[k]);
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd < 0 ? -1 : read(fd, val[k], sizeof val[k] - 1);
			if (fd >= 0)
				close(fd);
			if (n <= 0)
				return 0; /* no such index: the caches are all listed */
			val[k][n] = 0;
		}
		if (atoi(val[0]) != level || strncmp(val[1], "Instruction", 11) == 0)
			continue;
		char *end;
		unsigned long long v = strtoull(val[2], &end, 10);
		if (*end == 'K')
			v <<= 10;
		else if (*end == 'M')
			v <<= 20;
		return v;
	}
	return 0;
}

/* What the kernel reports, once per process (racing first calls compute the same
 * values): the L2 size (sysconf(), else sysfs; 0 if neither knows: glibc answers 0 on
 * some architectures) and the L1 data cache's line size (likewise; 64 if unknown, and
 * a power of two between 16 and LINE_MAX_ALIGN / 2 whatever is reported). */
static _Atomic uint64_t g_l2_known, g_line_known; /* the value + 1; 0 until probed */

static uint64_t l2_size(void)
{
	uint64_t v = atomic_load_explicit(&g_l2_known, memory_order_relaxed);
	if (v == 0) {
		long sc = sysconf(_SC_LEVEL2_CACHE_SIZE);
		v = (sc > 0 ? (uint64_t)sc : sysfs_cache(2, "size")) + 1;
		atomic_store_explicit(&g_l2_known, v, memory_order_relaxed);
	}
	return v - 1;
}

static uint64_t line_size(void)
{
	uint64_t v = atomic_load_explicit(&g_line_known, memory_order_relaxed);
	if (v == 0) {
		long sc = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
		uint64_t l = sc > 0 ? (uint64_t)sc : sysfs_cache(1, "coherency_line_size");
		if (l < 16 || l > LINE_MAX_ALIGN / 2 || (l & (l - 1)))
			l = 64;
		v = l + 1;
		atomic_store_explicit(&g_line_known, v, memory_order_relaxed);
	}
	return v - 1;
}

/* The largest power of two <= @v (>= 1), within [lo, hi] (powers of two). */
static uint64_t pow2_within(uint64_t v, uint64_t lo, uint64_t hi)
{
	uint64_t p = lo;
	while (p < hi && p * 2 <= v)
		p *= 2;
	return p;
}

/* A ring created with capacity 0: half the L2 cache, see CAP_DEFAULT_MIN. */
static uint64_t cap_default(void)
{
	uint64_t l2 = l2_size();
	return l2 ? pow2_within(l2 / 2, CAP_DEFAULT_MIN, CAP_DEFAULT_MAX) : CAP_DEFAULT_FALLBACK;
}

static int chan_init(void *data, size_t size, void *arg)
{
	struct chan_ctl *c = data;
	uint64_t cap = *(const uint64_t *)arg;
	(void)size;
	/* The segment is new and zero-filled: no owners, positions 0, every state AWAKE,
	 * and no slot of the ring carries a tag (tags always have TAG_BIT set). */
	c->magic = CHAN_MAGIC;
	c->version = CHAN_VERSION;
	c->hdr_size = HDR;
	c->capacity = cap;
	c->max_msg = cap / 2;
	c->ring_off = RING_OFF;
	/* Reserve the ring now. POSIX segments are already allocated (posix_fallocate);
	 * System V ones are not, and a short system must fail here, not later. Kernels
	 * without MADV_POPULATE_WRITE (EINVAL) keep the old behaviour. */
	if (madvise((unsigned char *)data + RING_OFF, cap, MADV_POPULATE_WRITE) < 0 &&
	    errno != EINVAL)
		return errno == ENOMEM || errno == EFAULT ? -ENOSPC : -errno;
	return 0;
}

static int open_seg(const char *name, uint64_t cap, unsigned mode, unsigned flags,
		    shmkit_seg **seg)
{
	if (cap)
		return shmkit__seg_open(name, SHMKIT_KIND_CHAN, RING_OFF + cap, mode, flags,
					chan_init, &cap, seg);
	if (!(flags & SHMKIT_SEG_CREATE))
		return shmkit__seg_open(name, SHMKIT_KIND_CHAN, 0, mode, flags, NULL, NULL, seg);
	/* Create-or-open with no capacity: open whatever exists, else create the
	 * default; retry when another process wins either race. */
	uint64_t def = cap_default();
	int r = -ENOENT;
	for (int i = 0; i < 16; i++) {
		if (!(flags & SHMKIT_SEG_EXCL)) {
			r = shmkit__seg_open(name, SHMKIT_KIND_CHAN, 0, mode,
					     flags & ~SHMKIT_SEG_CREATE, NULL, NULL, seg);
			if (r != -ENOENT)
				return r;
		}
		r = shmkit__seg_open(name, SHMKIT_KIND_CHAN, RING_OFF + def, mode,
				     flags | SHMKIT_SEG_EXCL, chan_init, &def, seg);
		if (r != -EEXIST || (flags & SHMKIT_SEG_EXCL))
			return r;
	}
	return r;
}

/* Everything the handle takes from the control block, checked against the segment. */
static int validate(shmkit_chan *ch)
{
	const struct chan_ctl *c = ch->ctl;
	size_t bytes = shmkit_seg_size(ch->seg);
	if (bytes < RING_OFF + CAP_MIN)
		return -EPROTO;
	uint64_t cap = c->capacity;
	if (c->magic != CHAN_MAGIC || c->version != CHAN_VERSION || c->hdr_size != HDR ||
	    c->ring_off != RING_OFF || cap < CAP_MIN || cap > CAP_MAX || (cap & (cap - 1)) ||
	    RING_OFF + cap != bytes || c->max_msg != cap / 2)
		return -EPROTO;
	ch->cap = cap;
	ch->mask = cap - 1;
	ch->max_msg = cap / 2;
	ch->ring = (unsigned char *)ch->ctl + RING_OFF;
	return 0;
}

/* A producer taking the role: find the true tail. The stored one lags the last
 * commit if the previous producer died between a header and the tail store; walk
 * the committed records from it (each checked) to the first uncommitted slot. */
static int producer_start(shmkit_chan *ch)
{
	struct chan_ctl *c = ch->ctl;
	/* Acquire pairs with the consumer's release of head and our predecessor's of tail. */
	uint64_t head = atomic_load_explicit(&c->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);
	if ((head & 7) || (tail & 7) || (tail - head > ch->cap && head - tail > ch->cap))
		return -EPROTO;
	uint64_t pos = tail - head <= ch->cap ? tail : head;
	for (;;) {
		uint64_t h = atomic_load_explicit(slot(ch, pos), memory_order_acquire);
		if ((uint32_t)(h >> 32) != tag_of(pos))
			break;
		uint32_t n = (uint32_t)h;
		uint64_t off = pos & ch->mask, size;
		if (n & PAD_BIT) {
			if ((size = pad_size(ch, off, n)) == 0)
				return -EPROTO;
		} else {
			if (n == 0 || n > ch->max_msg || off + HDR + n > ch->cap)
				return -EPROTO;
			size = rec_size(n);
		}
		if (pos + size - head > ch->cap)
			return -EPROTO;
		pos += size;
	}
	ch->tail = pos;
	ch->head_cache = head;
	atomic_store_explicit(&c->tail, pos, memory_order_release);
	/* Relaxed: a consumer that still sees the old producer's values meanwhile only
	 * reports end-of-stream, or sends a spare wake-up or signal. */
	atomic_store_explicit(&c->p_token, 0, memory_order_relaxed);
	atomic_store_explicit(&c->p_state, ST_AWAKE, memory_order_relaxed);
	ch->session = next_session(&c->p_session);
	atomic_store_explicit(&c->p_closed, 0, memory_order_release);
	/* A consumer that left before we came is no reason to fail: like a FIFO's writer,
	 * we wait for the next one when the ring fills. Acquire pairs with its close. */
	ch->stale_close = atomic_load_explicit(&c->c_closed, memory_order_acquire);
	uint64_t co = atomic_load_explicit(&c->c_owner, memory_order_acquire);
	if (co != 0 && shmkit__live_check(co) == 0)
		ch->stale_owner = co;
	/* Our counters from now on; relaxed, they order nothing. */
	ch->n_psleeps = atomic_load_explicit(&c->p_sleeps, memory_order_relaxed);
	ch->n_pwakes = atomic_load_explicit(&c->p_wakes, memory_order_relaxed);
	/* A consumer polling since before we came watches no producer yet (nor a timer):
	 * signal it, so that it drains and starts watching us; else our death before our
	 * first message would never make its descriptor readable. Costs a consumer one
	 * spare wake-up per producer that attaches. */
	wake_consumer(ch);
	return 0;
}

static int consumer_start(shmkit_chan *ch)
{
	struct chan_ctl *c = ch->ctl;
	/* Acquire pairs with our predecessor's release of head (in close, or publish()). */
	uint64_t head = atomic_load_explicit(&c->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);
	if ((head & 7) || (tail - head > ch->cap && head - tail > ch->cap))
		return -EPROTO;
	ch->pos = ch->published = head;
	ch->pub_batch = ch->cap / 8;
	/* Relaxed: nobody waits on these until we do. */
	atomic_store_explicit(&c->c_token, 0, memory_order_relaxed);
	atomic_store_explicit(&c->c_state, ST_AWAKE, memory_order_relaxed);
	ch->session = next_session(&c->c_session);
	atomic_store_explicit(&c->c_closed, 0, memory_order_release);
	/* Our counters from now on; relaxed, they order nothing. */
	ch->n_csleeps = atomic_load_explicit(&c->c_sleeps, memory_order_relaxed);
	ch->n_cwakes = atomic_load_explicit(&c->c_wakes, memory_order_relaxed);
	return 0;
}

static int chan_open(const char *name, unsigned role, size_t capacity, unsigned mode,
		     unsigned flags, shmkit_chan **out)
{
	shmkit_seg *seg;
	int r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name || role > SHMKIT_CHAN_CONSUMER ||
	    (flags & ~(SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_SEG_SYSV)) ||
	    (uint64_t)capacity > CAP_MAX)
		return -EINVAL;
	uint64_t cap = 0;
	if (capacity) {
		cap = CAP_MIN;
		while (cap < capacity)
			cap <<= 1;
	}
	r = open_seg(name, cap, mode, flags, &seg);
	if (r < 0)
		return r;
	shmkit_chan *ch = calloc(1, sizeof *ch);
	if (!ch) {
		shmkit_seg_close(seg);
		return -ENOMEM;
	}
	ch->seg = seg;
	ch->ctl = shmkit_seg_data(seg);
	ch->seg_state = &shmkit__seg_hdr(seg)->state;
	ch->role = role;
	ch->spin_ns = -1; /* shmkit__spin_default_ns(), until set */
	ch->line_mask = line_size() - 1;
	ch->align_min = ALIGN_MIN_LINES * (ch->line_mask + 1);
	if (role == SHMKIT_CHAN_CONSUMER) /* measured once per process */
		shmkit__pause_counts(BACKOFF_MIN_NS, BACKOFF_MAX_NS, &ch->backoff_min,
				     &ch->backoff_max);
	ch->backoff = ch->backoff_min;
	ch->sock = -1;
	shmkit__poller_init(&ch->poll);
	r = validate(ch);
	if (r < 0)
		goto fail;
	if (role == SHMKIT_CHAN_OBSERVER)
		goto done;
	_Atomic uint64_t *owner =
		role == SHMKIT_CHAN_PRODUCER ? &ch->ctl->p_owner : &ch->ctl->c_owner;
	r = shmkit__live_token(&ch->me);
	if (r < 0)
		goto fail;
	ch->pid = getpid();
	ch->pidns = shmkit__pidns_self();
	r = shmkit__role_claim(owner, ch->me);
	if (r < 0)
		goto fail;
	shmkit__who_set(role == SHMKIT_CHAN_PRODUCER ? &ch->ctl->p_who : &ch->ctl->c_who, ch->me,
			ch->pidns);
	r = role == SHMKIT_CHAN_PRODUCER ? producer_start(ch) : consumer_start(ch);
	if (r < 0) {
		shmkit__role_release(owner, ch->me);
		goto fail;
	}
	/* Map the ring's pages now rather than on the first messages (a hint: errors,
	 * e.g. before Linux 5.14, are harmless). */
	madvise(ch->ring, ch->cap,
		role == SHMKIT_CHAN_PRODUCER ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
done:
	*out = ch;
	return 0;
fail:
	shmkit_seg_close(seg);
	free(ch);
	return r;
}

static int chan_close(shmkit_chan *ch)
{
	if (!ch)
		return 0;
	struct chan_ctl *c = ch->ctl;
	/* A handle inherited through fork(): the role is the parent's; only unmap. The
	 * pid alone could match (pid 1 of a namespace forking pid 1 of a new one); the
	 * token cannot (a child gets its own). */
	unsigned role = ch->role;
	uint64_t tok = 0;
	if (role != SHMKIT_CHAN_OBSERVER &&
	    (ch->pid != getpid() || shmkit__live_token(&tok) < 0 || tok != ch->me))
		role = SHMKIT_CHAN_OBSERVER;
	if (role == SHMKIT_CHAN_PRODUCER) {
		/* Release pairs with the consumer's acquire in idle_check(): with this flag it
		 * sees our final tail, so end-of-stream comes after every committed message. */
		atomic_store_explicit(&c->p_closed, ch->session, memory_order_release);
		wake_consumer(ch); /* fenced: a sleeping or polling consumer learns of it */
		/* Relaxed: a consumer that reads the old token only signals a socket that is
		 * about to close. */
		atomic_store_explicit(&c->p_token, 0, memory_order_relaxed);
		shmkit__role_release(&c->p_owner, ch->me);
	} else if (role == SHMKIT_CHAN_CONSUMER) {
		/* Release pairs with the producer's acquire in consumer_gone(). */
		atomic_store_explicit(&c->c_closed, ch->session, memory_order_release);
		/* Relaxed: a producer that reads the old values only signals a socket that
		 * is about to close, or sends a spare wake-up. */
		atomic_store_explicit(&c->c_token, 0, memory_order_relaxed);
		atomic_store_explicit(&c->c_state, ST_AWAKE, memory_order_relaxed);
		/* Our final position for a successor, and a wake-up for a producer sleeping
		 * or polling on a full ring (it will find room, or c_closed). */
		publish_to(ch, 1);
		shmkit__role_release(&c->c_owner, ch->me);
	}
	if (ch->sock >= 0)
		close(ch->sock);
	shmkit__poller_close(&ch->poll);
	shmkit_seg_close(ch->seg);
	free(ch);
	return 0;
}

/* Make the consumer's descriptor level-triggered from the start: readable at once if
 * something waits (a message, end-of-stream, a dead producer), else armed. */
static void consumer_fd_start(shmkit_chan *ch)
{
	uint32_t len;
	int r = ch->poisoned ? -EPROTO : deleted(ch) ? -EIDRM : idle_check(ch, fd_drain(ch), &len);
	if (r == WAIT) {
		r = fd_arm(ch, &len);
		if (r == 0)
			r = WAIT;
	}
	if (head_pos(ch) != ch->published)
		publish(ch); /* skipped a pad */
	if (r != WAIT)
		shmkit__poller_keep_ready(&ch->poll);
}

static int chan_fd(shmkit_chan *ch)
{
	if (!ch || (ch->role != SHMKIT_CHAN_PRODUCER && ch->role != SHMKIT_CHAN_CONSUMER))
		return -EINVAL;
	if (ch->poll.epfd >= 0)
		return ch->poll.epfd;
	int ep = shmkit__poller_open(&ch->poll, ch->me);
	if (ep < 0)
		return ep;
	struct chan_ctl *c = ch->ctl;
	/* Release pairs with the peer's acquire when it signals (wake_consumer(),
	 * wake_producer()); stored before we ever announce POLLING. */
	atomic_store_explicit(ch->role == SHMKIT_CHAN_PRODUCER ? &c->p_token : &c->c_token,
			      ch->poll.token, memory_order_release);
	if (ch->role == SHMKIT_CHAN_PRODUCER)
		producer_arm(ch, ch->cap / 2, 0); /* readable at once if half the ring is free */
	else
		consumer_fd_start(ch);
	return ep;
}

int shmkit_chan_set_spin(shmkit_chan *ch, int64_t spin_ns)
{
	if (!ch)
		return -EINVAL;
	if (spin_ns < 0)
		spin_ns = 0;
	if (spin_ns > SHMKIT_SEC)
		spin_ns = SHMKIT_SEC;
	ch->spin_ns = spin_ns;
	return 0;
}

static int chan_stats(const shmkit_chan *ch, struct shmkit_chan_stats *st)
{
	if (!ch || !st)
		return -EINVAL;
	const struct chan_ctl *c = ch->ctl;
	memset(st, 0, sizeof *st);
	st->capacity = ch->cap;
	st->max_msg = ch->max_msg;
	/* All relaxed: counters are independent snapshots, not a consistent cut. */
	uint64_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
	uint64_t used = tail - head;
	st->used = used <= ch->cap ? used : (head - tail <= ch->cap ? 0 : ch->cap);
	st->msgs_sent = atomic_load_explicit(&c->msgs_sent, memory_order_relaxed);
	st->bytes_sent = atomic_load_explicit(&c->bytes_sent, memory_order_relaxed);
	st->msgs_recv = atomic_load_explicit(&c->msgs_recv, memory_order_relaxed);
	st->bytes_recv = atomic_load_explicit(&c->bytes_recv, memory_order_relaxed);
	st->producer_sleeps = atomic_load_explicit(&c->p_sleeps, memory_order_relaxed);
	st->consumer_sleeps = atomic_load_explicit(&c->c_sleeps, memory_order_relaxed);
	st->wakes = atomic_load_explicit(&c->p_wakes, memory_order_relaxed) +
		    atomic_load_explicit(&c->c_wakes, memory_order_relaxed);
	st->producer_pid = shmkit__who_pid(&c->p_owner, &c->p_who);
	st->consumer_pid = shmkit__who_pid(&c->c_owner, &c->c_who);
	st->producer_closed = atomic_load_explicit(&c->p_closed, memory_order_relaxed) != 0;
	/* Acquire, as the other readers of the role words. A few system calls each. */
	uint64_t po = atomic_load_explicit(&c->p_owner, memory_order_acquire);
	uint64_t co = atomic_load_explicit(&c->c_owner, memory_order_acquire);
	int pa = po ? shmkit__live_check(po) : 0, ca = co ? shmkit__live_check(co) : 0;
	st->producer_alive = pa < 0 ? -1 : pa;
	st->consumer_alive = ca < 0 ? -1 : ca;
	return 0;
}

shmkit_seg *shmkit_chan_seg(const shmkit_chan *ch)
{
	return ch ? ch->seg : NULL;
}

/* ---- the SIGBUS guard: every call that touches the segment, as one guarded call ---- */

int shmkit_chan_open(const char *name, unsigned role, size_t capacity, unsigned mode,
		     unsigned flags, shmkit_chan **out)
{
	shmkit__guard_enter();
	int r = chan_open(name, role, capacity, mode, flags, out);
	/* A control block read from a replaced mapping proves nothing: no handle. */
	if (guard_end(r == 0 ? *out : NULL, r) == -EFAULT) {
		if (r == 0)
			chan_close(*out);
		if (out)
			*out = NULL;
		r = -EFAULT;
	}
	return r;
}

int shmkit_chan_close(shmkit_chan *ch)
{
	/* Closing a poisoned handle only writes its private replacement, and frees it. */
	shmkit__guard_enter();
	int r = chan_close(ch);
	shmkit__guard_leave();
	return r;
}

int shmkit_chan_sendv(shmkit_chan *ch, const struct iovec *msgs, int n, int64_t timeout_ns)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, chan_sendv(ch, msgs, n, timeout_ns));
}

__attribute__((noinline)) static int reserve_slow(shmkit_chan *ch, size_t len,
						 int64_t timeout_ns, void **buf)
{
	shmkit__guard_enter();
	int r = (int)guard_end(ch, chan_reserve(ch, len, timeout_ns, buf));
	if (r == -EFAULT && buf)
		*buf = NULL;
	return r;
}

__attribute__((noinline)) static int commit_slow(shmkit_chan *ch, size_t len)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, chan_commit(ch, len));
}

ssize_t shmkit_chan_recv(shmkit_chan *ch, void *buf, size_t cap, int64_t timeout_ns)
{
	/* A message copied, even in part, from the zero replacement is never returned. */
	shmkit__guard_enter();
	return (ssize_t)guard_end(ch, chan_recv(ch, buf, cap, timeout_ns));
}

__attribute__((noinline)) static ssize_t peek_slow(shmkit_chan *ch, const void **buf,
						   size_t *len, int64_t timeout_ns)
{
	shmkit__guard_enter();
	ssize_t r = (ssize_t)guard_end(ch, chan_peek(ch, buf, len, timeout_ns));
	if (r == -EFAULT && buf && len) {
		*buf = NULL;
		*len = 0;
	}
	return r;
}

__attribute__((noinline)) static int release_slow(shmkit_chan *ch)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, chan_release(ch));
}

int shmkit_chan_fd(shmkit_chan *ch)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, chan_fd(ch));
}

int shmkit_chan_stats(const shmkit_chan *ch, struct shmkit_chan_stats *st)
{
	/* Counters read from the zero replacement are never reported. */
	shmkit__guard_enter();
	int r = (int)guard_end(ch, chan_stats(ch, st));
	if (r == -EFAULT && st)
		memset(st, 0, sizeof *st);
	return r;
}

/* The zero-copy calls' fast paths, known to the guard by their code's address as
 * shmkit_chan_send()'s is (no marker stores, except where SHMKIT__FAST_ENTER() is one;
 * a truncation shows as the replacement's DELETED header). Anything else goes to the
 * guarded calls above, unchanged. */

SHMKIT__GUARDED_CODE int shmkit_chan_reserve(shmkit_chan *ch, size_t len, int64_t timeout_ns,
					     void **buf)
{
	if (__builtin_expect(ch != NULL && ch->role == SHMKIT_CHAN_PRODUCER && buf != NULL &&
				     len - 1 < ch->max_msg,
			     1)) {
		ch->resv_len = 0; /* discards a pending reservation */
		/* room_fast() reads the header: a replaced mapping's says DELETED. */
		SHMKIT__FAST_ENTER();
		unsigned char *p = room_fast(ch, len);
		SHMKIT__FAST_LEAVE();
		if (__builtin_expect(p != NULL, 1)) {
			ch->resv_pos = ch->tail;
			ch->resv_len = len;
			*buf = p;
			return 0;
		}
	}
	return reserve_slow(ch, len, timeout_ns, buf);
}

SHMKIT__GUARDED_CODE int shmkit_chan_commit(shmkit_chan *ch, size_t len)
{
	if (__builtin_expect(!check_producer(ch) || ch->resv_len == 0 || len == 0 ||
				     len > ch->resv_len || ch->resv_pos != ch->tail,
			     0))
		return commit_slow(ch, len); /* -EINVAL, or -EFAULT when poisoned */
	ch->resv_len = 0;
	SHMKIT__FAST_ENTER();
	commit_msg(ch, (uint32_t)len);
	uint32_t s = atomic_load_explicit(&ch->ctl->c_state, memory_order_relaxed);
	int gone = deleted(ch);
	SHMKIT__FAST_LEAVE();
	if (__builtin_expect(gone, 0))
		return gone_result(ch, 0);
	/* wake_check(), with its rare call made a (guarded) tail call. */
	if (__builtin_expect(s == ST_AWAKE, 1))
		return 0;
	return wake_consumer_ret(ch);
}

/* A peeked message whose mapping was replaced meanwhile is not returned. */
__attribute__((noinline)) static ssize_t peek_gone(shmkit_chan *ch, const void **buf,
						   size_t *len, uint32_t n)
{
	if (gone_result(ch, 0) == 0)
		return n;
	*buf = NULL;
	*len = 0;
	return -EFAULT;
}

SHMKIT__GUARDED_CODE ssize_t shmkit_chan_peek(shmkit_chan *ch, const void **buf, size_t *len,
					      int64_t timeout_ns)
{
	uint32_t n;
	/* consumer_next()'s first steps; waiting, errors and the rest: peek_slow(). */
	if (__builtin_expect(check_consumer(ch) && buf != NULL && len != NULL && !ch->poisoned &&
				     ch->nahead == 0,
			     1)) {
		SHMKIT__FAST_ENTER();
		int found = !deleted(ch) && next_msg(ch, &n) == 1;
		int gone = found && deleted(ch);
		SHMKIT__FAST_LEAVE();
		if (__builtin_expect(found, 1)) {
			*buf = ch->ring + (ch->pos & ch->mask) + HDR;
			*len = n;
			ch->peek_len = n;
			if (__builtin_expect(gone, 0))
				return peek_gone(ch, buf, len, n);
			return n;
		}
	}
	return peek_slow(ch, buf, len, timeout_ns);
}

SHMKIT__GUARDED_CODE int shmkit_chan_release(shmkit_chan *ch)
{
	if (__builtin_expect(!check_consumer(ch) || ch->peek_len == 0, 0))
		return release_slow(ch); /* -EINVAL, or -EFAULT when poisoned */
	/* consume() calls nothing unguarded: publish() guards itself. */
	SHMKIT__FAST_ENTER();
	consume(ch, (uint32_t)ch->peek_len);
	int gone = deleted(ch);
	SHMKIT__FAST_LEAVE();
	if (__builtin_expect(gone, 0))
		return gone_result(ch, 0);
	return 0;
}

ssize_t shmkit_chan_peek_next(shmkit_chan *ch, const void **buf, size_t *len, uint64_t *pos,
			      int64_t timeout_ns)
{
	shmkit__guard_enter();
	ssize_t r = (ssize_t)guard_end(ch, chan_peek_next(ch, buf, len, pos, timeout_ns));
	if (r == -EFAULT && buf && len) {
		*buf = NULL;
		*len = 0;
	}
	return r;
}

int shmkit_chan_release_to(shmkit_chan *ch, uint64_t pos)
{
	shmkit__guard_enter();
	return (int)guard_end(ch, chan_release_to(ch, pos));
}

int shmkit_chan_position(const shmkit_chan *ch, uint64_t *pos)
{
	return chan_position(ch, pos);
}
