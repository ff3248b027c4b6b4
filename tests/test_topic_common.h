/* What the topic tests share: opening a handle that must open, the scale factor, and
 * self-checking messages that name their publisher and its sequence number.
 *
 * A message of publisher P numbered S carries the id (P << 40) | S in the format of
 * tests/common.h (t_msg_fill/t_msg_check): its first 8 bytes are the id, the next 8 a
 * checksum of the id, the length and the payload, then payload words that follow from
 * the id. Its length also follows from the id (t_msg_len), so one message alone says
 * who published it, which one it is, and whether any byte of it is wrong. */
#ifndef SHMKIT_TEST_TOPIC_COMMON_H
#define SHMKIT_TEST_TOPIC_COMMON_H

#include <poll.h>
#include <stdatomic.h>

#include "common.h"

/* 1 under ThreadSanitizer, which runs these tests 5-10 times slower than the release
 * build (AddressSanitizer about 2-3 times: it keeps the full counts). */
#if defined(__SANITIZE_THREAD__)
#define TP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TP_TSAN 1
#endif
#endif
#ifndef TP_TSAN
#define TP_TSAN 0
#endif

#define TP_CREATE (SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL)
#define TP_PUB SHMKIT_TOPIC_PUBLISHER
#define TP_SUB SHMKIT_TOPIC_SUBSCRIBER
#define TP_OBS SHMKIT_TOPIC_OBSERVER

#define TP_ID(pub, seq) (((uint64_t)(pub) << 40) | (uint64_t)(seq))
#define TP_PUB_OF(id) ((unsigned)((id) >> 40))
#define TP_SEQ_OF(id) ((id) & ((UINT64_C(1) << 40) - 1))

/* SHMKIT_TEST_SCALE multiplies the counts of the long tests (default 1; 0.1 allowed). */
static inline double tp_scale(void)
{
	const char *s = getenv("SHMKIT_TEST_SCALE");
	double f = s ? atof(s) : 1.0;
	return f > 0 ? f : 1.0;
}

/* @n scaled by SHMKIT_TEST_SCALE, at least @min. */
static inline long tp_scaled(long n, long min)
{
	double v = (double)n * tp_scale();
	return v < (double)min ? min : (long)v;
}

static inline shmkit_topic *tp_open_ok(const char *name, unsigned role, size_t cap, unsigned flags)
{
	shmkit_topic *t = NULL;
	CHECK_OK(shmkit_topic_open(name, role, cap, 0, flags, &t));
	CHECK(t != NULL);
	return t;
}

static inline shmkit_topic *tp_open_opts_ok(const char *name, unsigned role,
					     const struct shmkit_topic_opts *o)
{
	shmkit_topic *t = NULL;
	CHECK_OK(shmkit_topic_open_opts(name, role, o, &t));
	CHECK(t != NULL);
	return t;
}

static inline struct shmkit_topic_stats tp_stats(const shmkit_topic *t)
{
	struct shmkit_topic_stats st;
	memset(&st, 0x5a, sizeof st);
	CHECK_OK(shmkit_topic_stats(t, &st));
	return st;
}

/* Length of message @id when the largest is @max. */
static inline size_t tp_len(uint64_t id, size_t max)
{
	return t_msg_len(id, max);
}

/* Fill @b with message @id (its length is tp_len(id, max)); returns the length. */
static inline size_t tp_fill(unsigned char *b, uint64_t id, size_t max)
{
	size_t len = tp_len(id, max);
	t_msg_fill(b, len, id);
	return len;
}

/* The id a received message claims, or UINT64_MAX when it is not intact (wrong
 * length, checksum or payload for the id it names). */
static inline uint64_t tp_check(const unsigned char *b, size_t len, size_t max)
{
	uint64_t id = t_msg_seq(b, len);
	if (len < T_MSG_MIN || !t_msg_check(b, len, id, max))
		return UINT64_MAX;
	return id;
}

/* 1 if @fd polls readable within @ms (0: now). */
static inline int tp_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	CHECK(r >= 0);
	return r == 1 && (p.revents & POLLIN);
}

/* Wait (bounded) until *@flag reaches @v. */
static inline void tp_await(_Atomic int *flag, int v, int seconds, const char *what)
{
	int64_t end = t_now_ns() + (int64_t)seconds * SHMKIT_SEC;
	while (atomic_load(flag) < v) {
		if (t_now_ns() > end) {
			fprintf(stderr, "timed out waiting for %s (%d < %d)\n", what,
				atomic_load(flag), v);
			exit(T_FAIL);
		}
		t_nap_ms(1);
	}
}

#endif
