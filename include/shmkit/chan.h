/* shmkit — message channels: a single-producer single-consumer ring of variable-length
 * messages in one named segment.
 *
 * Every message is contiguous in the ring (a wrap record pads the end), so there is a
 * copying API (send/recv) and a zero-copy one (reserve/commit, peek/release).
 * Waiting spins for a tunable budget, then sleeps on a futex; a side wakes the other
 * only when it sleeps. Timeouts everywhere: 0 never blocks (-EAGAIN), negative waits
 * forever, positive is nanoseconds. A producer's close is end-of-stream after the
 * consumer drained what was committed (recv returns 0, like read(2)); a peer that died
 * gives -EPIPE within a bounded time, never a hang.
 *
 * Sessions (since 0.2): a channel is reused like a named FIFO. Each producer that
 * attaches starts a new stream. Its end-of-stream is received once: a consumer that
 * opens after an earlier consumer received it waits for the next producer (and gets
 * that producer's stream), as a FIFO's reader waits for a writer; a stream that ended
 * before any consumer received its end is delivered whole, end included, to the next
 * consumer. Likewise a producer ignores a consumer's close (or death) that happened
 * before it attached: when the ring fills, it waits for the next consumer instead of
 * failing with -EPIPE. An end is seen only if the consumer reaches it before the next
 * producer attaches; otherwise the two streams run together.
 *
 * The consumer frees room lazily: what it released becomes free for the producer once
 * it has released capacity/8 bytes, found the ring empty, started to wait, or closed.
 * So a consumer that dies without closing may leave up to capacity/8 bytes of messages
 * it had received to its successor, which receives them again (none is ever lost).
 * Whether a peer lives is asked of something the kernel releases when it dies (a lock
 * on a small file in /dev/shm that each process holds), never of a pid: peers in
 * different pid namespaces (containers sharing /dev/shm) work. A handle belongs to
 * the process that opened it; in a child after fork() it must not be used (closing it
 * there only frees the child's copy).
 */
#ifndef SHMKIT_CHAN_H
#define SHMKIT_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <shmkit/base.h>
#include <shmkit/seg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open channel end. Opaque. */
typedef struct shmkit_chan shmkit_chan;

/** Which end shmkit_chan_open() takes. */
enum shmkit_chan_role {
	SHMKIT_CHAN_OBSERVER = 0, /**< no role: statistics only (for tools) */
	SHMKIT_CHAN_PRODUCER = 1, /**< the one sender */
	SHMKIT_CHAN_CONSUMER = 2, /**< the one receiver */
};

/** Counters kept in the channel; read with shmkit_chan_stats(). */
struct shmkit_chan_stats {
	uint64_t capacity;      /**< ring bytes */
	uint64_t used;          /**< bytes committed and not yet released (as published) */
	uint64_t max_msg;       /**< largest message the ring takes */
	uint64_t msgs_sent;     /**< messages committed */
	uint64_t bytes_sent;    /**< payload bytes committed */
	uint64_t msgs_recv;     /**< messages released */
	uint64_t bytes_recv;    /**< payload bytes released */
	uint64_t producer_sleeps; /**< times the producer slept on a full ring */
	uint64_t consumer_sleeps; /**< times the consumer slept on an empty ring */
	uint64_t wakes;         /**< wake-ups sent by either side (futex wakes, poll signals) */
	int32_t producer_pid;   /**< 0 when no producer is attached; for people only: the
	                         *   holder's pid in its own pid namespace */
	int32_t consumer_pid;   /**< 0 when no consumer is attached; as producer_pid */
	int producer_closed;    /**< 1 after the producer closed (end-of-stream), also
	                         *   once a consumer received that end (see Sessions) */
	int32_t producer_alive; /**< 1 while the attached producer lives (in any pid
	                         *   namespace), 0 if none is attached or it died, -1 if
	                         *   that cannot be told; since 0.2 */
	int32_t consumer_alive; /**< as producer_alive, for the consumer; since 0.2 */
};

