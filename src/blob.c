/* shmkit — the blob: a double-buffered snapshot with lock-free readers.
 *
 * Two slots hold whole copies of the buffer. A writer, holding the robust mutex, fills
 * the slot readers are not directed to, then publishes it by bumping the version:
 * readers copy the slot (version & 1). Each slot has its own sequence counter (odd
 * while written) so a reader detects the rare case of a slot being reused under it
 * (two writes during one copy) and retries. A writer killed mid-write dies holding the
 * mutex with the idle slot half written and the version untouched: readers never see
 * it, and the next writer's -EOWNERDEAD repair just closes the odd sequence.
 *
 * Every control word is written by peers too. size and stride are checked once at open
 * and kept in the handle; version only selects a slot by its low bit; sequences are
 * compared, never used as sizes. The one state no writer makes, the current slot odd
 * under an unchanged version, gets -EPROTO after ODD_LIMIT_NS instead of a reader
 * spinning until some writer comes.
 *
 * Waiting for a new version (the waiting layer, wait.h): a writer, after publishing a
 * version, rings the bell that shmkit_blob_wait() sleeps on and signals the armed
 * pollers of a table in the control block, where each handle that made a descriptor
 * (shmkit_blob_fd()) registered its poller. A handle remembers the version its last
 * read or wait returned; its descriptor is readable while the blob's version differs
 * from it: after each read or wait, the handle drains the descriptor and arms its
 * slot (then rechecks), or keeps it readable with a signal to itself. A read-only
 * handle can write neither the bell nor the table: it waits by looking every
 * RDONLY_POLL_NS, and gets no descriptor. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/blob.h>
#include <shmkit/sync.h>
#include "internal.h"
#include "wait.h"

/* 2: the bell, the table of pollers and the format word itself; slots at SLOT_OFF
 * 2048 (1 had no format word, and slots at 256). */
#define BLOB_FORMAT 2u
/* Descriptors (shmkit_blob_fd()) one blob takes at once; more get -EUSERS. Each
 * registration is a slot of 24 bytes in the control block, and each write scans the
 * table when any is registered. */
#define BLOB_POLLERS 64u
/* A waiter spins this long before it sleeps on the bell. */
#define WAIT_SPIN_NS 10000
/* A read-only handle cannot announce itself as a sleeper: it looks this often. */
#define RDONLY_POLL_NS SHMKIT_MSEC

/* How long a writer waits for the lock before reporting -ETIMEDOUT: far longer than any
 * copy, so it only expires when the holder is stopped (SIGSTOP, debugger). */
#define WRITE_LOCK_NS (10 * SHMKIT_SEC)

/* How long a reader tolerates the current slot's sequence odd under an unchanged
 * version before it reports -EPROTO. A correct writer never shows that even once;
 * this only lets a write that is about to publish clear a corrupt word first. */
#define ODD_LIMIT_NS (10 * SHMKIT_MSEC)

