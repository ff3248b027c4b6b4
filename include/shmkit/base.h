/* shmkit — definitions every public header shares: export macro, errors, version. */
#ifndef SHMKIT_BASE_H
#define SHMKIT_BASE_H

#include <stdint.h>
#include <shmkit/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the library's exported symbols; everything else is hidden. */
#if defined(SHMKIT_BUILDING)
#define SHMKIT_API __attribute__((visibility("default")))
#else
#define SHMKIT_API
#endif

/** Timeouts are in nanoseconds: 0 never blocks, a negative value waits forever. */
#define SHMKIT_FOREVER ((int64_t)-1)
#define SHMKIT_MSEC ((int64_t)1000000)
#define SHMKIT_SEC ((int64_t)1000000000)

/** shmkit_strerror() - describe an error code returned by shmkit.
 * @err: a negative errno as shmkit returns it (a positive errno is accepted too).
 * Returns a static string; never NULL. Thread-safe. Since 0.1. */
SHMKIT_API const char *shmkit_strerror(int err);

/** shmkit_version() - the library's version at run time, SHMKIT_VERSION_NUM() encoded.
 * Compare with SHMKIT_VERSION to detect a header/library mismatch. Since 0.1. */
SHMKIT_API unsigned shmkit_version(void);

/** shmkit_version_string() - "MAJOR.MINOR.PATCH" of the library at run time. Since 0.1. */
SHMKIT_API const char *shmkit_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