/** shmkit_chan_open() - open (and with SHMKIT_SEG_CREATE, create) a channel end.
 * @name: segment name, as shmkit_seg_open().
 * @role: enum shmkit_chan_role. A role held by a live process (in any pid namespace)
 *   gives -EBUSY; one held by a process that died is taken over.
 * @capacity: ring bytes when creating, rounded up to a power of two (minimum 4096,
 *   maximum 1 GiB), or 0 for the default: half the L2 cache the kernel reports
 *   (sysconf(_SC_LEVEL2_CACHE_SIZE), else /sys/devices/system/cpu/cpu0/cache), a
 *   power of two from 64 KiB to 4 MiB, or 256 KiB when the kernel reports none;
 *   found once per process (small enough for the caches, so messages move cache to
 *   cache; for messages of 1 MiB, use 4 MiB or more). When opening, 0 accepts any
 *   capacity and anything else must match (else -EINVAL).
 *   The largest message is capacity / 2.
 * @mode, @flags: as shmkit_seg_open(): CREATE, EXCL, SYSV (RAW and RDONLY: -EINVAL).
 *   The ring's memory is reserved at creation: a full /dev/shm gives -ENOSPC here.
 * The control block is validated against the segment (-EPROTO); a producer taking
 * over from a dead one finds the last committed message itself.
 * Returns 0, -EBUSY, -EPROTO (not a channel, or a corrupt one), the -errno of making
 * this process's liveness file in /dev/shm (once per process: -EMFILE, -ENFILE,
 * -ENOSPC, -EACCES, ...) or of checking the holder's (-EMFILE, -ENFILE, -EACCES, ...;
 * a holder is never robbed on a guess), or the errors of shmkit_seg_open().
 * Thread-safe. Since 0.1. */
SHMKIT_API int shmkit_chan_open(const char *name, unsigned role, size_t capacity, unsigned mode,
				unsigned flags, shmkit_chan **out);

/** shmkit_chan_close() - release the role and close the handle (NULL: nothing).
 * A producer's close is end-of-stream for the consumer once it drained the ring, and
 * discards a pending reservation. A consumer's close publishes its position (a peeked,
 * unreleased message stays queued for the next consumer) and makes a producer waiting
 * on a full ring return -EPIPE. The segment stays (delete it with shmkit_seg_unlink()).
 * Returns 0. Since 0.1. */
SHMKIT_API int shmkit_chan_close(shmkit_chan *ch);

/** shmkit_chan_send() - copy one message of @len bytes (1 <= len <= max_msg) in.
 * While there is room, messages are queued even with no consumer attached (one may
 * come later). Wakes the consumer only if it sleeps (one load when it does not).
 * Returns 0, or -EAGAIN (full, timeout 0), -ETIMEDOUT, -EMSGSIZE (@len too large),
 * -EINVAL (len 0, NULL @buf, not the producer), -EPIPE (the ring is full and the
 * consumer closed or died since this producer attached; checked on every wait; a
 * consumer gone before it attached is waited for instead), -EIDRM, -EPROTO (corrupt ring;
 * the handle stays poisoned). Producer thread only. Blocks while full. Since 0.1. */
SHMKIT_API int shmkit_chan_send(shmkit_chan *ch, const void *buf, size_t len, int64_t timeout_ns);

/** shmkit_chan_sendv() - send @n messages, message i being @msgs[i]; they are
 * published together (one wake at most). Every length is checked before anything is
 * sent (-EINVAL, -EMSGSIZE). Returns the number sent (>= 1; fewer than @n only when
 * the ring filled and the timeout ran out after some were sent, or an error came
 * after some were sent), or the errors of shmkit_chan_send() when none was sent,
 * -EINVAL for @n < 1. The timeout counts from the first wait for room, once for the
 * whole call. Since 0.1. */
SHMKIT_API int shmkit_chan_sendv(shmkit_chan *ch, const struct iovec *msgs, int n,
				 int64_t timeout_ns);

