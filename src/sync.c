/* shmkit — robust process-shared mutex and futex event counter. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <shmkit/sync.h>
#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

_Static_assert(sizeof(shmkit_mutex) == 64, "shmkit_mutex is part of the segment format");
_Static_assert(sizeof(pthread_mutex_t) <= 64, "pthread_mutex_t does not fit shmkit_mutex");
_Static_assert(sizeof(shmkit_event) == 64, "shmkit_event is part of the segment format");
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
		       _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
	       "event words are accessed as atomics");

int shmkit_mutex_init(shmkit_mutex *m)
{
	pthread_mutexattr_t a;
	int r;
	if (!m)
		return -EINVAL;
	/* Start from zero bytes: glibc's robust list code reads fields that init leaves
	 * alone on some versions, and memory reused from an old segment may hold junk. */
	memset(m, 0, sizeof *m);
	if ((r = pthread_mutexattr_init(&a)))
		return -r;
	if ((r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) ||
	    (r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) ||
	    (r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK)) ||
	    (r = pthread_mutex_init(&m->u.m, &a))) {
		pthread_mutexattr_destroy(&a);
		return -r;
	}
	pthread_mutexattr_destroy(&a);
	return 0;
}

/* timeout_ns >= 0. A zero timeout is a lock attempt with a deadline already past,
 * never pthread_mutex_trylock(): glibc 2.36's trylock of a robust mutex that is not
 * recoverable returns ENOTRECOVERABLE but leaves the lock word holding our tid, so the
 * mutex stays locked for good; the timed paths unlock before they report it. */
static int timed_lock(pthread_mutex_t *m, int64_t timeout_ns)
{
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer (gcc 12) does not intercept pthread_mutex_clocklock, so it would
	 * see our unlocks as unlocks of a free mutex; timedlock it does intercept. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
	if (timeout_ns > INT64_MAX - now)
		return pthread_mutex_lock(m);
	int64_t t = now + timeout_ns;
	ts.tv_sec = t / SHMKIT_SEC;
	ts.tv_nsec = t % SHMKIT_SEC;
	int r = pthread_mutex_timedlock(m, &ts);
	/* Its interceptor records the lock only on 0, though EOWNERDEAD also locks. */
	if (r == EOWNERDEAD)
		__tsan_mutex_pre_lock(m, 0), __tsan_mutex_post_lock(m, 0, 0);
	return r;
#else
	/* Timed out against CLOCK_MONOTONIC, so a wall-clock jump neither shortens nor
	 * stretches the wait. */
	int64_t dl = timeout_ns ? shmkit__deadline(timeout_ns) : shmkit__now_ns();
	if (dl < 0)
		return pthread_mutex_lock(m);
	struct timespec ts = {dl / SHMKIT_SEC, dl % SHMKIT_SEC};
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#endif
}

int shmkit_mutex_lock(shmkit_mutex *m, int64_t timeout_ns)
{
	int r;
	if (!m)
		return -EINVAL;
	if (timeout_ns < 0) {
		r = pthread_mutex_lock(&m->u.m);
	} else {
		r = timed_lock(&m->u.m, timeout_ns);
		if (timeout_ns == 0 && r == ETIMEDOUT)
			r = EBUSY; /* held: as trylock reports it */
	}
	return -r;
}

int shmkit_mutex_consistent(shmkit_mutex *m)
{
	if (!m)
		return -EINVAL;
	return -pthread_mutex_consistent(&m->u.m);
}

int shmkit_mutex_unlock(shmkit_mutex *m)
{
	if (!m)
		return -EINVAL;
	return -pthread_mutex_unlock(&m->u.m);
}

static _Atomic uint32_t *seq_of(const shmkit_event *ev)
{
	return (_Atomic uint32_t *)&ev->seq;
}

static _Atomic uint32_t *waiters_of(const shmkit_event *ev)
{
	return (_Atomic uint32_t *)&ev->waiters;
}

void shmkit_event_init(shmkit_event *ev)
{
	memset(ev, 0, sizeof *ev);
}

uint32_t shmkit_event_prepare(const shmkit_event *ev)
{
	/* Acquire pairs with the signaller's increment: a caller that then finds its
	 * condition false and waits cannot miss a signal sent after this load. */
	return atomic_load_explicit(seq_of(ev), memory_order_acquire);
}

int shmkit_event_wait(shmkit_event *ev, uint32_t seen, int64_t timeout_ns)
{
	if (!ev)
		return -EINVAL;
	if (atomic_load_explicit(seq_of(ev), memory_order_acquire) != seen)
		return 0;
	if (timeout_ns == 0)
		return -EAGAIN;
	int64_t deadline = shmkit__deadline(timeout_ns);
	/* The sleeper handshake, waiter side: announce ourselves, then recheck seq. Both
	 * seq_cst, pairing with the signaller's seq_cst increment then waiters load: either
	 * it sees our count and wakes us, or we see its increment and do not sleep. */
	atomic_fetch_add_explicit(waiters_of(ev), 1, memory_order_seq_cst);
	int r = 0;
	if (atomic_load_explicit(seq_of(ev), memory_order_seq_cst) == seen) {
		r = shmkit__futex_wait(seq_of(ev), seen, deadline);
		if (r == -ETIMEDOUT && atomic_load_explicit(seq_of(ev), memory_order_acquire) != seen)
			r = 0;
	}
	atomic_fetch_sub_explicit(waiters_of(ev), 1, memory_order_relaxed);
	return r;
}

int shmkit_event_signal(shmkit_event *ev, int all)
{
	if (!ev)
		return -EINVAL;
	/* Signaller side of the handshake (see shmkit_event_wait): publish, then look. */
	atomic_fetch_add_explicit(seq_of(ev), 1, memory_order_seq_cst);
	if (atomic_load_explicit(waiters_of(ev), memory_order_seq_cst) == 0)
		return 0;
	return shmkit__futex_wake(seq_of(ev), all ? INT32_MAX : 1);
}
