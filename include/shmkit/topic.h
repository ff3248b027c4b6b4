/* shmkit — topics: publish-subscribe from any number of publishers to any number of
 * subscribers, through one ring of variable-length, contiguous messages in one segment.
 *
 * Publishers claim room for a message in turn (a claim is a few instructions, never a
 * copy), then copy into it side by side and commit it; a publisher killed at any
 * instruction leaves at most an uncommitted claim, which nobody ever receives and
 * which the others step over. Subscribers read the ring without any lock and without
 * writing anything a publisher waits on (lossy mode), each at its own position.
 *
 * Two delivery modes, chosen when the topic is created:
 * - lossy (the default): a publisher never waits for a subscriber. A subscriber that
 *   falls more than the ring behind gets -EOVERFLOW once, with the exact number of
 *   messages it lost (shmkit_topic_lost()), then continues with the oldest message
 *   still intact. It never receives a torn or half-overwritten message: a copy that a
 *   publisher overtook is discarded and reported, and a peeked message that was
 *   overwritten while held is reported by shmkit_topic_release().
 * - reliable (SHMKIT_TOPIC_RELIABLE): publishers wait for the slowest live subscriber,
 *   so none loses anything; a subscriber that dies is evicted within 250 ms.
 *
 * Timeouts as everywhere in shmkit: 0 never blocks (-EAGAIN), negative waits forever,
 * positive is nanoseconds. A handle belongs to the process (and, for calls that move
 * data, the thread) that opened it.
 */
#ifndef SHMKIT_TOPIC_H
#define SHMKIT_TOPIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <shmkit/base.h>
#include <shmkit/seg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open topic handle. Opaque. */
typedef struct shmkit_topic shmkit_topic;

/** Which part shmkit_topic_open() takes. */
enum shmkit_topic_role {
	SHMKIT_TOPIC_OBSERVER = 0,   /**< no role: statistics only (for tools) */
	SHMKIT_TOPIC_PUBLISHER = 1,  /**< one of any number of publishers */
	SHMKIT_TOPIC_SUBSCRIBER = 2, /**< one of any number of subscribers */
};

/** Flags of shmkit_topic_open(), beside CREATE, EXCL and SYSV of enum shmkit_seg_flags. */
enum shmkit_topic_flags {
	SHMKIT_TOPIC_RELIABLE = 1u << 8, /**< when creating: reliable delivery (see above);
	                                  * when opening, ignored (the topic's mode holds) */
	SHMKIT_TOPIC_OLDEST = 1u << 9,   /**< subscriber: start with the oldest message still
	                                  * retained (history for late joiners) instead of
	                                  * the next one published */
};

/** Creation parameters for shmkit_topic_open_opts(); zero fields take defaults. */
struct shmkit_topic_opts {
	size_t capacity;          /**< ring bytes, rounded up to a power of two (4 KiB ..
	                           *   1 GiB); 0: 1 MiB. The largest message is capacity/4 */
	unsigned mode;            /**< permission bits when creating; 0: 0600 */
	unsigned flags;           /**< as shmkit_topic_open() */
	uint32_t max_subscribers; /**< subscriber slots; 0: 1024; at most 1048576 */
	uint32_t max_publishers;  /**< publisher slots; 0: 64; at most 4096 */
	uint32_t reserved[4];     /**< must be zero */
};

/** Topic-wide counters and, for a subscriber handle, its own. */
struct shmkit_topic_stats {
	uint64_t capacity;        /**< ring bytes */
	uint64_t max_msg;         /**< largest message */
	unsigned reliable;        /**< 1: reliable mode, 0: lossy */
	uint32_t max_subscribers; /**< slots */
	uint32_t max_publishers;  /**< slots */
	uint32_t publishers;      /**< publisher slots held (by live or not yet evicted
	                           *   holders) */
	uint32_t subscribers;     /**< subscriber slots held */
	uint64_t published;       /**< messages committed, all publishers together */
	uint64_t bytes_published; /**< their payload bytes */
	uint64_t next_seq;        /**< sequence number the next message claims */
	uint64_t evicted;         /**< dead subscribers evicted (reliable mode) */
	uint64_t abandoned;       /**< claims whose publisher died before committing */
	/* A subscriber handle's own; 0 for other handles. */
	uint64_t received;        /**< messages received */
	uint64_t lost;            /**< messages lost (lossy mode: overwritten unread) */
	uint64_t lag;             /**< messages claimed and not yet received */
};

