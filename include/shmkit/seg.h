/* shmkit — named shared-memory segments (POSIX shm_open or System V shmget).
 *
 * Every segment shmkit creates starts with a self-describing header (magic, layout
 * version, kind, sizes, creator, full name, state); opening validates all of it
 * against the real object before any access. SHMKIT_SEG_RAW maps objects without a
 * header, for programs that are not shmkit.
 */
#ifndef SHMKIT_SEG_H
#define SHMKIT_SEG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open segment: one mapping plus its descriptor or System V id. Opaque. */
typedef struct shmkit_seg shmkit_seg;

/** Longest segment name, in bytes, without the terminating NUL. */
#define SHMKIT_NAME_MAX 255

/** Flags of shmkit_seg_open(); unknown bits get -EINVAL. */
enum shmkit_seg_flags {
	SHMKIT_SEG_CREATE = 1u << 0, /**< create the segment if it does not exist */
	SHMKIT_SEG_EXCL = 1u << 1,   /**< with CREATE: fail with -EEXIST if it exists */
	SHMKIT_SEG_RDONLY = 1u << 2, /**< map read-only (cannot be combined with CREATE) */
	SHMKIT_SEG_SYSV = 1u << 3,   /**< System V backend (shmget) instead of POSIX */
	SHMKIT_SEG_RAW = 1u << 4,    /**< no shmkit header: the whole object is data */
	SHMKIT_SEG_PERSIST = 1u << 5, /**< with CREATE: shmkit gc never collects the
	                                * segment (data meant to outlive its creator, such
	                                * as a configuration blob). POSIX: the object's
	                                * sticky mode bit, which only its owner can change;
	                                * System V: a header flag */
};

/** What a segment holds; recorded in its header and checked at open. */
enum shmkit_kind {
	SHMKIT_KIND_ANY = 0,  /**< at open: accept any kind */
	SHMKIT_KIND_DATA = 1, /**< plain bytes, no structure */
	SHMKIT_KIND_BLOB = 2, /**< a shmkit_blob snapshot */
	SHMKIT_KIND_CHAN = 3, /**< a shmkit_chan message channel */
	SHMKIT_KIND_TOPIC = 4, /**< a shmkit_topic publish-subscribe ring (since 0.2) */
	SHMKIT_KIND_RAW = 255 /**< reported by shmkit_seg_stat() for SHMKIT_SEG_RAW segments */
};

/** Life cycle of a segment, in its header's state word. */
enum shmkit_state {
	SHMKIT_STATE_INIT = 0,   /**< the creator is still filling it in */
	SHMKIT_STATE_READY = 1,  /**< usable */
	SHMKIT_STATE_DELETED = 2 /**< deleted: every handle gets -EIDRM */
};

/** What shmkit_seg_stat() reports. */
struct shmkit_seg_info {
	unsigned sysv;            /**< 1: System V backend, 0: POSIX */
	unsigned kind;            /**< enum shmkit_kind (SHMKIT_KIND_RAW without header) */
	unsigned state;           /**< enum shmkit_state */
	uint64_t total_size;      /**< bytes of the whole object, header included */
	uint64_t data_size;       /**< bytes of the data area */
	int32_t creator_pid;      /**< 0 when unknown (raw segment) */
	int creator_alive;        /**< 1 alive, 0 dead, -1 unknown: proven by the kernel
	                           * (the creator's liveness token lock; System V: also
	                           * the creator pid as the kernel reports it), never by
	                           * a pid read from the header */
	int64_t ctime_ns;         /**< creation time, CLOCK_REALTIME ns; 0 when unknown */
	int shmid;                /**< System V id, -1 for POSIX */
	int32_t key;              /**< System V key, 0 for POSIX */
	uint32_t mode;            /**< permission bits of the object */
	uint32_t uid, gid;        /**< owner of the object */
	int32_t nattch;           /**< System V: processes attached; POSIX: -1 (unknown) */
	unsigned persistent;      /**< 1 if created with SHMKIT_SEG_PERSIST */
	char name[SHMKIT_NAME_MAX + 1]; /**< the segment's name */
	uint32_t layout;          /**< the segment header's layout word as found (compare
	                           * shmkit_seg_layout(SHMKIT_KIND_ANY)): reported even
	                           * when it is not this library's, with kind
	                           * SHMKIT_KIND_RAW then (inspect only); 0 without a
	                           * shmkit header, and for a SHMKIT_SEG_RAW handle.
	                           * Since 0.2 */
	uint32_t kind_layout;     /**< the layout version recorded in the kind's own
	                           * control block (channel, topic, blob) as found
	                           * (compare shmkit_seg_layout(kind)); 0 when the kind
	                           * has none (data, raw) or the header is not this
	                           * library's. Since 0.2 */
	uint32_t reserved[6];     /**< 0; room for later fields of a minor release */
};

