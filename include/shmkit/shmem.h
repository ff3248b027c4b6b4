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
 *   It must be a regular file (a FIFO, directory or device is refused, never opened
 *   in a way that could block).
 * @memory_size: bytes of the segment (> 0); an existing segment must have this size.
 * A new segment takes the file's read/write permission bits for its owner and group,
 * never for others (mode & 0660; 0600 if that leaves none): the file's owner decides
 * who may use it, and the data is never more readable than the file. The group bits
 * apply to the segment's group, its creator's effective group. A caller who may read
 * but not write the segment gets a read-only handle (shmem_write then fails with
 * EBADF).
 * An existing segment is used only if both its owner and its creator are the caller,
 * the file's owner or root: a segment another user made for the path first (to read
 * or change the data) is refused. So when several users share a path, its file's
 * owner (or each user itself) should be the one to create the segment.
 * Returns the handle, or NULL with errno set: EINVAL (NULL/empty path, size 0, a size
 * different from the existing segment's, or not a regular file), ENAMETOOLONG,
 * EACCES (may not even read, or the segment belongs to another user),
 * EADDRINUSE (key collision with another path's segment), EPROTO (not a shmem
 * segment), ENOSPC, or another errno of open(2)/shmget(2).
 * A new segment reads as zero bytes. Thread-safe; never blocks on the file. Since 0.1;
 * @fname is const since 0.2 (the seed's char * accepts every call that compiled, and
 * string literals now compile in C++ and with -Wwrite-strings). */
SHMKIT_API shmem_t *shmem_open(const char *fname, size_t memory_size);

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
 * ENOTRECOVERABLE; EINVAL also when another process overwrote the lock's magic word.
 * A writer that died holding the lock is recovered from. @data is const since 0.2 (only
 * read; every call the seed's void * accepted still compiles). */
SHMKIT_API int shmem_write(shmem_t **shmem, const void *data, size_t size);

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
