/* What the channel tests (tests/test_chan_*.c, one program per area) share: segment
 * names removed at exit even on failure, the processes' shared flags, and messages
 * whose length and content follow from their sequence number, sent and received with a
 * random mix of every call. Header-only, as common.h is: each program is one unit. */
#ifndef SHMKIT_TEST_CHAN_COMMON_H
#define SHMKIT_TEST_CHAN_COMMON_H

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#include "common.h"
#include "internal.h"

#define C_CREATE (SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL)
#define P SHMKIT_CHAN_PRODUCER
#define C SHMKIT_CHAN_CONSUMER
#define O SHMKIT_CHAN_OBSERVER

/* ---- housekeeping: every segment we create is removed at exit, even on failure ---- */

static pid_t main_pid;
static char names[64][128];
static unsigned sysv_of[64];
static int n_names;

static inline const char *track(const char *tag, unsigned sysv)
{
	const char *n = t_name(tag);
	if (n_names < 64) {
		snprintf(names[n_names], sizeof names[0], "%s", n);
		sysv_of[n_names++] = sysv;
	}
	return n;
}

static inline void cleanup(void)
{
	if (getpid() != main_pid)
		return;
	for (int i = 0; i < n_names; i++)
		shmkit_seg_unlink(names[i], sysv_of[i]);
}

static inline struct shmkit_chan_stats stats_of(const shmkit_chan *ch)
{
	struct shmkit_chan_stats st;
	CHECK_OK(shmkit_chan_stats(ch, &st));
	return st;
}

/* Shared memory for the processes of one test (counters, flags, times). */
struct shared {
	_Atomic uint64_t committed; /* messages the producer saw accepted */
	_Atomic int flag;
	_Atomic int64_t t0;
	_Atomic int64_t cpu_ns;
};

static inline struct shared *shared_new(void)
{
	struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED);
	memset(s, 0, sizeof *s);
	return s;
}

/* ---- messages: length and content derived from the sequence number ---- */

#define PAT_SIZE (1u << 21)
#define PAT_SPAN (PAT_SIZE - (1u << 20)) /* payloads up to 1 MiB + 8 bytes */
static unsigned char pat[PAT_SIZE];
static size_t min_len = 1; /* raised where every message must carry its number */
static int retry_epipe;    /* producers wait for a successor when the consumer dies */
static int big_msgs;       /* a third of the messages of any size up to the maximum */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Mostly small, a good share up to 2 KiB, a few within 64 bytes of the maximum. */
static inline size_t msg_len(uint64_t seq, size_t max)
{
	uint64_t h = mix64(seq ^ UINT64_C(0x5eed));
	unsigned r = (unsigned)(h % 1000);
	size_t n;
	if (big_msgs && r < 333)
		n = 1 + (size_t)((h >> 32) % max);
	else if (r < 3)
		n = max - (size_t)((h >> 32) % 64);
	else if (r < 300)
		n = 1 + (size_t)((h >> 32) % 2048);
	else
		n = 1 + (size_t)((h >> 32) % 200);
	if (n < min_len)
		n = min_len;
	return n > max ? max : n;
}

static inline void fill(uint64_t seq, unsigned char *b, size_t len)
{
	memcpy(b, &seq, len < 8 ? len : 8);
	if (len > 8)
		memcpy(b + 8, pat + mix64(seq) % PAT_SPAN, len - 8);
}

/* The message must be exactly the one numbered seq: length, number, content. */
static inline int verify(uint64_t seq, const unsigned char *b, size_t len, size_t max)
{
	if (len != msg_len(seq, max))
		return 0;
	if (memcmp(b, &seq, len < 8 ? len : 8) != 0)
		return 0;
	return len <= 8 || memcmp(b + 8, pat + mix64(seq) % PAT_SPAN, len - 8) == 0;
}

#define CHECK_MSG(seq, b, len, max)                                                        \
	do {                                                                               \
		if (!verify((seq), (b), (size_t)(len), (max))) {                           \
			fprintf(stderr, "%s:%d: message %llu wrong (len %zu, want %zu)\n",    \
				__FILE__, __LINE__, (unsigned long long)(seq), (size_t)(len), \
				msg_len((seq), (max)));                                    \
			exit(T_FAIL);                                                      \
		}                                                                          \
	} while (0)

/* Send messages first..n-1 with a random mix of send, reserve/commit (sometimes
 * reserving more than it commits), sendv batches, and non-blocking attempts.
 * @committed: updated after each accepted message. Returns the next sequence
 * number, which is n unless a call failed with @stop_err. */
