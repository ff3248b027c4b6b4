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
 * spinning until some writer comes. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <shmkit/blob.h>
#include <shmkit/sync.h>
#include "internal.h"

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
	uint64_t reserved[1];
};
#define SLOT_OFF 256u
_Static_assert(sizeof(struct blob_ctl) <= SLOT_OFF, "blob control block fits before slot 0");
_Static_assert(offsetof(struct blob_ctl, version) == 64, "blob layout changed");

struct shmkit_blob {
	shmkit_seg *seg;
	struct blob_ctl *ctl;
	unsigned char *slot[2]; /* validated at open: never re-read from shared memory */
	size_t size;
	int rdonly;
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
	if (bytes < SLOT_OFF || bsize == 0 || bsize > bytes || ctl->stride != stride_of(bsize) ||
	    data_bytes(bsize) != bytes) {
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
	*out = b;
	return 0;
}

int shmkit_blob_close(shmkit_blob *b)
{
	if (!b)
		return 0;
	shmkit_seg_close(b->seg);
	free(b);
	return 0;
}

int shmkit_blob_delete(shmkit_blob *b)
{
	return b ? shmkit_seg_delete(b->seg) : -EINVAL;
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
out:
	shmkit_mutex_unlock(&ctl->lock);
	return r;
}

/* Readers copy while a writer may be filling the same slot (a detected, retried
 * seqlock race). ThreadSanitizer would report that copy, so under it the copy is an
 * uninstrumented byte loop; everywhere else it is memcpy. */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize_thread, noinline,
	       optimize("no-tree-loop-distribute-patterns"))) static void
racy_copy(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const volatile unsigned char *s = src;
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}
#else
#define racy_copy memcpy
#endif

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
			racy_copy(buf, b->slot[i], n);
			/* Seqlock reader: the copy's loads happen before the recheck. */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&ctl->seq[i], memory_order_relaxed) == s1) {
				if (version)
					*version = ver;
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