/** shmkit_seg_open() - open, create, or create-or-open a named segment and map it.
 * @name: POSIX: "/name" or "name" (one component, no other '/'); System V: any string,
 *   hashed to a key (the header keeps the full name, so a key collision is reported,
 *   never shared); or "0x" and hex digits for a literal key, or "id:N" for the segment
 *   with System V id N: these reach segments other programs made (with SHMKIT_SEG_RAW;
 *   a raw segment may be created with a literal key, never with an id). At most
 *   SHMKIT_NAME_MAX bytes.
 * @kind: enum shmkit_kind recorded at creation; at open, must match unless ANY.
 * @size: data bytes. Required (> 0) when creating; when opening, 0 accepts any size and
 *   anything else must equal the segment's data size (RAW: at most its size).
 * @mode: permission bits at creation (0777 at most, else -EINVAL), applied exactly
 *   (not reduced by the umask); 0 means 0600. Otherwise not used when opening (but
 *   bits outside 0777 still get -EINVAL).
 * @flags: enum shmkit_seg_flags.
 * @out: receives the handle; NULL on failure.
 * Creation is race-free: the creator fills the header and publishes it "ready";
 * openers wait for that up to 2 s. The memory is reserved at creation (POSIX:
 * posix_fallocate), so a full /dev/shm fails here, not with SIGBUS later.
 * Returns 0, or -EINVAL (bad name, size, kind or flags; size mismatch), -ENAMETOOLONG,
 * -ENOENT (no such segment and no CREATE), -EEXIST (EXCL and it exists), -EACCES,
 * -EPROTO (not a shmkit segment, wrong kind, or a corrupt or foreign header),
 * -EADDRINUSE (System V key already used by a segment of another name),
 * -ETIMEDOUT (creator never finished), -ENOSPC, -ENOMEM, or another -errno of the
 * underlying calls. Thread-safe; may block up to 2 s while a creator finishes. Since 0.1. */
SHMKIT_API int shmkit_seg_open(const char *name, unsigned kind, size_t size, unsigned mode,
			       unsigned flags, shmkit_seg **out);

/** The creator's initializer for shmkit_seg_open_init(): fill the new data area
 * (@size bytes, zero-filled) before any other process can open the segment. Return 0,
 * or a negative errno to abandon the creation (the segment is removed). */
typedef int (*shmkit_seg_init_fn)(void *data, size_t size, void *arg);

/** shmkit_seg_open_init() - shmkit_seg_open() whose creator runs @init(data, size,
 * @arg) before publishing the segment, so openers never see it half initialized:
 * the place to shmkit_mutex_init() a mutex embedded in the segment. Only the process
 * that creates the segment calls @init; an opener does not. @init may be NULL.
 * Returns what shmkit_seg_open() returns, or @init's error. Since 0.1. */
SHMKIT_API int shmkit_seg_open_init(const char *name, unsigned kind, size_t size, unsigned mode,
				    unsigned flags, shmkit_seg_init_fn init, void *arg,
				    shmkit_seg **out);

