/* shmkit — the shmem API (seed 000): a System V segment named by a file path, read and
 * written whole behind an internal lock.
 *
 * Exactly the documented interface: NULL or -1 with errno set on failure. Built on
 * <shmkit/blob.h>, so readers never see a torn buffer, a writer killed mid-write never
 * leaves a partial one, and it is safe between processes and between threads.
 */
#ifndef SHMKIT_SHMEM_H
#define SHMKIT_SHMEM_H

#include <stddef.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A handle to a shmem segment. Opaque. */
typedef struct shmem shmem_t;

/** shmem_open() - create a shared memory segment or open an existing one.
 * @fname: file path used as the segment's unique id; the file is created (mode 0666
 *   less the umask) if it does not exist. The canonical path (realpath(3): symbolic
 *   links, "." and ".." resolved) names the segment, so "./f" and "/abs/f" share one;
 *   two hard links to one file are two paths, and two segments.
 * @memory_size: bytes of the segment (> 0); an existing segment must have this size.
 * The segment takes the file's read/write permission bits, so the file's owner
 * decides who may use it; a caller who may read but not write the segment gets a
 * read-only handle (shmem_write then fails with EBADF).
 * Returns the handle, or NULL with errno set: EINVAL (NULL/empty path, size 0, or a
 * size different from the existing segment's), ENAMETOOLONG, EACCES (may not even
 * read), EADDRINUSE (key collision with another path's segment), EPROTO (not a shmem
 * segment), ENOSPC, or another errno of open(2)/shmget(2).
 * A new segment reads as zero bytes. Thread-safe. Since 0.1. */
SHMKIT_API shmem_t *shmem_open(char *fname, size_t memory_size);

/** shmem_close() - close the handle and set *@shmem to NULL; the segment stays.
 * Returns 0, or -1 with errno EINVAL (@shmem or *@shmem NULL). */
SHMKIT_API int shmem_close(shmem_t **shmem);

/** shmem_read() - copy the whole segment into @data.
 * @size: bytes at @data; must be >= the segment size (else EINVAL).
 * Returns 0, or -1 with errno EINVAL or EIDRM (segment deleted). Never blocks on a
 * writer. */
SHMKIT_API int shmem_read(shmem_t **shmem, void *data, size_t size);

/** shmem_write() - copy @size bytes from @data to the start of the segment; later
 * bytes keep their values. Readers see the whole write or none of it.
 * @size: must be <= the segment size (else EINVAL; EMSGSIZE is not used here).
 * Returns 0, or -1 with errno EINVAL, EIDRM (deleted), EBADF (read-only handle),
 * ETIMEDOUT (another writer held the lock for 10 s: stopped, not dead),
 * ENOTRECOVERABLE. A writer that died holding the lock is recovered from. */
SHMKIT_API int shmem_write(shmem_t **shmem, void *data, size_t size);

/** shmem_delete() - delete the segment: no process can use it afterwards (their calls
 * fail with EIDRM), and a later shmem_open() of the path makes a fresh, zeroed one.
 * Also closes the handle and sets *@shmem to NULL. Returns 0, or -1 with errno
 * EINVAL, or EPERM (only the segment's owner or creator may delete it; the handle then
 * stays open). */
SHMKIT_API int shmem_delete(shmem_t **shmem);

#ifdef __cplusplus
}
#endif
#endif