/** One subscriber, as shmkit_topic_subscribers() reports it (for tools). */
struct shmkit_topic_sub_info {
	int32_t pid;              /**< for people only: in the holder's own pid namespace */
	int alive;                /**< 1 alive, 0 dead (not evicted yet), -1 unknown */
	uint64_t received;        /**< as published by the subscriber (lazily) */
	uint64_t lost;
	uint64_t lag;             /**< messages behind the newest claim */
};

/** shmkit_topic_open() - open (and with SHMKIT_SEG_CREATE, create) a topic handle.
 * @name: segment name, as shmkit_seg_open().
 * @role: enum shmkit_topic_role.
 * @capacity: ring bytes when creating (see struct shmkit_topic_opts), or 0 for the
 *   default; when opening, 0 accepts any capacity and anything else must match.
 * @mode, @flags: as shmkit_seg_open() (CREATE, EXCL, SYSV), plus enum
 *   shmkit_topic_flags. Limits take their defaults (shmkit_topic_open_opts() sets them).
 * Returns 0, -EUSERS (every publisher slot, or in reliable mode every subscriber slot,
 * is held by a live process), -EBUSY (a subscriber places itself under the claim lock,
 * which a live process held for 2 s: stopped, or a hostile token), -EPROTO (not a topic, or a corrupt one), -EINVAL, or the
 * errors of shmkit_seg_open() and of making this process's liveness file.
 * A lossy subscriber that finds every slot held still subscribes, unlisted: it
 * receives everything, but has no descriptor (shmkit_topic_fd(): -EUSERS) and its
 * counters are its handle's only. Thread-safe. Since 0.2. */
SHMKIT_API int shmkit_topic_open(const char *name, unsigned role, size_t capacity,
				 unsigned mode, unsigned flags, shmkit_topic **out);

/** shmkit_topic_open_opts() - shmkit_topic_open() with every creation parameter.
 * @opts: NULL for all defaults. Since 0.2. */
SHMKIT_API int shmkit_topic_open_opts(const char *name, unsigned role,
				      const struct shmkit_topic_opts *opts, shmkit_topic **out);

/** shmkit_topic_close() - release the slot and close the handle (NULL: nothing).
 * A publisher's pending loan is withdrawn (nobody receives it). When the last
 * publisher closes, subscribers get end-of-stream once they drained the ring.
 * Returns 0. Since 0.2. */
SHMKIT_API int shmkit_topic_close(shmkit_topic *t);

/** shmkit_topic_publish() - copy one message of @len bytes (1 <= len <= max_msg) in.
 * Lossy mode never waits for subscribers (only, rarely and briefly, for a publisher
 * still copying into the room it needs); reliable mode waits for room while the
 * slowest live subscriber holds it. Wakes sleeping subscribers (one load when none
 * sleeps, one system call however many sleep on the futex).
 * Returns 0, or -EAGAIN (timeout 0 and no room, or the claim lock held by a live
 * process for 5 ms), -ETIMEDOUT, -EMSGSIZE, -EINVAL (not a
 * publisher, NULL @buf, len 0), -EIDRM, -EPROTO (corrupt topic; the handle stays
 * poisoned). Since 0.2. */
SHMKIT_API int shmkit_topic_publish(shmkit_topic *t, const void *buf, size_t len,
				    int64_t timeout_ns);

/** shmkit_topic_publishv() - publish @n messages (@msgs[i] each), claimed together
 * (consecutive in the ring, no other publisher's message between them) and made
 * visible with one wake-up; a batch larger than half the ring is claimed in parts of
 * up to half the ring each (another publisher's messages may fall between parts). Every length is checked first (-EINVAL, -EMSGSIZE).
 * Returns the number published (fewer than @n only when room ran out after some were
 * published, reliable mode), or the errors of shmkit_topic_publish(). Since 0.2. */
SHMKIT_API int shmkit_topic_publishv(shmkit_topic *t, const struct iovec *msgs, int n,
				     int64_t timeout_ns);

/** shmkit_topic_loan() - zero-copy publish, step 1: room for a message of up to @len
 * bytes, contiguous and 8-byte aligned, at *@buf (NULL on failure). Write it, then
 * shmkit_topic_commit(). Other publishers go on meanwhile; a loan held long in lossy
 * mode only delays publishers once the ring laps it. Another loan or a publish first
 * withdraws a pending loan. Returns 0 or the errors of shmkit_topic_publish().
 * Since 0.2. */
