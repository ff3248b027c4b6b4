/* shmkit — small helpers every layer uses: clocks, futexes, errors,
 * version. The -errno syscall wrappers live here and nowhere else. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <shmkit/base.h>
#include "internal.h"

int64_t shmkit__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

int64_t shmkit__deadline(int64_t timeout_ns)
{
	if (timeout_ns <= 0)
		return timeout_ns;
	int64_t now = shmkit__now_ns();
	/* A timeout so large that it overflows is as good as forever. */
	if (timeout_ns > INT64_MAX - now)
		return -1;
	return now + timeout_ns;
}

int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts, *tp = NULL;
	if (deadline_ns >= 0) {
		ts.tv_sec = deadline_ns / SHMKIT_SEC;
		ts.tv_nsec = deadline_ns % SHMKIT_SEC;
		tp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a wait that is
	 * interrupted and retried never stretches the caller's timeout. Not private: the
	 * word is shared between processes. */
	long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, tp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno; /* EAGAIN: the word already changed */
	return 0;
}

int shmkit__futex_wake(_Atomic uint32_t *word, int count)
{
	long r = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
}

const char *shmkit_strerror(int err)
{
	if (err == INT_MIN)
		return "Unknown error"; /* -INT_MIN is not an int */
	if (err < 0)
		err = -err;
	if (err == 0)
		return "Success";
	switch (err) {
	case EPROTO:
		return "Not a valid shmkit segment (bad or foreign header)";
	case EIDRM:
		return "Segment was deleted";
	case EADDRINUSE:
		return "System V key is used by a segment of another name";
	case EPIPE:
		return "Peer closed or died";
	case EOWNERDEAD:
		return "Previous lock owner died; state must be repaired";
	default:
		break;
	}
	/* strerror() may use a static buffer for unknown values; strerrordesc_np() never
	 * does and is thread-safe. */
	const char *s = strerrordesc_np(err);
	return s ? s : "Unknown error";
}

unsigned shmkit_version(void)
{
	return SHMKIT_VERSION;
}

const char *shmkit_version_string(void)
{
	return SHMKIT_VERSION_STRING;
}

#if defined(__SANITIZE_THREAD__)
/* See internal.h. Not inlined, not turned back into memcpy by the optimizer. */
__attribute__((no_sanitize_thread, noinline, optimize("no-tree-loop-distribute-patterns"))) void
shmkit__racy_copy(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const volatile unsigned char *s = src;
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
}
#endif