/* At the start of the blob segment's data area. */
struct blob_ctl {
	shmkit_mutex lock;            /* writers serialize on it; readers never take it */
	alignas(SHMKIT_CACHELINE) _Atomic uint64_t version; /* completed writes: written
	                               * under lock with release, read by readers with
	                               * acquire; the current slot is version & 1 */
	_Atomic uint64_t seq[2];      /* per slot: odd while a writer fills it (under lock;
	                               * the odd store is a release, the even one too);
	                               * read with acquire by readers. A writer evens an
	                               * odd value it finds before use. */
	_Atomic uint64_t slot_ver[2]; /* version whose contents the slot holds; written
	                               * inside the slot's odd window; only reported */
	uint64_t size;                /* snapshot bytes; written once by the creator,
	                               * checked against the segment at open, never
	                               * read again */
	uint64_t stride;              /* slot i starts at SLOT_OFF + i * stride; creator;
	                               * checked at open like size */
	uint32_t format;              /* BLOB_FORMAT; creator; checked at open */
	uint32_t reserved0;
	/* Writers ring it after each version (and a deleter); shmkit_blob_wait() sleeps
	 * on it. Its words are hostile too: only compared and counted (wait.h). */
	alignas(SHMKIT_CACHELINE) struct shmkit__bell bell;
	alignas(SHMKIT_CACHELINE) _Atomic uint32_t pollers; /* registrations in poll[], a
	                               * hint: incremented by a joiner taking a free slot,
	                               * decremented by a leaver, left high by the killed;
	                               * writers skip the table when it reads 0 */
	uint32_t reserved1[15];
	/* A handle's descriptor registers here (shmkit__poll_join()); writers signal the
	 * armed ones (shmkit__poll_ring()). */
	struct shmkit__poll_slot poll[BLOB_POLLERS];
};
#define SLOT_OFF 2048u
_Static_assert(sizeof(struct blob_ctl) <= SLOT_OFF, "blob control block fits before slot 0");
_Static_assert(offsetof(struct blob_ctl, version) == 64, "blob layout changed");
_Static_assert(offsetof(struct blob_ctl, format) == 120, "blob layout changed");
_Static_assert(offsetof(struct blob_ctl, bell) == 128, "blob layout changed");
_Static_assert(offsetof(struct blob_ctl, pollers) == 192, "blob layout changed");
_Static_assert(offsetof(struct blob_ctl, poll) == 256, "blob layout changed");

/* What a handle keeps for waiting. Reads take the handle const, yet say which version
 * they returned: through this pointer, to the handle's own memory. */
struct blob_local {
	_Atomic uint64_t seen;      /* the version the last read or wait returned (at
	                             * open: the version then); any thread, relaxed */
	_Atomic int has_fd;         /* 1 once poll is set up (release after it) */
	pthread_mutex_t mu;         /* poll and slot, between the handle's threads */
	struct shmkit__poller poll; /* the descriptor; epfd < 0 before shmkit_blob_fd() */
	int slot;                   /* our registration in ctl->poll[], -1: none */
	uint64_t me;                /* our liveness token, the registration's owner */
	int sock;                   /* for signalling pollers: used under the write lock */
};

struct shmkit_blob {
	shmkit_seg *seg;
	struct blob_ctl *ctl;
	unsigned char *slot[2]; /* validated at open: never re-read from shared memory */
	size_t size;
	int rdonly;
	struct blob_local *local; /* = &local_ */
	struct blob_local local_;
};

static uint64_t stride_of(uint64_t size)
{
	return (size + SHMKIT_CACHELINE - 1) & ~(uint64_t)(SHMKIT_CACHELINE - 1);
}

static size_t data_bytes(size_t size)
{
	return SLOT_OFF + 2 * stride_of(size);
}

static int blob_init(void *data, size_t bytes, void *arg)
{
	struct blob_ctl *ctl = data;
	size_t size = *(const size_t *)arg;
	(void)bytes;
	/* The segment is new and zero-filled: slots read as zeros, version 0. */
	ctl->size = size;
	ctl->stride = stride_of(size);
	ctl->format = BLOB_FORMAT;
	return shmkit_mutex_init(&ctl->lock);
}