SHMKIT_API int shmkit_topic_loan(shmkit_topic *t, size_t len, int64_t timeout_ns, void **buf);

/** shmkit_topic_commit() - zero-copy publish, step 2: publish the loaned message with
 * its final length @len (1 <= len <= the loaned length). Returns 0, -EINVAL (no loan,
 * bad len). Never blocks. Since 0.2. */
SHMKIT_API int shmkit_topic_commit(shmkit_topic *t, size_t len);

/** shmkit_topic_receive() - copy the next message out.
 * Returns its length (>= 1); 0 at end-of-stream (every publisher closed and everything
 * was received; again until a publisher opens); -EOVERFLOW (lossy mode: messages were
 * overwritten before this subscriber read them; shmkit_topic_lost() says how many; the
 * next call returns the oldest intact message); -EAGAIN, -ETIMEDOUT; -EMSGSIZE (@cap
 * too small: the message stays next); -EPIPE (the last publisher died and everything
 * committed was received); -EINVAL, -EIDRM, -EPROTO. Since 0.2. */
SHMKIT_API ssize_t shmkit_topic_receive(shmkit_topic *t, void *buf, size_t cap,
					int64_t timeout_ns);

/** shmkit_topic_lost() - messages lost in the gap the last -EOVERFLOW reported (0 if
 * none was reported). The handle's total is in shmkit_topic_stats(). Since 0.2. */
SHMKIT_API uint64_t shmkit_topic_lost(const shmkit_topic *t);

/** shmkit_topic_peek() - zero-copy receive, step 1: the next message in place (8-byte
 * aligned), valid until shmkit_topic_release(). Returns as shmkit_topic_receive()
 * (no -EMSGSIZE). In lossy mode a publisher may overwrite the message while it is
 * held: shmkit_topic_release() says so. Since 0.2. */
SHMKIT_API ssize_t shmkit_topic_peek(shmkit_topic *t, const void **buf, size_t *len,
				     int64_t timeout_ns);

/** shmkit_topic_release() - zero-copy receive, step 2. Returns 0 when the message
 * stayed intact until now, -ESTALE when a publisher overwrote it while it was held
 * (what was read from it must be discarded; it counts as lost), -EINVAL (nothing
 * peeked). Since 0.2. */
SHMKIT_API int shmkit_topic_release(shmkit_topic *t);

/** shmkit_topic_fd() - a descriptor for poll/epoll, level-triggered: readable
 * whenever the subscriber has something to do (a message, a loss to report,
 * end-of-stream, a dead last publisher, a deleted segment), including right after it
 * is made. Then call receive/peek with timeout 0 until -EAGAIN. Owned by the handle.
 * Returns the fd, -EINVAL (not a subscriber), -EUSERS (an unlisted subscriber), or
 * -errno. Since 0.2. */
SHMKIT_API int shmkit_topic_fd(shmkit_topic *t);

/** shmkit_topic_set_spin() - how long a wait spins before it sleeps, in nanoseconds
 * (at most 1 s; negative counts as 0). By default measured, as the channel's (see
 * shmkit_chan_set_spin()). Returns 0, -EINVAL. Since 0.2. */
SHMKIT_API int shmkit_topic_set_spin(shmkit_topic *t, int64_t spin_ns);

/** shmkit_topic_stats() - read the counters. Any role. Returns 0, -EINVAL. Since 0.2. */
SHMKIT_API int shmkit_topic_stats(const shmkit_topic *t, struct shmkit_topic_stats *st);

/** shmkit_topic_subscribers() - the listed subscribers, up to @n of them into @out
 * (@out may be NULL with @n 0). Returns how many are listed (may exceed @n), or
 * -EINVAL. Checks liveness (a few system calls per subscriber): for tools. Since 0.2. */
SHMKIT_API int shmkit_topic_subscribers(const shmkit_topic *t, struct shmkit_topic_sub_info *out,
					size_t n);

/** shmkit_topic_seg() - the topic's segment (for shmkit_seg_stat(), delete). */
SHMKIT_API shmkit_seg *shmkit_topic_seg(const shmkit_topic *t);

#ifdef __cplusplus
}
#endif
#endif
