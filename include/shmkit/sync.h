/* shmkit — synchronization objects that live inside shared memory.
 *
 * Both are fixed-size structs a user may embed in a segment; their layout is part of
 * the segment format. Fields are private: use the functions.
 */
#ifndef SHMKIT_SYNC_H
#define SHMKIT_SYNC_H

#include <pthread.h>
#include <stdint.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A process-shared, robust mutex (a glibc robust pthread mutex underneath): when the
 * owner dies holding it, the next locker gets -EOWNERDEAD instead of a deadlock.
 * 64 bytes, 8-byte aligned; zero-filled memory is NOT a valid mutex: call init, in
 * the shmkit_seg_open_init() initializer when the mutex lives in a segment, so that
 * no opener can use it before it is initialized. */
typedef struct shmkit_mutex {
	union {
		pthread_mutex_t m;        /**< private */
		unsigned char bytes[64];  /**< fixes the size in the segment format */
	} u;
} shmkit_mutex;

/** shmkit_mutex_init() - initialize a mutex in shared memory, once, before anyone
 * else uses it (normally by a segment's creator). Returns 0 or -errno. Since 0.1. */
SHMKIT_API int shmkit_mutex_init(shmkit_mutex *m);

/** shmkit_mutex_lock() - lock, waiting at most @timeout_ns (0: try once; <0: forever).
 * Returns 0 when locked; -EOWNERDEAD when locked but the previous owner died holding
 * it: the caller must repair the protected state, then call shmkit_mutex_consistent()
 * before unlocking (unlocking without it makes the mutex unusable: -ENOTRECOVERABLE);
 * -EBUSY (timeout 0 and held), -ETIMEDOUT, -ENOTRECOVERABLE, -EDEADLK (already held by
 * this thread), -EINVAL. Blocks. Thread- and process-safe. Since 0.1. */
SHMKIT_API int shmkit_mutex_lock(shmkit_mutex *m, int64_t timeout_ns);

/** shmkit_mutex_consistent() - after -EOWNERDEAD and repair, mark the mutex usable.
 * Returns 0 or -EINVAL (not in the owner-died state, or not held). Since 0.1. */
SHMKIT_API int shmkit_mutex_consistent(shmkit_mutex *m);

/** shmkit_mutex_unlock() - unlock. Returns 0 or -EPERM (not the owner). Since 0.1. */
SHMKIT_API int shmkit_mutex_unlock(shmkit_mutex *m);

/** An event counter on a futex, with a count of sleepers so that signalling costs no
 * system call when nobody sleeps. 64 bytes (one cache line). Zero-filled memory is a
 * valid event. A sleeper killed while waiting leaves the count one too high, which
 * only costs later signals a futex call; it never loses a wake-up. */
typedef struct shmkit_event {
	uint32_t seq;          /**< private: bumped by every signal (atomic) */
	uint32_t waiters;      /**< private: processes inside shmkit_event_wait (atomic) */
	uint32_t reserved[14]; /**< private */
} shmkit_event;

/** shmkit_event_init() - reset an event to zero. Since 0.1. */
SHMKIT_API void shmkit_event_init(shmkit_event *ev);

/** shmkit_event_prepare() - read the event's counter before checking the condition
 * to wait for; pass the value to shmkit_event_wait(). Never blocks. Since 0.1. */
SHMKIT_API uint32_t shmkit_event_prepare(const shmkit_event *ev);

/** shmkit_event_wait() - sleep until the event is signalled after @seen was read.
 * @seen: value from shmkit_event_prepare(); returns at once if the counter moved.
 * @timeout_ns: 0 never sleeps (-EAGAIN if unchanged), <0 forever, >0 nanoseconds.
 * Returns 0 (signalled, or spuriously woken: recheck your condition), -EAGAIN,
 * -ETIMEDOUT, -EINTR (a signal handler ran; with SA_RESTART, a wait without timeout
 * resumes instead, but a timed one still returns -EINTR). Blocks. Thread- and process-safe. Since 0.1. */
SHMKIT_API int shmkit_event_wait(shmkit_event *ev, uint32_t seen, int64_t timeout_ns);

/** shmkit_event_signal() - bump the counter and wake one (@all = 0) or all sleepers.
 * A single atomic increment and load when nobody sleeps. Returns the number of
 * processes woken (>= 0), or -errno from the futex. Never blocks. Since 0.1. */
SHMKIT_API int shmkit_event_signal(shmkit_event *ev, int all);

#ifdef __cplusplus
}
#endif
#endif