/** shmkit_seg_inspect() - describe a segment by name without opening it for use.
 * @name: as shmkit_seg_open(); with SHMKIT_SEG_SYSV also "id:N" for the segment whose
 *   System V id is N (any System V segment, such as one ipcs lists).
 * @flags: 0 (POSIX) or SHMKIT_SEG_SYSV.
 * Never waits for a creator and never trusts the header beyond describing it: a
 * segment whose header is not a shmkit one is reported as SHMKIT_KIND_RAW; one still
 * being created reports SHMKIT_STATE_INIT. For System V, info->name is the name the
 * segment was created under, and info->nattch does not count the inspection itself. Returns 0, or the errors of shmkit_seg_open() (-ENOENT,
 * -EACCES, -EINVAL). Thread-safe. Since 0.1. */
SHMKIT_API int shmkit_seg_inspect(const char *name, unsigned flags, struct shmkit_seg_info *info);

/** shmkit_seg_close() - unmap and close a handle; the segment itself stays.
 * @seg: a handle, or NULL (then nothing happens). Returns 0. Not thread-safe against
 * other use of the same handle. Since 0.1. */
SHMKIT_API int shmkit_seg_close(shmkit_seg *seg);

/** shmkit_seg_delete() - remove the segment's name, then mark it deleted.
 * Every other handle to it gets -EIDRM from shmkit_seg_check() and the layers above;
 * a later create of the same name makes a fresh, zeroed segment. The name goes first
 * so that a refused removal leaves the segment fully usable, not half deleted. A
 * read-only or raw handle cannot write the header: its delete removes the name only,
 * and other handles keep working on the unnamed segment. The handle stays open until
 * shmkit_seg_close(). Returns 0, -EACCES (POSIX: not the owner in the sticky
 * /dev/shm), -EPERM (System V: not the owner or creator), or another -errno. Since 0.1. */
SHMKIT_API int shmkit_seg_delete(shmkit_seg *seg);

/** shmkit_seg_unlink() - delete a segment by name, as shmkit_seg_delete() does.
 * @flags: SHMKIT_SEG_SYSV to name a System V segment; others get -EINVAL except RAW.
 * A shmkit segment is deleted as by shmkit_seg_delete(); an object that cannot be
 * opened as one (foreign, corrupt, abandoned mid-creation, or unreadable to us) is
 * just removed by name (as is an empty object, or a creation its creator abandoned). A
 * System V name whose key belongs to a segment of another
 * name is refused (-EADDRINUSE), never removed. May wait up to 2 s for a creator.
 * Returns 0, -ENOENT, -EACCES, -EPERM, -EINVAL, -EADDRINUSE, or another -errno. */
SHMKIT_API int shmkit_seg_unlink(const char *name, unsigned flags);

/** shmkit_seg_unlink_fd() - delete the POSIX segment that the caller holds open as
 * @fd, if @name still names it: remove the name, then mark the segment deleted through
 * a mapping of @fd (when @fd is writable and the object has a shmkit header). Nothing
 * is opened, so a caller that holds a write lease on @fd (F_SETLEASE, the kernel's
 * proof that no other process has the object open or mapped) keeps it until after the
 * removal: a process whose open raced with it is held back by the lease and then finds
 * the segment deleted, as if absent. For cleaners such as shmkit gc. Returns 0,
 * -EINVAL (bad @fd or @name), -ENOENT (no such name, or it names another object now),
 * -EACCES, or another -errno of lstat/unlink. Since 0.2. */
SHMKIT_API int shmkit_seg_unlink_fd(int fd, const char *name);

/** shmkit_seg_data() - the mapped data area (after the header); NULL only for a NULL
 * handle. Since 0.1. */
SHMKIT_API void *shmkit_seg_data(const shmkit_seg *seg);

/** shmkit_seg_size() - bytes in the data area; 0 for a NULL handle. Since 0.1. */
SHMKIT_API size_t shmkit_seg_size(const shmkit_seg *seg);