/** shmkit_chan_recv() - copy the next message out (a peeked one too: it is consumed).
 * Returns its length (>= 1); 0 at end-of-stream (the producer closed and everything
 * was received; again on every call of this handle until a new producer opens; a
 * consumer opened after that end was received waits for the next producer instead:
 * see Sessions at the top); -EAGAIN (empty,
 * timeout 0), -ETIMEDOUT, -EMSGSIZE (@cap too small: the message stays queued),
 * -EPIPE (the producer died and everything it committed was received; reported
 * within about 200 ms even while sleeping, and until a new producer takes over),
 * -EINVAL, -EIDRM, -EPROTO (corrupt length, tag or index; the handle stays poisoned).
 * Consumer thread only. Blocks while empty. Since 0.1. */
SHMKIT_API ssize_t shmkit_chan_recv(shmkit_chan *ch, void *buf, size_t cap, int64_t timeout_ns);

/** shmkit_chan_reserve() - zero-copy send, step 1: room for a message of up to @len
 * bytes, contiguous and 8-byte aligned, at *@buf (NULL on failure). Write it, then
 * shmkit_chan_commit(). Another reserve or a send discards a pending reservation.
 * Returns 0 or the errors of shmkit_chan_send(). Since 0.1. */
SHMKIT_API int shmkit_chan_reserve(shmkit_chan *ch, size_t len, int64_t timeout_ns, void **buf);

/** shmkit_chan_commit() - zero-copy send, step 2: publish the reserved message with
 * its final length @len (1 <= len <= the reserved length). Returns 0, -EINVAL (no
 * reservation, bad len). Never blocks. Since 0.1. */
SHMKIT_API int shmkit_chan_commit(shmkit_chan *ch, size_t len);

/** shmkit_chan_peek() - zero-copy receive, step 1: the next message, in place (8-byte
 * aligned). *@buf and *@len describe it until shmkit_chan_release(); peeking again
 * first gives the same message. On failure *@buf is NULL and *@len 0. Returns its
 * length like shmkit_chan_recv() (0: end-of-stream), with the same errors except
 * -EMSGSIZE. Since 0.1. */
SHMKIT_API ssize_t shmkit_chan_peek(shmkit_chan *ch, const void **buf, size_t *len,
				    int64_t timeout_ns);

/** shmkit_chan_release() - zero-copy receive, step 2: free the peeked message.
 * Returns 0, or -EINVAL (nothing peeked). Never blocks. Since 0.1. */
SHMKIT_API int shmkit_chan_release(shmkit_chan *ch);

/** shmkit_chan_peek_next() - zero-copy receive of several messages at once, for a
 * consumer that lets a message go only once it is safe elsewhere (stored by a
 * server, written to disk). Each call gives the message after the last one this
 * handle peeked ahead (the first call: the oldest unreleased one), in place, and its
 * position in the channel in *@pos. Nothing is released: every message peeked
 * ahead stays valid and unchanged until shmkit_chan_release_to() lets it go. If the
 * handle closes or its process dies first, the next consumer receives those
 * messages again, at the same positions. A position identifies a message for the
 * channel's lifetime: positions only grow, across producers and consumers, and
 * start again only in a channel deleted and created anew (tell those apart by the
 * segment's ctime_ns, shmkit_seg_stat()).
 * Returns the length, 0 (end-of-stream), or the errors of shmkit_chan_peek(); a
 * message peeked with shmkit_chan_peek() and not released: -EINVAL. While messages
 * peeked ahead are unreleased, shmkit_chan_recv(), shmkit_chan_peek() and
 * shmkit_chan_release() return -EINVAL. Since 0.3. */
SHMKIT_API ssize_t shmkit_chan_peek_next(shmkit_chan *ch, const void **buf, size_t *len,
					 uint64_t *pos, int64_t timeout_ns);

/** shmkit_chan_release_to() - release every message peeked ahead up to and
 * including the one at @pos, a position shmkit_chan_peek_next() returned and not yet
 * released. The messages after it stay peeked. The producer learns of the room at
 * once. Returns 0, -EINVAL (@pos is not such a position), -EPROTO (the channel's
 * records changed under us: a corrupt or hostile producer). Never blocks. Since 0.3. */
SHMKIT_API int shmkit_chan_release_to(shmkit_chan *ch, uint64_t pos);

