/* shmkit — synchronization objects that live inside shared memory.
 *
 * Both are fixed-size structs a user may embed in a segment; their layout is part of
 * the segment format. Fields are private: use the functions.
 */
#ifndef SHMKIT_SYNC_H
#define SHMKIT_SYNC_H

#include <stdint.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A process-shared, robust mutex of shmkit's own: when the process holding it dies,
 * the next locker gets -EOWNERDEAD instead of a deadlock, and in every pid namespace
 * that shares /dev/shm (death is proved by the holder's liveness token, never a pid).
 * Every word is checked before use and none is ever used as an address, so a peer that
 * scribbles over it can make calls fail (-EINVAL, -ENOTRECOVERABLE, -EPERM, a stolen
 * or lost lock) but never crash or hang a caller past its timeout, nor make it write
 * outside these 64 bytes.
 * 64 bytes, 8-byte aligned; zero-filled memory is NOT a valid mutex: call init, in
 * the shmkit_seg_open_init() initializer when the mutex lives in a segment, so that
 * no opener can use it before it is initialized. All fields are private (accessed
 * atomically by the functions); their meaning is documented in src/sync.c. */
typedef struct shmkit_mutex {
	uint64_t owner;       /**< private: the holder process's liveness token, 0 = free */
	uint32_t seq;         /**< private: bumped by every unlock; the sleepers' futex */
	uint32_t waiters;     /**< private: lockers that may be asleep */
	uint32_t tid;         /**< private: the holder thread's id, 0 while being taken */
	int32_t pid;          /**< private: the holder's pid, for people to read */
	uint32_t state;       /**< private: consistent, owner died, not recoverable */
	uint32_t magic;       /**< private: set by shmkit_mutex_init() */
	uint32_t reserved[8]; /**< private: zero */
} shmkit_mutex;

/** shmkit_mutex_init() - initialize a mutex in shared memory, once, before anyone
 * else uses it (normally by a segment's creator); all 64 bytes are rewritten. Also the
 * only way back from -ENOTRECOVERABLE or -EINVAL (bad magic), while nobody uses it.
 * Returns 0, or -EINVAL (@m NULL). Never blocks. Since 0.1. */
SHMKIT_API int shmkit_mutex_init(shmkit_mutex *m);

/** shmkit_mutex_lock() - lock, waiting at most @timeout_ns (0: try once; <0: forever;
 *   measured on CLOCK_MONOTONIC; a timeout too large for the clock waits forever).
 * Returns 0 when locked; -EOWNERDEAD when locked but the previous owner's process died
 * holding it (or the owner word held no live process's token): the caller must repair
 * the protected state, then call shmkit_mutex_consistent() before unlocking (unlocking
 * without it makes the mutex unusable: -ENOTRECOVERABLE);
 * -EBUSY (timeout 0 and held by a live process), -ETIMEDOUT, -ENOTRECOVERABLE (also
 * when the state word holds a value no mutex can have), -EDEADLK (already held by this
 * thread), -EINVAL (@m NULL, not initialized, or its magic word overwritten), or the
 * -errno of making this process's liveness token (first lock after start or fork).
 * A holder's death is noticed by a waiter at most 100 ms after it (the longest sleep
 * slice) plus a liveness check; a try (timeout 0) checks at once. A thread that exits
 * holding the mutex while its process lives is dead to it the same way. Blocks. Thread- and
 * process-safe; a fork child does not own its parent's locks. Since 0.1. */
SHMKIT_API int shmkit_mutex_lock(shmkit_mutex *m, int64_t timeout_ns);

/** shmkit_mutex_consistent() - after -EOWNERDEAD and repair, mark the mutex usable.
 * Returns 0 or -EINVAL (@m NULL or not initialized, not in the owner-died state, or
 * not held by this thread). Never blocks. Since 0.1. */
SHMKIT_API int shmkit_mutex_consistent(shmkit_mutex *m);

/** shmkit_mutex_unlock() - unlock a mutex this thread holds. Returns 0, -EPERM (not
 * held by this thread, or its owner word was overwritten while held), or -EINVAL (@m
 * NULL or not initialized). Never blocks; wakes one sleeper. Since 0.1. */
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

/** shmkit_event_init() - reset an event to zero (@ev NULL: nothing). Since 0.1. */
SHMKIT_API void shmkit_event_init(shmkit_event *ev);

/** shmkit_event_prepare() - read the event's counter before checking the condition
 * to wait for; pass the value to shmkit_event_wait(). Returns 0 for a NULL @ev (the
 * wait then reports -EINVAL). Never blocks. Since 0.1. */
SHMKIT_API uint32_t shmkit_event_prepare(const shmkit_event *ev);

/** shmkit_event_wait() - sleep until the event is signalled after @seen was read.
 * @seen: value from shmkit_event_prepare(); returns at once if the counter moved.
 * @timeout_ns: 0 never sleeps (-EAGAIN if unchanged), <0 forever, >0 nanoseconds.
 * Returns 0 (signalled, or spuriously woken: recheck your condition), -EAGAIN,
 * -ETIMEDOUT, -EINVAL (NULL @ev), -EINTR (a signal handler ran; with SA_RESTART, a wait without timeout
 * resumes instead, but a timed one still returns -EINTR). Blocks. Thread- and process-safe. Since 0.1. */
SHMKIT_API int shmkit_event_wait(shmkit_event *ev, uint32_t seen, int64_t timeout_ns);

/** shmkit_event_signal() - bump the counter and wake one (@all = 0) or all sleepers.
 * A single atomic increment and load when nobody sleeps. Returns the number of
 * processes woken (>= 0), -EINVAL (NULL @ev), or -errno from the futex. Never
 * blocks. Since 0.1. */
SHMKIT_API int shmkit_event_signal(shmkit_event *ev, int all);

#ifdef __cplusplus
}
#endif
#endif
