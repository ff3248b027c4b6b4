/* shmkit — a POSIX shared-memory object as a FILE* stream with a real descriptor. */
#ifndef SHMKIT_STREAM_H
#define SHMKIT_STREAM_H

#include <stdio.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Roles of shmkit_stream_open(): exactly one must be given. */
enum shmkit_stream_flags {
	SHMKIT_STREAM_OWNER = 1u << 0, /**< create it (exclusively); fclose() destroys it */
	SHMKIT_STREAM_GUEST = 1u << 1, /**< open an existing one; fclose() leaves it */
};

/** shmkit_stream_open() - open a stream over a POSIX shared-memory object.
 * @name: stream name, FS-like ("/streams/a"): a leading '/' is optional, inner '/' and
 *   '%' are escaped into one /dev/shm entry ("/streams%2Fa").
 * @mode: permission bits for the owner's create, applied exactly (umask ignored).
 *   A guest opens read-write, or read-only when it may only read.
 * @flags: SHMKIT_STREAM_OWNER or SHMKIT_STREAM_GUEST.
 * @out: an unbuffered FILE* whose fileno() is a real descriptor sharing the stream's
 *   position (read/write/lseek on it and fread/fwrite/fseek mix freely). Each open has
 *   its own position, starting at 0. NULL on failure.
 * Returns 0, or -EINVAL (NULL/empty name, no role or both), -ENAMETOOLONG, -EEXIST
 * (owner, exists), -ENOENT (guest, missing), -EACCES, -ENOMEM, or another -errno.
 * fclose() closes the descriptor; the owner's fclose() also removes the object, so
 * later guests get -ENOENT while open guests keep reading. Since 0.1. */
SHMKIT_API int shmkit_stream_open(const char *name, unsigned mode, unsigned flags, FILE **out);

/** shmkit_stream_destroy() - remove a stream by name, for recovery after an owner
 * died without closing. Open streams keep working. Returns 0, -ENOENT, -EINVAL,
 * -EACCES. Since 0.1. */
SHMKIT_API int shmkit_stream_destroy(const char *name);

#ifdef __cplusplus
}
#endif
#endif