static int blob_open(const char *name, size_t size, unsigned mode, unsigned flags,
		     shmkit_blob **out)
{
	shmkit_seg *seg;
	int r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & SHMKIT_SEG_RAW)
		return -EINVAL;
	if (size > ((uint64_t)1 << 44))
		return -EINVAL;
	r = shmkit__seg_open(name, SHMKIT_KIND_BLOB, size ? data_bytes(size) : 0, mode, flags,
			     blob_init, &size, &seg);
	if (r < 0)
		return r;
	struct blob_ctl *ctl = shmkit_seg_data(seg);
	size_t bytes = shmkit_seg_size(seg);
	/* The control block came from shared memory: check it against the segment. */
	uint64_t bsize = ctl->size;
	if (bytes < SLOT_OFF || ctl->format != BLOB_FORMAT || bsize == 0 || bsize > bytes ||
	    ctl->stride != stride_of(bsize) || data_bytes(bsize) != bytes) {
		shmkit_seg_close(seg);
		return -EPROTO;
	}
	if (size && bsize != size) {
		/* Same slot layout, different size: as shmkit_seg_open() says for sizes. */
		shmkit_seg_close(seg);
		return -EINVAL;
	}
	shmkit_blob *b = calloc(1, sizeof *b);
	if (!b) {
		shmkit_seg_close(seg);
		return -ENOMEM;
	}
	b->seg = seg;
	b->ctl = ctl;
	b->size = bsize;
	b->slot[0] = (unsigned char *)ctl + SLOT_OFF;
	b->slot[1] = b->slot[0] + stride_of(bsize);
	b->rdonly = (flags & SHMKIT_SEG_RDONLY) != 0;
	struct blob_local *l = b->local = &b->local_;
	/* A handle has seen the blob as it was when opened. Acquire, as blob_version(). */
	atomic_store_explicit(&l->seen, atomic_load_explicit(&ctl->version, memory_order_acquire),
			      memory_order_relaxed);
	pthread_mutex_init(&l->mu, NULL);
	shmkit__poller_init(&l->poll);
	l->slot = -1;
	l->sock = -1;
	*out = b;
	return 0;
}

int shmkit_blob_close(shmkit_blob *b)
{
	if (!b)
		return 0;
	struct blob_local *l = b->local;
	if (l->slot >= 0) {
		/* Writes the table: a guarded call (a truncated segment's replacement
		 * takes the stores). */
		shmkit__guard_enter();
		shmkit__poll_leave(b->ctl->poll, (unsigned)l->slot, &b->ctl->pollers, l->me);
		shmkit__guard_leave();
	}
	shmkit__poller_close(&l->poll);
	if (l->sock >= 0)
		close(l->sock);
	pthread_mutex_destroy(&l->mu);
	shmkit_seg_close(b->seg);
	free(b);
	return 0;
}

/* Whoever waits for a new version: a change (a version, a deletion) is visible. */
static void wake_waiters(shmkit_blob *b, int *sock)
{
	struct blob_ctl *ctl = b->ctl;
	/* shmkit__poll_ring() fences before it looks (the handshake with an arming
	 * poller), which also puts our change before the bell's sleeper check below. */
	shmkit__poll_ring(ctl->poll, BLOB_POLLERS, &ctl->pollers, sock);
	shmkit__bell_ring(&ctl->bell);
}

int shmkit_blob_delete(shmkit_blob *b)
{
	if (!b)
		return -EINVAL;
	int r = shmkit_seg_delete(b->seg);
	if (r == 0 && !b->rdonly) {
		/* Waiters and descriptors learn of it now, not at their next slice. A
		 * socket of our own: deletion takes no lock that orders it with writes. A
		 * guarded call: the bell and the table are in the segment. */
		int sock = -1;
		shmkit__guard_enter();
		wake_waiters(b, &sock);
		shmkit__guard_leave();
		if (sock >= 0)
			close(sock);
	}
	return r;
}

size_t shmkit_blob_size(const shmkit_blob *b)
{
	return b ? b->size : 0;
}

shmkit_seg *shmkit_blob_seg(const shmkit_blob *b)
{
	return b ? b->seg : NULL;
}

/* A writer died holding the lock. Whatever it was doing happened in the idle slot,
 * which readers are not directed to; close its odd sequence so the slot is usable. */
static void repair(struct blob_ctl *ctl)
{
	for (int i = 0; i < 2; i++) {
		uint64_t s = atomic_load_explicit(&ctl->seq[i], memory_order_relaxed);
		if (s & 1)
			atomic_store_explicit(&ctl->seq[i], s + 1, memory_order_release);
	}
}

