/* shmkit — the shmfile API (seed 002): shared memory as a FILE*.
 *
 * Exactly the documented interface: NULL or -1 with errno set on failure. Built on
 * <shmkit/stream.h>.
 */
#ifndef SHMKIT_SHMFILE_H
#define SHMKIT_SHMFILE_H

#include <stdio.h>
#include <sys/types.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Creates the stream; closing it destroys it. */
#define FSHM_OWNER 1
/** Opens an existing stream; closing it leaves it. */
#define FSHM_GUEST 2

/** fshm_open() - open a shared-memory stream as a FILE* with a real descriptor.
 * @name: FS-like stream name ("/streams/my_stream").
 * @mode: octal permission bits (at most 0777: set-id and sticky bits get EINVAL),
 *   applied exactly when the owner creates; a guest ignores it.
 * @fshm_flags: FSHM_OWNER (create; EEXIST if it exists) or FSHM_GUEST (ENOENT if it
 *   does not); neither or both: EINVAL.
 * Returns an unbuffered FILE*: fileno() works, read/write/lseek on it share the
 * stream's position. NULL with errno set on failure: EINVAL (NULL or empty name, or
 * an owner's @mode above 0777),
 * ENAMETOOLONG, EEXIST, ENOENT, EACCES, ENOMEM; see shmkit_stream_open().
 * The owner's fclose() destroys the stream; a guest's does not. Since 0.1. */
SHMKIT_API FILE *fshm_open(const char *name, mode_t mode, int fshm_flags);

/** fshm_force_destroy() - forcibly destroy the stream @name (recovery after an owner
 * exited without closing). Returns 0, or -1 with errno (ENOENT, EINVAL, ENAMETOOLONG,
 * EACCES). Since 0.1. */
SHMKIT_API int fshm_force_destroy(const char *name);

#ifdef __cplusplus
}
#endif
#endif
