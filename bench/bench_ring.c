/* shmkit bench — the textbook ring: a single-producer single-consumer ring of fixed
 * slots in shared memory, as anyone would write it in an afternoon, and the yardstick
 * every channel ratio is measured against (issue 10).
 *
 * What makes it the textbook one, and nothing more: one slot per message, sized to the
 * message (1 MiB messages get 1 MiB slots); free-running head and tail counters over a
 * power-of-two slot count, each on a cache line of its own; each side keeps a private
 * copy of the other's counter and rereads the shared one only when that copy says full
 * or empty; one memcpy in and one memcpy out; spinning waits with a pause; no batching
 * (every message publishes its own head or tail store). It has no liveness, no
 * sleeping and no variable lengths: those are what the channel pays for and the ring
 * does not, so beating it is the least the channel must do. */
#include "bench.h"

#include <stddef.h>

/* The shared header; the slots follow it. */
struct ring {
	/* Messages published. Written by the producer only (release, after the copy into
	 * slot head-1); read by the consumer (acquire) when its cached copy says empty. */
	alignas(64) _Atomic uint64_t head;
	/* Messages consumed. Written by the consumer only (release, after the copy out of
	 * slot tail-1); read by the producer (acquire) when its cached copy says full. */
	alignas(64) _Atomic uint64_t tail;
	/* 0, then 1 once either side is done: the producer after its last head store (end
	 * of stream), the consumer when it gives up. Each side reads it only while it
	 * waits, so a finished or failed peer cannot leave the other spinning. */
	alignas(64) _Atomic uint32_t closed;
	/* Written by the parent before the fork, read-only after: each end checks them and
	 * copies them at attach, and never reads them again. */
	uint32_t pad;
	uint64_t msg, slot, nslots;
};

#define RING_HDR ((size_t)192)
_Static_assert(offsetof(struct ring, head) == 0, "head has line 0");
_Static_assert(offsetof(struct ring, tail) == 64, "tail has line 1");
_Static_assert(offsetof(struct ring, closed) == 128, "closed and the sizes share line 2");
_Static_assert(sizeof(struct ring) == RING_HDR, "the slots start on line 3");

/* Between two looks at the other side's counter. With one CPU the peer cannot run
 * while we spin: give it the CPU. */
static inline void ring_relax(void)
{
	if (g_onecpu)
		sched_yield();
#if defined(__x86_64__) || defined(__i386__)
	else
		_mm_pause();
#elif defined(__aarch64__)
	else
		__asm__ __volatile__("yield" ::: "memory");
#endif
}

static size_t slot_bytes(size_t msg)
{
	return (msg + 63) & ~(size_t)63; /* every slot starts on a line */
}

size_t shmkit__bench_ring_size(size_t msg, uint64_t nslots)
{
	return RING_HDR + (size_t)nslots * slot_bytes(msg);
}

void shmkit__bench_ring_init(void *mem, size_t msg, uint64_t nslots)
{
	struct ring *r = mem;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->closed, 0);
	r->msg = msg;
	r->slot = slot_bytes(msg);
	r->nslots = nslots;
}

int shmkit__bench_ring_attach(struct ring_end *e, void *mem, size_t len)
{
	struct ring *r = mem;
	uint64_t n = r->nslots;

	if (len < RING_HDR || !r->msg || r->msg > len || r->slot != slot_bytes((size_t)r->msg) ||
	    !n || (n & (n - 1)) || n > (len - RING_HDR) / r->slot)
		return -EPROTO;
	e->r = r;
	e->slots = (unsigned char *)mem + RING_HDR;
	e->msg = (size_t)r->msg;
	e->slot = (size_t)r->slot;
	e->nslots = r->nslots;
	e->mask = r->nslots - 1;
	e->pos = e->other = 0;
	return 0;
}

int shmkit__bench_ring_send(struct ring_end *e, const void *buf, size_t n)
{
	struct ring *r = e->r;
	uint64_t used;

	if (n != e->msg)
		return -EMSGSIZE;
	if (e->pos - e->other >= e->nslots) {
		/* Full as far as the cached tail says: look at the real one until a slot is
		 * free. acquire pairs with the consumer's release of tail, so its copy out
		 * of the slot we are about to overwrite is complete. */
		for (;;) {
			e->other = atomic_load_explicit(&r->tail, memory_order_acquire);
			used = e->pos - e->other;
			if (used < e->nslots)
				break;
			if (used > e->nslots)
				return -EPROTO; /* a tail ahead of head, or too far behind */
			if (atomic_load_explicit(&r->closed, memory_order_relaxed))
				return -EPIPE;
			ring_relax();
		}
	}
	memcpy(e->slots + (e->pos & e->mask) * e->slot, buf, n);
	/* release: the copy into the slot happens before the consumer's acquire of head
	 * can see this message */
	atomic_store_explicit(&r->head, ++e->pos, memory_order_release);
	return 0;
}

ssize_t shmkit__bench_ring_recv(struct ring_end *e, void *buf, size_t cap)
{
	struct ring *r = e->r;

	if (cap < e->msg)
		return -EMSGSIZE;
	if (e->pos == e->other) {
		/* Empty as far as the cached head says. acquire pairs with the producer's
		 * release of head: the slot's bytes are there before we copy them. */
		while ((e->other = atomic_load_explicit(&r->head, memory_order_acquire)) ==
		       e->pos) {
			/* acquire pairs with the release of closed, which the producer stores
			 * after its last head: one more look at head then sees every message */
			if (atomic_load_explicit(&r->closed, memory_order_acquire)) {
				e->other = atomic_load_explicit(&r->head, memory_order_acquire);
				if (e->other == e->pos)
					return 0;
				break;
			}
			ring_relax();
		}
		if (e->other - e->pos > e->nslots)
			return -EPROTO; /* a head behind tail, or more than the ring holds */
	}
	memcpy(buf, e->slots + (e->pos & e->mask) * e->slot, e->msg);
	/* release: the copy out of the slot happens before the producer's acquire of
	 * tail lets it overwrite the slot */
	atomic_store_explicit(&r->tail, ++e->pos, memory_order_release);
	return (ssize_t)e->msg;
}

void shmkit__bench_ring_close(struct ring_end *e)
{
	/* release: pairs with the consumer's acquire of closed (see recv) */
	atomic_store_explicit(&e->r->closed, 1, memory_order_release);
}
