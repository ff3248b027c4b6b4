/* shmkit — the shmfile API (seed 002): shared memory as a FILE*.
 *
 * The interface of the shmfile library up to its release 1.1: fshm_open() and
 * fshm_force_destroy() as seed 002 documents them, and the calls later releases added
 * (fshm_create(), fshm_guest_open(), fshm_chmod(), fshm_chgrp(), shmfile_get_version(),
 * FSHM_PERSIST), with the same signatures, so programs written for any of them build
 * unchanged. NULL or -1 with errno set on failure. Built on <shmkit/stream.h>.
 */
#ifndef SHMKIT_SHMFILE_H
#define SHMKIT_SHMFILE_H

#include <stdio.h>
/* shmfile's header brought these along (mode constants, O_* flags, shm_open()), and
 * programs written for it rely on getting them through it. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Creates the stream; closing it destroys it. */
#define FSHM_OWNER 1
/** Opens an existing stream; closing it leaves it. */
#define FSHM_GUEST 2
/** OR-ed with FSHM_OWNER: the owner's close leaves the stream too, until
 * fshm_force_destroy(). Accepted, and without effect, with FSHM_GUEST. Since 0.2. */
#define FSHM_PERSIST 4

/** fshm_open() - open a shared-memory stream as a FILE* with a real descriptor.
 * @name: FS-like stream name ("/streams/my_stream").
 * @mode: octal permission bits (at most 0777: set-id and sticky bits get EINVAL),
 *   applied exactly when the owner creates; a guest ignores it.
 * @fshm_flags: FSHM_OWNER (create; EEXIST if it exists) or FSHM_GUEST (ENOENT if it
 *   does not), either OR-ed with FSHM_PERSIST; neither role, both, or any other bit:
 *   EINVAL.
 * Returns an unbuffered FILE*: fileno() works, read/write/lseek on it share the
 * stream's position. NULL with errno set on failure: EINVAL (NULL or empty name, or
 * an owner's @mode above 0777),
 * ENAMETOOLONG, EEXIST, ENOENT, EACCES, ENOMEM; see shmkit_stream_open().
 * The owner's fclose() destroys the stream unless FSHM_PERSIST was given; a guest's
 * never does. Thread-safe; never blocks. Since 0.1 (FSHM_PERSIST since 0.2). */
SHMKIT_API FILE *fshm_open(const char *name, mode_t mode, int fshm_flags);

/** fshm_create() - create the stream @name as its owner, with permission bits @mode:
 * exactly fshm_open(@name, @mode, FSHM_OWNER), errors included. Since 0.2. */
SHMKIT_API FILE *fshm_create(const char *name, mode_t mode);

/** fshm_guest_open() - open the existing stream @name as a guest: exactly
 * fshm_open(@name, 0, FSHM_GUEST), errors included (ENOENT when it does not exist;
 * read-only when the caller may only read it). Since 0.2. */
SHMKIT_API FILE *fshm_guest_open(const char *name);

/** fshm_chmod() - change the permission bits of the stream behind @fshm_file, which
 * decide who may open it as a guest (read-write, read-only or not at all); streams
 * already open keep their access.
 * @fshm_file: a FILE* from fshm_open(), fshm_create() or fshm_guest_open(), owner's or
 *   guest's (the call acts on the stream, not on the role).
 * @mode: at most 0777, applied exactly (no umask).
 * Returns 0, or -1 with errno: EINVAL (NULL @fshm_file, @mode above 0777), EBADF
 * (@fshm_file has no descriptor, or its descriptor is not a shared-memory object),
 * EPERM (the caller neither owns the stream's object, as its creating user does, nor
 * is privileged). Thread-safe. Since 0.2. */
SHMKIT_API int fshm_chmod(FILE *fshm_file, mode_t mode);

/** fshm_chgrp() - change the group of the stream behind @fshm_file, so that the group
 * bits of its mode grant that group's members access. The stream is created with its
 * creator's effective group.
 * @fshm_file: as for fshm_chmod().
 * @group: the new group; (gid_t)-1 changes nothing. Unprivileged, the caller must own
 *   the stream and be a member of @group.
 * Returns 0 (also at once, for anyone, when @group is already the stream's group), or
 * -1 with errno: EINVAL (NULL @fshm_file), EBADF (as for fshm_chmod()), EPERM (not the
 * owner, or not a member of @group, and not privileged). Thread-safe. Since 0.2. */
SHMKIT_API int fshm_chgrp(FILE *fshm_file, gid_t group);

/** fshm_force_destroy() - forcibly destroy the stream @name (recovery after an owner
 * exited without closing; the way to remove an FSHM_PERSIST stream). Returns 0, or -1
 * with errno (ENOENT, EINVAL, ENAMETOOLONG, EACCES). Since 0.1. */
SHMKIT_API int fshm_force_destroy(const char *name);

/** shmfile_get_version() - the shmfile API level this library provides.
 * @major, @minor, @patchlevel: out: 1, 1, 0 (the shmfile release whose interface is
 *   complete here).
 * @extra: out: a suffix naming the implementation, "+shmkit.MAJOR.MINOR.PATCH" with
 *   shmkit's own version, so that printf("%hhu.%hhu.%hhu%s", ...) reads
 *   "1.1.0+shmkit.0.2.0". A static string.
 * Any pointer may be NULL to skip that part. Thread-safe. Since 0.2. */
SHMKIT_API void shmfile_get_version(unsigned char *major, unsigned char *minor,
				    unsigned char *patchlevel, const char **extra);

/** _fshm_printCopyrightVersion() - print to stdout which shmfile API level this is and
 * that shmkit provides it ("shmfile 1.1.0+shmkit.X.Y.Z" and a line naming shmkit), then
 * a blank line. Not in shmfile's header, but its example programs declare and call it
 * for --version, so it is kept for them; new code wants shmfile_get_version(). Since 0.2. */
SHMKIT_API void _fshm_printCopyrightVersion(void);

#ifdef __cplusplus
}
#endif
#endif