/** shmkit_seg_used() - how many bytes at the start of a data segment's area are in
 * use, as last recorded by shmkit_seg_set_used() in any process (what `shmkit cat`
 * prints). The whole data area when none was recorded, and for raw segments and
 * kinds other than SHMKIT_KIND_DATA; a recorded value larger than the area (a
 * hostile or corrupt header) counts as the whole area. 0 for a NULL handle or a
 * truncated segment (see shmkit_guard_sigbus()). One atomic load; thread-safe.
 * Since 0.2. */
SHMKIT_API size_t shmkit_seg_used(const shmkit_seg *seg);

/** shmkit_seg_set_used() - record that the first @len bytes of a data segment's area
 * are in use (0 <= @len <= shmkit_seg_size()), after writing them: a process that
 * reads the length with shmkit_seg_used() then sees those bytes. The length is kept
 * in the segment's header; it is not a lock: a reader copying the bytes while another
 * process rewrites them may get a mix (use a blob for whole snapshots). Returns 0, or
 * -EINVAL (NULL, @len too large, a raw segment or another kind than
 * SHMKIT_KIND_DATA), -EACCES (read-only handle), -EIDRM (deleted), -EFAULT (see
 * shmkit_seg_check()). One atomic store; thread-safe. Since 0.2. */
SHMKIT_API int shmkit_seg_set_used(shmkit_seg *seg, size_t len);

/** shmkit_seg_check() - 0 while the segment is usable, -EINVAL for a NULL handle,
 * -EIDRM once it was deleted (by any process), -EFAULT once the handle met a truncation of the segment (only
 * with shmkit_guard_sigbus(); without it that truncation raises SIGBUS). One atomic
 * load; thread-safe. Since 0.1. */
SHMKIT_API int shmkit_seg_check(const shmkit_seg *seg);

/** shmkit_seg_created() - 1 if this handle created the segment, 0 if it opened it. */
SHMKIT_API int shmkit_seg_created(const shmkit_seg *seg);

/** shmkit_seg_fd() - the POSIX descriptor (owned by the handle), -ENOTSUP for
 * System V, -EINVAL for a NULL handle. Since 0.1. */
SHMKIT_API int shmkit_seg_fd(const shmkit_seg *seg);

/** shmkit_seg_stat() - describe the segment behind a handle.
 * Returns 0, or -EINVAL (NULL argument), -EFAULT (poisoned by a truncation: see
 * shmkit_guard_sigbus()), or an -errno of fstat/shmctl. Since 0.1. */
SHMKIT_API int shmkit_seg_stat(const shmkit_seg *seg, struct shmkit_seg_info *info);

/** shmkit_seg_layout() - the segment layout this library reads and writes.
 * @kind: SHMKIT_KIND_ANY for the segment header's layout word (its format, the word
 *   size and the cache line it pads to); SHMKIT_KIND_CHAN, SHMKIT_KIND_TOPIC or
 *   SHMKIT_KIND_BLOB for the layout version of that kind's control block.
 * Two processes share a segment only when both numbers agree; otherwise the open of
 * the newer or older one fails with -EPROTO, and shmkit_seg_inspect() reports the
 * segment's numbers (info->layout, info->kind_layout) to compare with these, so a
 * tool can say "channel layout 4, this library reads layout 3". Returns the number,
 * or 0 for a kind without a layout of its own (data, raw) or unknown. Thread-safe.
 * Since 0.2. */
SHMKIT_API uint32_t shmkit_seg_layout(unsigned kind);

/** shmkit_live_sweep() - remove the liveness tokens of processes that died.
 * Every process that creates segments or takes a role owns a token: an empty file
 * /dev/shm/.shmkit-live-<16 hex digits> on which it holds a record lock
 * that the kernel releases when it dies; peers ask the lock whether it lives, which is
 * right in every pid namespace that shares /dev/shm. A process removes its own token at
 * exit; a killed one leaves it (unlocked), which this removes. Only tokens this caller
 * may unlink go (the sticky /dev/shm: its own, or everyone's for root). Returns the
 * number removed, or -errno if /dev/shm cannot be read. Thread-safe. Since 0.2. */
SHMKIT_API int shmkit_live_sweep(void);

#ifdef __cplusplus
}
#endif
#endif
