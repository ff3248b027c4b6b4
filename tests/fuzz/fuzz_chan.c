/* Fuzz target: hostile bytes over a channel's control block and ring, then the
 * consumer's path (open, recv, peek, release, peek_next, release_to) and the producer's (open, send), all
 * with timeout 0. Every call must return a documented value and never touch memory
 * outside the segment; a violation aborts.
 *
 * libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ibuild/include \
 *                 tests/fuzz/fuzz_chan.c build/libshmkit.a -o fuzz_chan && ./fuzz_chan
 * Under gcc, tests/test_chan_corrupt.c links this file and replays seeded random
 * inputs, tests/test_fuzz_chan.c its seed corpus.
 *
 * Input: byte 0 selects operations (an odd length also turns on poll mode); then
 * patches of [u16 offset][u8 n][n bytes], applied to the data area (control block and
 * ring) at offset % area size. Offsets with bit 15 set are applied after the consumer
 * opened, the others before. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "fuzz_common.h"
#include "fuzz_targets.h"

static char fz_name[64];
unsigned char fz_snapshot[FZ_AREA];
static shmkit_seg *fz_seg; /* a plain view of the segment, to patch it */
int fz_state;              /* 0: not set up, 1: ready, -1: setup failed */

void fz_cleanup(void)
{
	if (fz_seg) {
		shmkit_seg_close(fz_seg);
		fz_seg = NULL;
		shmkit_seg_unlink(fz_name, 0);
	}
}

/* A realistic starting point: a few laps done, a pad, messages of several sizes
 * committed, some of them consumed; then both ends closed. */
static int fz_setup(void)
{
	shmkit_chan *p, *c;
	unsigned char buf[FZ_CAP / 2];
	snprintf(fz_name, sizeof fz_name, "/shmkit-fuzz-%d", (int)getpid());
	shmkit_seg_unlink(fz_name, 0);
	if (shmkit_chan_open(fz_name, SHMKIT_CHAN_PRODUCER, FZ_CAP, 0,
			     SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &p) < 0)
		return -1;
	if (shmkit_chan_open(fz_name, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &c) < 0) {
		shmkit_chan_close(p);
		shmkit_seg_unlink(fz_name, 0);
		return -1;
	}
	memset(buf, 0xa5, sizeof buf);
	for (unsigned i = 0; i < 60; i++) {
		size_t len = 1 + (i * 397u) % 700u;
		while (shmkit_chan_send(p, buf, len, 0) == -EAGAIN)
			shmkit_chan_recv(c, buf, sizeof buf, 0);
		if (i % 3 == 0)
			shmkit_chan_recv(c, buf, sizeof buf, 0);
	}
	shmkit_chan_close(c);
	shmkit_chan_close(p);
	if (shmkit_seg_open(fz_name, SHMKIT_KIND_CHAN, 0, 0, 0, &fz_seg) < 0 ||
	    shmkit_seg_size(fz_seg) != FZ_AREA) {
		fz_cleanup();
		return -1;
	}
	memcpy(fz_snapshot, shmkit_seg_data(fz_seg), FZ_AREA);
	atexit(fz_cleanup);
	return 0;
}

static void fz_patch(const uint8_t *data, size_t size, int phase)
{
	fuzz_patch(shmkit_seg_data(fz_seg), FZ_AREA, data, size, phase);
}

static void fz_check(int cond)
{
	if (!cond)
		abort();
}

