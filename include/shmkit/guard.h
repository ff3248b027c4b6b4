/* shmkit — an opt-in guard that turns a segment truncated under live handles into an
 * error instead of a crash.
 *
 * A POSIX segment is a file: any process allowed to write it can ftruncate(2) it, and
 * then every access to the pages past the new end raises SIGBUS in every process that
 * maps it, as for any mapped file. Without the guard that signal kills the process
 * (unless it handles SIGBUS itself), whatever it was doing. A check before each access
 * cannot help: the truncation can come between the check and the access. System V
 * segments cannot be truncated and are never concerned.
 */
#ifndef SHMKIT_GUARD_H
#define SHMKIT_GUARD_H

#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/** shmkit_guard_sigbus() - install, once per process, a SIGBUS handler that turns a
 * segment truncated under a shmkit call into -EFAULT.
 * From then on, when a thread inside a shmkit call touches a page of a POSIX segment
 * that a peer truncated away, the handle's whole mapping is replaced by private zero
 * memory (so the access completes), the handle is marked poisoned, and the call returns
 * -EFAULT. Every later call on that handle returns -EFAULT too (shmkit_seg_check()
 * included, so loops that watch for deletion stop), except shmkit_*_close() and
 * shmkit_*_delete(), which still close and remove the name. No call ever returns data
 * read from the zero memory as valid. Other handles of the same segment are poisoned
 * the same way when they next touch it.
 * Any other SIGBUS behaves as before: one outside a shmkit call (your own code, even
 * on a shmkit segment's data or on a zero-copy buffer, unless inside
 * shmkit_guard_enter()), one on memory that is not a shmkit segment, or one sent with
 * kill(2). It goes to the handler that was installed before the guard, if any (called
 * as it asked: with or without siginfo), else the default action (the process dies
 * with SIGBUS, as without the guard; an ignored SIGBUS stays ignored only when sent).
 * A SIGBUS handler installed later replaces the guard, and calling this again leaves
 * that handler in charge (it may chain to the guard; the guard never chains to a
 * handler installed after it) unless SIGBUS was reset to SIG_DFL or SIG_IGN since:
 * then the guard is installed again. In a child after fork(2) the call installs the
 * guard over whatever handler the child has, unless it is already the guard.
 * Returns 0 (also when already installed), or -errno of sigaction(2). Thread-safe.
 * Since 0.2. */
SHMKIT_API int shmkit_guard_sigbus(void);

/** shmkit_guard_enter() - extend the guard to your own accesses to shmkit memory: the
 * data area of shmkit_seg_data(), a message from shmkit_chan_peek(), a buffer from
 * shmkit_chan_reserve(). Between shmkit_guard_enter() and shmkit_guard_leave(), a
 * truncation met by this thread poisons the handle and the access reads zeros (writes
 * go nowhere) instead of raising SIGBUS; call shmkit_seg_check() (or any call on the
 * handle) afterwards and discard what you read if it returns -EFAULT. Pairs nest.
 * Effective only once shmkit_guard_sigbus() was called. Async-signal-safe; per
 * thread. Since 0.2. */
SHMKIT_API void shmkit_guard_enter(void);

/** shmkit_guard_leave() - end what shmkit_guard_enter() began (one level). Since 0.2. */
SHMKIT_API void shmkit_guard_leave(void);

#ifdef __cplusplus
}
#endif
#endif