/** shmkit_chan_position() - where this end stands. Consumer: the position of its
 * oldest unreleased record (every message it has not released starts there or
 * later). Producer: the position of the pending reservation's message after
 * shmkit_chan_reserve(), else the position the next record goes to (every message
 * committed so far starts below it; a producer that took over finds it from the
 * ring). Reads nothing from shared memory. Returns 0, -EINVAL (observer, NULL).
 * Since 0.3. */
SHMKIT_API int shmkit_chan_position(const shmkit_chan *ch, uint64_t *pos);

/** shmkit_chan_fd() - a descriptor for poll/epoll beside sockets. It polls readable
 * (POLLIN) when this end has something to do; it is an epoll descriptor, which
 * never reports POLLOUT, also on the producer's side.
 * Consumer: readable whenever a message, end-of-stream, a dead producer or a deleted
 * segment waits: level-triggered, at once when created with messages queued, and
 * while messages remain after a receive took one. A receive (or peek) with timeout 0
 * that finds nothing (-EAGAIN) drains it (spinning up to ~5 µs); only then does the
 * producer signal it again (one sendto(), at its next message). It may report
 * readable once more after the last message was taken (a receive then gives -EAGAIN),
 * and once when a producer attaches (so that it starts watching that producer).
 * Producer (since 0.2): readable when at least half the ring is free and, after a
 * send refused with -EAGAIN, when that message fits (max(capacity/2, its room) bytes
 * free), so a wake-up leaves room for many messages; also when the consumer closed
 * or died, or the segment was deleted (the send then says which). A send with
 * timeout 0 that gets -EAGAIN drains it; the consumer signals it (one sendto()) when
 * it publishes that room: after each capacity/8 bytes it took, when a receive finds
 * the ring empty (-EAGAIN or a wait), and at close. It may report readable when a
 * send would still be refused; that send re-arms it.
 * Either side: a pidfd of the other side makes it readable when that side dies (in
 * another pid namespace, or without pidfd_open, a 200 ms timer makes the poller
 * recheck instead). A deletion is seen when the other side's next call notices it.
 * Blocking calls on the same handle keep working (after one, the descriptor may be
 * readable with nothing to do). Limits: both sides must share a network namespace
 * (the signals are datagrams in the abstract namespace); nothing is left in any file
 * system. Owned by the handle (closed by shmkit_chan_close()); the same descriptor
 * on every call. Returns the fd, or -EINVAL (NULL, an observer), -EFAULT (see
 * shmkit_guard_sigbus()), or the -errno of epoll_create1(), socket() or bind().
 * Handle's thread. Since 0.1; the producer's since 0.2. */
SHMKIT_API int shmkit_chan_fd(shmkit_chan *ch);

/** shmkit_chan_set_spin() - how long a side spins before it sleeps, in nanoseconds
 * (at most 1 s; negative counts as 0). By default it is measured: three times what a
 * wake-up has cost this process lately (the time from the waker's system call to the
 * sleeper running), between 5 and 200 µs, and 50 µs until the process was first
 * woken. A wait behind a large message
 * spins longer: about 1 ns per byte of the last message received (the consumer) or
 * of the room needed (the producer), up to 2 ms, so a stream of large messages does
 * not sleep between them. 0 is sleep mode: no spinning at all, except that the
 * consumer spins a grace of about 5 µs until one wait has gone through it to sleep
 * (the grace closes the race with the producer's fence-free check for a sleeper;
 * from then on the producer checks with a fence, and the consumer's waits sleep at
 * once, until a wait ends inside a grace again). Sleeps last 200 ms at most, then
 * the peer's liveness is checked. Returns 0, or -EINVAL (NULL). Handle's thread.
 * Since 0.1. */
SHMKIT_API int shmkit_chan_set_spin(shmkit_chan *ch, int64_t spin_ns);

/** shmkit_chan_stats() - read the channel's counters. Any role, any thread.
 * Returns 0 or -EINVAL. Since 0.1. */
SHMKIT_API int shmkit_chan_stats(const shmkit_chan *ch, struct shmkit_chan_stats *st);

/** shmkit_chan_seg() - the channel's segment (for shmkit_seg_stat(), delete). */
SHMKIT_API shmkit_seg *shmkit_chan_seg(const shmkit_chan *ch);

#ifdef __cplusplus
}
#endif
#endif