static inline uint64_t produce(shmkit_chan *p, uint64_t first, uint64_t n, uint64_t seed, size_t max,
			_Atomic uint64_t *committed, int stop_err)
{
	unsigned char *tmp = malloc(max);
	unsigned char *vb[16];
	struct iovec iov[16];
	CHECK(tmp != NULL);
	for (int i = 0; i < 16; i++) {
		vb[i] = malloc(max);
		CHECK(vb[i] != NULL);
	}
	uint64_t rng = seed | 1, seq = first;
	while (seq < n) {
		uint64_t x = t_rand(&rng);
		int64_t to = (x >> 40) % 16 == 0 ? 0 : -1;
		size_t len = msg_len(seq, max);
		int r;
		unsigned mode = (unsigned)(x % 8);
		if (mode < 3) {
			fill(seq, tmp, len);
			r = shmkit_chan_send(p, tmp, len, to);
			if (r == 0)
				seq++;
		} else if (mode < 6) {
			size_t extra = (x >> 16) % 3 == 0 ? (size_t)((x >> 20) % 100) : 0;
			if (extra > max - len)
				extra = max - len;
			void *q;
			r = shmkit_chan_reserve(p, len + extra, to, &q);
			if (r == 0) {
				fill(seq, q, len);
				CHECK_OK(shmkit_chan_commit(p, len));
				seq++;
			}
		} else {
			int k = 1 + (int)((x >> 8) % 16);
			if ((uint64_t)k > n - seq)
				k = (int)(n - seq);
			for (int i = 0; i < k; i++) {
				iov[i].iov_len = msg_len(seq + (uint64_t)i, max);
				iov[i].iov_base = vb[i];
				fill(seq + (uint64_t)i, vb[i], iov[i].iov_len);
			}
			r = shmkit_chan_sendv(p, iov, k, to);
			if (r > 0) {
				CHECK(r <= k);
				seq += (uint64_t)r;
				r = 0;
			}
		}
		if (r == -EAGAIN && to == 0)
			continue;
		if (r == stop_err && stop_err != 0)
			break;
		if (r == -EPIPE && retry_epipe) {
			t_nap_ms(1);
			continue;
		}
		CHECK_OK(r);
		if (committed)
			atomic_store_explicit(committed, seq, memory_order_release);
	}
	free(tmp);
	for (int i = 0; i < 16; i++)
		free(vb[i]);
	return seq;
}

/* Receive with a random mix of recv, peek/release, too-small buffers and
 * non-blocking attempts, checking each message against *seq. Returns 1 when @limit
 * was reached, else the final result (0 at end-of-stream, or the error). */
static inline ssize_t consume(shmkit_chan *c, uint64_t *seq, uint64_t limit, uint64_t seed, size_t max)
{
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	uint64_t rng = seed | 1;
	ssize_t r = 0;
	while (*seq < limit) {
		uint64_t x = t_rand(&rng);
		int64_t to = (x >> 40) % 16 == 0 ? 0 : -1;
		unsigned mode = (unsigned)(x % 8);
		if (mode < 4) {
			size_t cap = mode == 0 ? 1 + (size_t)((x >> 8) % 64) : max;
			r = shmkit_chan_recv(c, buf, cap, to);
			if (r == -EMSGSIZE) {
				CHECK(msg_len(*seq, max) > cap);
				continue;
			}
			if (r > 0)
				CHECK_MSG(*seq, buf, r, max);
		} else {
			const void *b;
			size_t len;
			r = shmkit_chan_peek(c, &b, &len, to);
			if (r > 0) {
				CHECK_EQ(r, len);
				CHECK_MSG(*seq, b, len, max);
				if (mode == 5) { /* peeking again gives the same message */
					const void *b2;
					size_t len2;
					CHECK_EQ(shmkit_chan_peek(c, &b2, &len2, 0), r);
					CHECK(b2 == b && len2 == len);
				}
				CHECK_OK(shmkit_chan_release(c));
			}
		}
		if (r == -EAGAIN && to == 0)
			continue;
		if (r <= 0)
			break;
		(*seq)++;
		r = 1;
	}
	free(buf);
	return r;
}

static inline int poll_in(int fd, int ms)
{
	struct pollfd pf = {fd, POLLIN, 0};
	int r = poll(&pf, 1, ms);
	return r == 1 && (pf.revents & POLLIN);
}


/* Every program's first call: its segments are removed at exit, the pattern messages
 * are cut from is filled. */
static inline void chan_test_init(void)
{
	main_pid = getpid();
	atexit(cleanup);
	uint64_t s = 42;
	for (size_t i = 0; i < PAT_SIZE; i += 8) {
		uint64_t x = t_rand(&s);
		memcpy(pat + i, &x, 8);
	}
}

#endif