static int blob_write(shmkit_blob *b, const void *buf, size_t len)
{
	if (!b || (!buf && len))
		return -EINVAL;
	if (len > b->size)
		return -EMSGSIZE;
	if (b->rdonly)
		return -EBADF;
	struct blob_ctl *ctl = b->ctl;
	int r = shmkit_mutex_lock(&ctl->lock, WRITE_LOCK_NS);
	if (r == -EOWNERDEAD) {
		repair(ctl);
		r = shmkit_mutex_consistent(&ctl->lock);
	}
	if (r < 0)
		return r;
	r = shmkit_seg_check(b->seg);
	if (r < 0)
		goto out;
	/* Only writers change version, and they hold the lock: relaxed is enough. */
	uint64_t v = atomic_load_explicit(&ctl->version, memory_order_relaxed);
	unsigned cur = v & 1, nxt = cur ^ 1;
	uint64_t s = atomic_load_explicit(&ctl->seq[nxt], memory_order_relaxed);
	/* Odd here was written by a peer (a dead writer's odd sequence was closed by
	 * repair()): start from even, so that the slot ends even and readable. */
	s += s & 1;
	/* Release: a reader that sees this odd value also sees the version our
	 * predecessor published (it happened before our lock), so it can tell "the slot
	 * is being reused under me" (version moved) from corruption (it did not). */
	atomic_store_explicit(&ctl->seq[nxt], s + 1, memory_order_release);
	/* Seqlock writer: the odd sequence must be visible before any byte of the slot
	 * changes, so a reader that copies a changing slot sees seq move. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&ctl->slot_ver[nxt], v + 1, memory_order_relaxed);
	if (len)
		memcpy(b->slot[nxt], buf, len); /* buf may be NULL when len is 0 */
	/* Keep the rest of the buffer: a write replaces only its first len bytes. */
	memcpy(b->slot[nxt] + len, b->slot[cur] + len, b->size - len);
	/* Release: the slot's bytes before its even sequence, then before the version
	 * that directs readers to it. */
	atomic_store_explicit(&ctl->seq[nxt], s + 2, memory_order_release);
	atomic_store_explicit(&ctl->version, v + 1, memory_order_release);
	/* Under the lock, which serializes every writer, also this handle's threads on
	 * its socket. A sleeper or an armed poller costs a system call; nobody, a fence
	 * and two loads. */
	wake_waiters(b, &b->local->sock);
out:
	shmkit_mutex_unlock(&ctl->lock);
	return r;
}

/* ---- the descriptor's level ---- */

/* 1 if the handle's descriptor should poll readable: the version moved on from the one
 * last returned, or the blob is gone (a read says so: -EIDRM lasts). */
static int fd_due(const shmkit_blob *b)
{
	/* Acquire, as blob_version(). */
	uint64_t v = atomic_load_explicit(&b->ctl->version, memory_order_acquire);
	return v != atomic_load_explicit(&b->local->seen, memory_order_relaxed) ||
	       shmkit_seg_check(b->seg) < 0;
}

/* Set the descriptor's level after the handle saw a version: quiet and armed when
 * nothing is new, else readable (see the top of the file). */
static void fd_settle(const shmkit_blob *b)
{
	struct blob_local *l = b->local;
	pthread_mutex_lock(&l->mu);
	if (l->slot >= 0) {
		if (!fd_due(b)) {
			shmkit__poller_drain(&l->poll);
			/* Announce, then the recheck below: a writer's version after it finds
			 * us armed and signals (shmkit__poll_arm() fences). */
			shmkit__poll_arm(&b->ctl->poll[l->slot]);
		}
		if (fd_due(b))
			shmkit__poller_keep_ready(&l->poll);
	}
	pthread_mutex_unlock(&l->mu);
}

/* A read or wait returns version @v. */
static void saw(const shmkit_blob *b, uint64_t v)
{
	atomic_store_explicit(&b->local->seen, v, memory_order_relaxed);
	/* Acquire pairs with the release store in blob_fd(): slot and poller are set up. */
	if (atomic_load_explicit(&b->local->has_fd, memory_order_acquire))
		fd_settle(b);
}

