/* shmkit — internal definitions shared by the layers. Never installed. */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <shmkit/seg.h>

#define SHMKIT_CACHELINE 64

#define SHMKIT_MAGIC UINT64_C(0x314b544d48530a89) /* "\x89\nSHMTK1" little-endian */
/* 2: the creator is named by its liveness token, not a pid and start time; flags word. */
#define SHMKIT_FORMAT 2u

/* Everything two processes must agree on to share a segment: the format, the word size
 * and the cache line we pad to. A build that differs in any of them refuses the other's
 * segments (-EPROTO) instead of misreading. Bits 16-23 held sizeof(pthread_mutex_t)
 * while the mutex was glibc's; they are 0 since shmkit_mutex is our own 64 bytes. */
#define SHMKIT_LAYOUT                                                                      \
	((SHMKIT_FORMAT << 24) | ((uint32_t)sizeof(long) << 8) | (uint32_t)SHMKIT_CACHELINE)

/* Where the data area starts: one page, so that users get page-aligned data. */
#define SHMKIT_DATA_OFF 4096u

/* The header at offset 0 of every non-raw segment.
 * The creator writes every field before it publishes state = READY with a release
 * store; openers read state with acquire and touch nothing else until it is READY, so
 * plain fields are read-only after that. Only the atomic ones change later: state
 * (READY -> DELETED, by any process deleting the segment) and used. */
struct shmkit__hdr {
	uint64_t magic;        /* SHMKIT_MAGIC */
	uint32_t layout;       /* SHMKIT_LAYOUT of the creator */
	uint32_t kind;         /* enum shmkit_kind */
	_Atomic uint32_t state; /* enum shmkit_state; see above */
	uint32_t hdr_size;     /* sizeof(struct shmkit__hdr) */
	uint64_t total_size;   /* bytes of the object; must equal fstat / shm_segsz */
	uint64_t data_off;     /* start of the data area, >= hdr_size, 64-aligned */
	uint64_t data_size;    /* data_off + data_size <= total_size */
	int32_t creator_pid;    /* for people to read; never proof of anything */
	uint32_t flags;         /* SHMKIT_HDR_* */
	uint64_t creator_token; /* the creator's liveness token (live.c); written first */
	int64_t ctime_ns;       /* CLOCK_REALTIME at creation */
	char name[SHMKIT_NAME_MAX + 1]; /* the name it was created under, NUL-terminated */
	_Atomic uint64_t used;  /* SHMKIT_KIND_DATA: 0 if never recorded (the whole data
	                         * area counts), else SHMKIT__USED_SET | the bytes in use.
	                         * Written by any writable handle (shmkit_seg_set_used(),
	                         * release, after the bytes it covers), read with acquire
	                         * by shmkit_seg_used(), which clamps it to data_size: a
	                         * peer may have written anything here. A reserved word
	                         * until 0.2 (zero), so older segments read "never". */
	uint8_t reserved[176];
};
_Static_assert(sizeof(struct shmkit__hdr) == 512, "segment header is 512 bytes");
_Static_assert(offsetof(struct shmkit__hdr, name) == 72, "header layout changed");
_Static_assert(offsetof(struct shmkit__hdr, used) == 328, "header layout changed");

/* In the header's used word: a length was recorded (so that 0 bytes differs from
 * never). */
#define SHMKIT__USED_SET (UINT64_C(1) << 63)

/* Header flags. */
#define SHMKIT_HDR_PERSIST 1u /* made with SHMKIT_SEG_PERSIST: gc never collects it */

/* The creator's hook: fill the data area before the segment becomes READY. */
typedef shmkit_seg_init_fn shmkit__init_fn;

/* shmkit_seg_open_init(), for the layers. */
int shmkit__seg_open(const char *name, unsigned kind, size_t size, unsigned mode, unsigned flags,
		     shmkit__init_fn init, void *arg, shmkit_seg **out);

/* The header of a non-raw segment, NULL for a raw one. */
struct shmkit__hdr *shmkit__seg_hdr(const shmkit_seg *seg);

/* Liveness (live.c). This process's token: a random nonzero id whose file
 * /dev/shm/.shmkit-live-<16 hex> it holds an OFD lock on, which the kernel drops at
 * death; made on first use and anew in a forked child. Returns 0 or -errno. */
int shmkit__live_token(uint64_t *tok);
/* 1 if the process owning tok is alive, 0 if it died or tok names no token (0,
 * garbage), -errno if it cannot be told. About three system calls: slow paths only. */
int shmkit__live_check(uint64_t tok);
/* A POSIX creator binds the segment behind seg_fd to its token (a hard link to the
 * token file named by the segment's inode), so that its liveness can be told without
 * trusting header words. Best effort. */
void shmkit__live_bind(int seg_fd);
/* The bound creator of the POSIX segment with inode seg_ino owned by seg_uid: 1 alive,
 * 0 dead, -ENOENT no binding, other -errno: cannot tell. */
int shmkit__live_owner(uint64_t seg_ino, uid_t seg_uid);
/* Remove the binding of a deleted segment (best effort). */
void shmkit__live_unbind(uint64_t seg_ino);


/* Monotonic clock in nanoseconds. */
int64_t shmkit__now_ns(void);
/* Deadline from a timeout: <0 stays <0 (forever), 0 stays 0 (no wait). */
int64_t shmkit__deadline(int64_t timeout_ns);

