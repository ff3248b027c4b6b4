/* shmkit — a shared snapshot: a fixed-size buffer that many processes read and write
 * whole.
 *
 * Writers serialize on a robust mutex; readers take no lock. The buffer is double
 * buffered: a write fills the idle copy and then publishes it, so a reader always gets
 * the last complete write, never a torn one, even when a writer is killed mid-write.
 * Readers wait for a new version with shmkit_blob_wait(), or through a descriptor
 * (shmkit_blob_fd()) in an event loop, instead of polling the version number.
 */
#ifndef SHMKIT_BLOB_H
#define SHMKIT_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <shmkit/base.h>
#include <shmkit/seg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open blob. Opaque. */
typedef struct shmkit_blob shmkit_blob;

/** shmkit_blob_open() - open, create, or create-or-open a blob of @size bytes.
 * @name, @mode, @flags: as shmkit_seg_open() (SHMKIT_SEG_RAW is refused: -EINVAL).
 *   SHMKIT_SEG_RDONLY gives a reader that can never block a writer.
 * @size: bytes of the snapshot; > 0 when creating, 0 or the same size when opening.
 * A new blob reads as @size zero bytes, with version 0.
 * Returns 0 or the errors of shmkit_seg_open(); -EPROTO if the segment is not a blob
 * or its blob header is corrupt. Thread-safe. Since 0.1. */
SHMKIT_API int shmkit_blob_open(const char *name, size_t size, unsigned mode, unsigned flags,
				shmkit_blob **out);

/** shmkit_blob_close() - close a handle (NULL: nothing). Returns 0. Since 0.1. */
SHMKIT_API int shmkit_blob_close(shmkit_blob *b);

/** shmkit_blob_delete() - delete the blob's segment (see shmkit_seg_delete()); other
 * handles get -EIDRM, and their waits and descriptors are woken at once (a deletion
 * by other means, shmkit_seg_delete() or `shmkit rm`, reaches a waiter within 200 ms
 * and a descriptor at its next read). The handle stays to be closed. Since 0.1. */
SHMKIT_API int shmkit_blob_delete(shmkit_blob *b);

/** shmkit_blob_size() - bytes in the snapshot. */
SHMKIT_API size_t shmkit_blob_size(const shmkit_blob *b);

/** shmkit_blob_write() - replace the first @len bytes of the snapshot; the bytes after
 * them keep their values. Readers see all of this write or none of it.
 * Returns 0, or -EMSGSIZE (@len > size), -EINVAL (NULL @buf with @len > 0), -EBADF
 * (read-only handle), -EIDRM (deleted), -ETIMEDOUT (lock not had within 10 s),
 * -ENOTRECOVERABLE, -EINVAL (the lock's magic word was overwritten by a peer). Thread- and process-safe; blocks while another writer writes.
 * A writer killed mid-write loses only its own write. Since 0.1. */
SHMKIT_API int shmkit_blob_write(shmkit_blob *b, const void *buf, size_t len);

/** shmkit_blob_read() - copy one consistent snapshot out.
 * @buf, @cap: destination; min(@cap, size) bytes are copied.
 * @version: if not NULL, receives the number of writes the snapshot includes. The
 *   handle remembers it too, for its descriptor (shmkit_blob_fd()).
 * Returns the number of bytes copied (>= 0), or -EINVAL, -EIDRM (deleted), -EPROTO
 * (the control block is corrupt: the current copy stayed marked "being written" for
 * 10 ms with no write completing, which no writer does; a later write clears it).
 * Lock-free: never waits for a writer's lock and never blocks one; retries while
 * writes overtake its copy. Thread- and process-safe. Since 0.1. */
SHMKIT_API ssize_t shmkit_blob_read(const shmkit_blob *b, void *buf, size_t cap,
				    uint64_t *version);

/** shmkit_blob_version() - number of completed writes so far; -EIDRM if deleted,
 * -EPROTO if the version word holds 2^63 or more (a peer wrote it), -EFAULT (see
 * shmkit_guard_sigbus()), -EINVAL (NULL). Lock-free. Since 0.1. */
SHMKIT_API int64_t shmkit_blob_version(const shmkit_blob *b);

/** shmkit_blob_wait() - wait until the blob's version differs from @last_version
 * (typically the version of the last read), instead of polling it.
 * @timeout_ns: 0 never blocks, negative waits forever, positive is nanoseconds.
 * Returns the current version (>= 0) once it differs; -EAGAIN (timeout 0, still
 * @last_version), -ETIMEDOUT, -EIDRM (deleted; a shmkit_blob_delete() wakes waiters
 * at once, other deletions within 200 ms), -EPROTO (the version word holds 2^63 or
 * more: a peer wrote it), -EFAULT (see shmkit_guard_sigbus()), -EINVAL (NULL).
 * Spins about 10 µs, then sleeps on a futex that writers wake (a writer makes a
 * system call only when someone sleeps). A read-only handle (SHMKIT_SEG_RDONLY)
 * cannot announce that it sleeps: it looks every millisecond instead. The version
 * returned is remembered for the handle's descriptor, as a read's.
 * Thread- and process-safe; blocks. Since 0.2. */
SHMKIT_API int64_t shmkit_blob_wait(shmkit_blob *b, uint64_t last_version, int64_t timeout_ns);

/** shmkit_blob_fd() - a descriptor for poll/epoll that polls readable (POLLIN) while
 * the blob's version differs from the version the last shmkit_blob_read() or
 * shmkit_blob_wait() on this handle returned (before either, the version at open),
 * and after the blob was deleted. Level-triggered: readable at once if a write came
 * since; a read or wait that returns the current version makes it quiet again.
 * A writer signals it (one sendto()) only while it is quiet. It is an epoll
 * descriptor watching a datagram socket in the abstract namespace, registered in the
 * blob's table of 64 descriptors: readers and writers must share a network namespace.
 * Owned by the handle (closed by shmkit_blob_close()); the same descriptor on every
 * call. Returns the fd, or -EINVAL (NULL), -EBADF (a read-only handle: it cannot
 * register), -EUSERS (64 live handles of the blob already have one; those of dead
 * processes are taken over), -EIDRM, -EFAULT, or the -errno of making the descriptor
 * or this process's liveness file. Thread-safe. Since 0.2. */
SHMKIT_API int shmkit_blob_fd(shmkit_blob *b);

/** shmkit_blob_seg() - the blob's segment, for shmkit_seg_stat() and the like. */
SHMKIT_API shmkit_seg *shmkit_blob_seg(const shmkit_blob *b);

#ifdef __cplusplus
}
#endif
#endif
