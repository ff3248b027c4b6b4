/* shmkit — a POSIX shared-memory object as a FILE* stream with a real descriptor. */
#ifndef SHMKIT_STREAM_H
#define SHMKIT_STREAM_H

#include <stdio.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Flags of shmkit_stream_open(): exactly one role, OWNER or GUEST. */
enum shmkit_stream_flags {
	SHMKIT_STREAM_OWNER = 1u << 0, /**< create it (exclusively); fclose() destroys it */
	SHMKIT_STREAM_GUEST = 1u << 1, /**< open an existing one; fclose() leaves it */
	SHMKIT_STREAM_PERSIST = 1u << 2, /**< with OWNER only: fclose() leaves it too, until
					  *   shmkit_stream_destroy(). Since 0.2. */
};

/** shmkit_stream_open() - open a stream over a POSIX shared-memory object.
 * @name: stream name, FS-like ("/streams/a"): a leading '/' is optional, inner '/' and
 *   '%' are escaped into one /dev/shm entry ("/streams%2Fa").
 * @mode: permission bits for the owner's create, at most 0777 (set-id, sticky or any
 *   other bit: -EINVAL), applied exactly (umask ignored). A guest ignores it and opens
 *   read-write, or read-only when it may only read (then writes fail with EBADF).
 * @flags: SHMKIT_STREAM_OWNER or SHMKIT_STREAM_GUEST; an owner may add
 *   SHMKIT_STREAM_PERSIST.
 * @out: an unbuffered FILE* whose fileno() is a real descriptor sharing the stream's
 *   position (read/write/lseek on it and fread/fwrite/fseek mix freely). Each open has
 *   its own position, starting at 0. NULL on failure.
 * Returns 0, or -EINVAL (NULL @out, NULL/empty/"/" name, "." or "..", no role, both
 *   roles, PERSIST with GUEST or an unknown flag, an owner's @mode above 0777), -ENAMETOOLONG (the escaped name with its '/' exceeds
 *   255 bytes), -EEXIST (owner, exists), -ENOENT (guest, missing), -EACCES, -ENOMEM,
 *   or another -errno.
 * fclose() closes the descriptor; the owner's fclose() also removes the object (unless
 * SHMKIT_STREAM_PERSIST), so later guests get -ENOENT while open guests keep reading. It leaves the name alone if
 * the stream was destroyed and a new one of that name created since. The FILE has the
 * usual stdio locking; the descriptor is close-on-exec. Since 0.1. */
SHMKIT_API int shmkit_stream_open(const char *name, unsigned mode, unsigned flags, FILE **out);

/** shmkit_stream_destroy() - remove a stream by name, for recovery after an owner
 * died without closing. Open streams keep working. Returns 0, -ENOENT, -EINVAL,
 * -ENAMETOOLONG (names as for shmkit_stream_open()), -EACCES (not permitted, e.g.
 * another user's stream in the sticky /dev/shm). Since 0.1. */
SHMKIT_API int shmkit_stream_destroy(const char *name);

#ifdef __cplusplus
}
#endif
#endif