/* futex(2) on a 32-bit word shared between processes. Return 0 or -errno.
 * deadline_ns: absolute CLOCK_MONOTONIC, or < 0 for none. */
int shmkit__futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline_ns);
int shmkit__futex_wake(_Atomic uint32_t *word, int count);

/* Bounds a robust wait loop: pause the CPU briefly. */
static inline void shmkit__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A cheap counter for comparing short durations measured on one CPU: the TSC where
 * there is one (about 14 ns to read on a VM whose clock_gettime takes 36), else the
 * monotonic clock. Units are only comparable with each other. */
static inline uint64_t shmkit__ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return (uint64_t)shmkit__now_ns();
#endif
}

/* ---- the SIGBUS guard (guard.c) ---- */

/* Per thread, read by the SIGBUS handler: the low 16 bits count how deep the thread is
 * in guarded shmkit calls; the handler sets SHMKIT__GUARD_FAULT when it turns a
 * truncation into an error, and the outermost leave clears it. Written only by its
 * own thread (calls and handler). */
extern _Thread_local _Atomic uint32_t shmkit__guard_tls __attribute__((tls_model("initial-exec")));
#define SHMKIT__GUARD_FAULT (UINT32_C(1) << 16)
#define SHMKIT__GUARD_DEPTH (SHMKIT__GUARD_FAULT - 1)

/* Enter a guarded call. Plain moves (the signal fences only keep the compiler from
 * moving shared-memory accesses outside), and nothing to carry to the leave: the
 * channel's fast path has no register to spare. */
static inline void shmkit__guard_enter(void)
{
	uint32_t w = atomic_load_explicit(&shmkit__guard_tls, memory_order_relaxed);
	atomic_store_explicit(&shmkit__guard_tls, w + 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
}

/* Leave it: 1 if the guard turned a SIGBUS of this thread into an error since the
 * outermost enter (so a nested call that met none may answer 1 too: its caller fails
 * anyway). */
static inline int shmkit__guard_leave(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	uint32_t n = atomic_load_explicit(&shmkit__guard_tls, memory_order_relaxed) - 1;
	atomic_store_explicit(&shmkit__guard_tls, (n & SHMKIT__GUARD_DEPTH) ? n : 0,
			      memory_order_relaxed);
	return n >= SHMKIT__GUARD_FAULT;
}

/* A fast path that cannot afford the marker's two stores goes in this section: the
 * handler takes any fault of an instruction there as a guarded call's (it reads the
 * instruction's address from the signal context, on the architectures below). Such
 * code calls nothing while it touches shared memory, and learns of a truncation from
 * the replacement's header (DELETED). Elsewhere, and under ThreadSanitizer (whose
 * runtime makes the accesses), it uses the marker. The section's
 * bounds are kept out of the shared library's exports by src/shmkit.map. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
/* TSan makes every atomic access a runtime call and ASan every memcpy; without
 * optimization the fast path's inline helpers are calls of their own: in each case
 * the faulting instruction lies outside the section. */
#define SHMKIT__GUARD_BY_MARKER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SHMKIT__GUARD_BY_MARKER 1
#endif
#endif
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(SHMKIT__GUARD_BY_MARKER)
#define SHMKIT__GUARDED_CODE __attribute__((section("shmkit_guarded"), noinline))
#define SHMKIT__FAST_ENTER() ((void)0)
#define SHMKIT__FAST_LEAVE() ((void)0)
#else
#define SHMKIT__GUARDED_CODE
#define SHMKIT__FAST_ENTER() shmkit__guard_enter()
#define SHMKIT__FAST_LEAVE() ((void)shmkit__guard_leave())
#endif

/* Leave, and the call's result: -EFAULT if it met a truncation or seg (may be NULL)
 * is poisoned, else r. */
int64_t shmkit__guard_result(const shmkit_seg *seg, int64_t r);

/* The registry of mappings the handler may replace; see guard.c. */
struct shmkit__guard_slot;
/* Register a POSIX mapping (hdr: a shmkit header starts it). 0, or -ENOMEM. */
int shmkit__guard_add(void *base, size_t size, int prot, int hdr, struct shmkit__guard_slot **out);
/* Forget it; call before unmapping. NULL: nothing. */
void shmkit__guard_remove(struct shmkit__guard_slot *s);
/* 1 if the handler replaced the mapping (or is replacing it). NULL: 0. */
int shmkit__guard_poisoned(const struct shmkit__guard_slot *s);
/* The same for a handle (seg.c). */
int shmkit__seg_poisoned(const shmkit_seg *seg);

/* Copy out of shared memory that a writer may be changing meanwhile: a sequence-lock
 * reader's copy (blob, topic), whose race is detected and the copy discarded.
 * ThreadSanitizer would report that race, so under it the copy is an uninstrumented
 * byte loop (util.c); everywhere else it is memcpy. */
#if defined(__SANITIZE_THREAD__)
void shmkit__racy_copy(void *dst, const void *src, size_t n);
#else
#define shmkit__racy_copy memcpy
#endif

/* Turn a -errno return into the compat conventions: errno = e, -1. */
static inline int shmkit__compat_fail(int neg_err)
{
	errno = -neg_err;
	return -1;
}

#endif