static ssize_t blob_read(const shmkit_blob *b, void *buf, size_t cap, uint64_t *version)
{
	if (!b || (!buf && cap))
		return -EINVAL;
	struct blob_ctl *ctl = b->ctl;
	size_t n = cap < b->size ? cap : b->size;
	uint64_t odd_v = 0;      /* the version under which the current slot read odd */
	int64_t odd_since = -1;  /* since when (monotonic ns); -1: not seen */
	for (unsigned tries = 1;; tries++) {
		int r = shmkit_seg_check(b->seg);
		if (r < 0)
			return r;
		/* Pairs with the writer's release of version: the slot it names is complete.
		 * version is any 64-bit value a peer wrote; only its low bit picks a slot. */
		uint64_t v = atomic_load_explicit(&ctl->version, memory_order_acquire);
		unsigned i = v & 1;
		uint64_t s1 = atomic_load_explicit(&ctl->seq[i], memory_order_acquire);
		if (!(s1 & 1)) {
			uint64_t ver = atomic_load_explicit(&ctl->slot_ver[i], memory_order_relaxed);
			shmkit__racy_copy(buf, b->slot[i], n);
			/* Seqlock reader: the copy's loads happen before the recheck. */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&ctl->seq[i], memory_order_relaxed) == s1) {
				if (version)
					*version = ver;
				saw(b, v);
				return (ssize_t)n;
			}
			odd_since = -1;
		} else if (atomic_load_explicit(&ctl->version, memory_order_acquire) != v) {
			/* The slot was being reused by a later write: it publishes the other
			 * slot first, so version moved. Retry from the new version. */
			odd_since = -1;
		} else {
			/* The current slot is odd and version stayed: no writer does that
			 * (each fills the idle slot; the odd store is a release, so seeing it
			 * we see the version before it). A peer wrote the word. Wait a
			 * little for a write to move past it, then say so: a read-only reader
			 * could otherwise spin here until some writer comes. */
			int64_t now = shmkit__now_ns();
			if (odd_since < 0 || odd_v != v) {
				odd_v = v;
				odd_since = now;
			} else if (now - odd_since > ODD_LIMIT_NS) {
				return -EPROTO;
			}
		}
		/* Two writes overtook this copy: let the writers run before retrying. */
		if (tries % 8 == 0)
			sched_yield();
	}
}

static int64_t blob_version(const shmkit_blob *b)
{
	if (!b)
		return -EINVAL;
	int r = shmkit_seg_check(b->seg);
	if (r < 0)
		return r;
	uint64_t v = atomic_load_explicit(&b->ctl->version, memory_order_acquire);
	/* 2^63 writes take centuries: a larger count is a peer's store, and would read
	 * as an error code if returned. */
	return v > INT64_MAX ? -EPROTO : (int64_t)v;
}

/* ---- waiting ---- */

struct wait_arg {
	const shmkit_blob *b;
	uint64_t last;
};

/* The bell's check: the version if it moved from last, an error, or keep waiting. */
static int wait_check(void *arg, int live)
{
	const struct wait_arg *w = arg;
	(void)live; /* a blob has no peer whose life ends a wait */
	int64_t v = blob_version(w->b);
	if (v < 0)
		return (int)v;
	return (uint64_t)v != w->last ? 1 : SHMKIT__KEEP_WAITING;
}

/* A read-only handle: it can write neither the bell's sleeper count nor anything
 * else, so it looks every RDONLY_POLL_NS (sleeping on the bell's word, which a
 * writer bumps when other waiters sleep). */
static int wait_rdonly(shmkit_blob *b, struct wait_arg *w, int64_t deadline)
{
	struct shmkit__bell *bell = &b->ctl->bell;
	for (;;) {
		/* Acquire: a ring's seq comes after the version it announces. */
		uint32_t seq = atomic_load_explicit(&bell->seq, memory_order_acquire);
		int r = wait_check(w, 0);
		if (r != SHMKIT__KEEP_WAITING)
			return r;
		int64_t now = shmkit__now_ns();
		if (deadline > 0 && now >= deadline)
			return -ETIMEDOUT;
		shmkit__sleep_until(&bell->seq, seq, shmkit__slice_end(now, RDONLY_POLL_NS, deadline));
	}
}