static void fz_consumer(shmkit_chan *c, unsigned ops)
{
	static unsigned char buf[FZ_CAP];
	const unsigned char *ring = (const unsigned char *)shmkit_seg_data(shmkit_chan_seg(c)) + FZ_RING_OFF;
	for (unsigned k = 0; k < 64; k++) {
		ssize_t r;
		unsigned op = (ops >> (k % 4 * 2)) & 3u;
		if (op == 1) {
			const void *b;
			size_t len;
			r = shmkit_chan_peek(c, &b, &len, 0);
			if (r > 0) {
				const unsigned char *pb = b;
				fz_check((size_t)r == len && len <= FZ_CAP / 2);
				fz_check(pb > ring && pb + len <= ring + FZ_CAP);
				memcpy(buf, pb, len);
				fz_check(shmkit_chan_release(c) == 0);
			}
		} else if (op == 3) {
			/* Peek up to four ahead, then release them: nothing changes the ring
			 * in between, so the release must succeed. */
			const void *b;
			size_t len;
			uint64_t pos, last = 0;
			unsigned n = 0;
			while (n < 1 + k % 4 && (r = shmkit_chan_peek_next(c, &b, &len, &pos, 0)) > 0) {
				const unsigned char *pb = b;
				fz_check((size_t)r == len && len <= FZ_CAP / 2);
				fz_check(pb > ring && pb + len <= ring + FZ_CAP);
				fz_check(n == 0 || pos > last);
				memcpy(buf, pb, len);
				last = pos;
				n++;
			}
			/* Poisoned meanwhile: every call, this one too, says so. */
			if (n > 0)
				fz_check(shmkit_chan_release_to(c, last) == (r == -EPROTO ? -EPROTO : 0));
		} else {
			size_t cap = op == 2 ? 16 : sizeof buf;
			r = shmkit_chan_recv(c, buf, cap, 0);
			if (r == -EMSGSIZE) {
				fz_check(op == 2);
				continue;
			}
			fz_check(r <= (ssize_t)cap);
		}
		fz_check(r > 0 || r == 0 || r == -EAGAIN || r == -EPROTO || r == -EPIPE);
		if (r == -EPROTO) {
			/* Once corrupt, the handle stays poisoned. */
			fz_check(shmkit_chan_recv(c, buf, sizeof buf, 0) == -EPROTO);
			break;
		}
		if (r <= 0)
			break;
	}
	struct shmkit_chan_stats st;
	fz_check(shmkit_chan_stats(c, &st) == 0 && st.used <= st.capacity);
}

static void fz_producer(unsigned ops)
{
	static unsigned char buf[FZ_CAP / 2];
	shmkit_chan *p;
	int r = shmkit_chan_open(fz_name, SHMKIT_CHAN_PRODUCER, 0, 0, 0, &p);
	fz_check(r == 0 || r == -EPROTO || r == -EBUSY);
	if (r < 0)
		return;
	for (unsigned k = 0; k < 16; k++) {
		size_t len = 1 + (k * 131u + ops) % (FZ_CAP / 2);
		if (k & 1) {
			void *q;
			r = shmkit_chan_reserve(p, len, 0, &q);
			if (r == 0) {
				memset(q, (int)k, len);
				fz_check(shmkit_chan_commit(p, len) == 0);
			}
		} else {
			r = shmkit_chan_send(p, buf, len, 0);
		}
		fz_check(r == 0 || r == -EAGAIN || r == -EPROTO || r == -EPIPE);
		if (r < 0)
			break;
	}
	shmkit_chan_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_state == 0)
		fz_state = fz_setup() == 0 ? 1 : -1;
	if (fz_state < 0 || size == 0)
		return 0;
	unsigned ops = data[0];
	memcpy(shmkit_seg_data(fz_seg), fz_snapshot, FZ_AREA);
	fz_patch(data, size, 0);
	shmkit_chan *c;
	int r = shmkit_chan_open(fz_name, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &c);
	/* -EBUSY: a patched role word that happens to name a live process. */
	fz_check(r == 0 || r == -EPROTO || r == -EBUSY);
	if (r == 0) {
		fz_patch(data, size, 1);
		/* Odd sizes: poll mode, which reads the producer's recorded pid (a hostile
		 * one must never get a pidfd trusted, nor crash). */
		if (size & 1)
			fz_check(shmkit_chan_fd(c) >= 0);
		fz_consumer(c, ops | (unsigned)size << 8);
		if (ops & 0x80)
			fz_producer(ops);
		shmkit_chan_close(c);
	} else if (ops & 0x80) {
		fz_producer(ops);
	}
	return 0;
}