static int64_t blob_wait(shmkit_blob *b, uint64_t last, int64_t timeout_ns)
{
	if (!b)
		return -EINVAL;
	struct wait_arg w = {b, last};
	int64_t deadline = shmkit__deadline(timeout_ns);
	int r = wait_check(&w, 0);
	if (r == SHMKIT__KEEP_WAITING) {
		if (deadline == 0)
			return -EAGAIN;
		if (b->rdonly) {
			r = wait_rdonly(b, &w, deadline);
		} else {
			int64_t live_checked = shmkit__now_ns();
			/* No peer whose life ends the wait: the slices only bound a lost
			 * wake-up and notice a deletion by other means. */
			r = shmkit__bell_wait(&b->ctl->bell, wait_check, &w, WAIT_SPIN_NS, deadline,
					      SHMKIT__SLICE_NS, SHMKIT__LIVE_CHECK_NS, &live_checked,
					      NULL);
		}
	}
	if (r != 1)
		return r;
	/* Moved: the version now (which a check just found valid, or an error). */
	int64_t v = blob_version(b);
	if (v >= 0)
		saw(b, (uint64_t)v);
	return v;
}

static int blob_fd(shmkit_blob *b)
{
	if (!b)
		return -EINVAL;
	if (b->rdonly)
		return -EBADF;
	struct blob_local *l = b->local;
	int r;
	pthread_mutex_lock(&l->mu);
	if (l->slot >= 0) {
		r = l->poll.epfd;
		goto out;
	}
	r = shmkit_seg_check(b->seg);
	if (r < 0)
		goto out;
	r = shmkit__live_token(&l->me);
	if (r < 0)
		goto out;
	r = shmkit__poller_open(&l->poll, l->me);
	if (r < 0)
		goto out;
	r = shmkit__poll_join(b->ctl->poll, BLOB_POLLERS, &b->ctl->pollers, l->me, l->poll.token);
	if (r < 0) {
		shmkit__poller_close(&l->poll);
		goto out;
	}
	l->slot = r;
	r = l->poll.epfd;
	/* Release pairs with the acquire in saw(). */
	atomic_store_explicit(&l->has_fd, 1, memory_order_release);
out:
	pthread_mutex_unlock(&l->mu);
	if (r >= 0)
		fd_settle(b); /* readable at once if the version moved since the last read */
	return r;
}

/* ---- the SIGBUS guard: every call that touches the segment, as one guarded call ---- */

int shmkit_blob_open(const char *name, size_t size, unsigned mode, unsigned flags,
		     shmkit_blob **out)
{
	shmkit__guard_enter();
	int r = blob_open(name, size, mode, flags, out);
	/* The control block read from a replaced mapping proves nothing: no handle. */
	if (shmkit__guard_result(r == 0 ? (*out)->seg : NULL, r) == -EFAULT) {
		if (r == 0)
			shmkit_blob_close(*out);
		if (out)
			*out = NULL;
		r = -EFAULT;
	}
	return r;
}

int shmkit_blob_write(shmkit_blob *b, const void *buf, size_t len)
{
	shmkit__guard_enter();
	int r = blob_write(b, buf, len);
	return (int)shmkit__guard_result(b ? b->seg : NULL, r);
}

ssize_t shmkit_blob_read(const shmkit_blob *b, void *buf, size_t cap, uint64_t *version)
{
	shmkit__guard_enter();
	ssize_t r = blob_read(b, buf, cap, version);
	/* A snapshot copied, even in part, from the zero replacement is never returned. */
	return (ssize_t)shmkit__guard_result(b ? b->seg : NULL, r);
}

int64_t shmkit_blob_version(const shmkit_blob *b)
{
	shmkit__guard_enter();
	int64_t r = blob_version(b);
	return shmkit__guard_result(b ? b->seg : NULL, r);
}

int64_t shmkit_blob_wait(shmkit_blob *b, uint64_t last_version, int64_t timeout_ns)
{
	shmkit__guard_enter();
	int64_t r = blob_wait(b, last_version, timeout_ns);
	return shmkit__guard_result(b ? b->seg : NULL, r);
}

int shmkit_blob_fd(shmkit_blob *b)
{
	shmkit__guard_enter();
	int r = blob_fd(b);
	return (int)shmkit__guard_result(b ? b->seg : NULL, r);
}
