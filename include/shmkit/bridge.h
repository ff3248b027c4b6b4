/* shmkit — the NATS bridge: local topics carried over NATS subjects, so a topic
 * published into on one host is read on another. Built (and this header installed)
 * only where libnats (nats.c) is found; the core library never depends on it.
 *
 * A bridge holds mappings, each one direction:
 * - out: a local topic → a NATS subject. The bridge subscribes to the topic as a
 *   lossy subscriber (a local publisher never waits for it) and publishes every
 *   message on the subject with two headers: Shmkit-Origin (this bridge's host id)
 *   and Shmkit-Seq (the message's position in the topic as this subscriber counts it:
 *   messages received plus messages lost since it subscribed, starting at 1).
 * - in: a NATS subject → a local topic. Every message whose Shmkit-Origin is not this
 *   host is published into the topic (never waiting: a full reliable topic counts a
 *   drop), so a message never comes back to the host it left.
 * When one topic is bridged both ways, the messages the in direction published are
 * recognised by the out direction (same bytes, same order) and not sent back out.
 * - chan-out: a local channel → a JetStream stream, exactly once (since 0.3). The
 *   bridge is the channel's consumer; it publishes each message with Nats-Msg-Id
 *   "<channel ctime hex>.<position hex>" (the channel segment's creation time and the
 *   message's record position, both stable across bridge restarts), chained by
 *   Nats-Expected-Last-Msg-Id to the one before, and releases a message from the
 *   channel only once JetStream stored it (or one after it). Headers: Shmkit-Origin
 *   (host id), Shmkit-Chan (ctime hex), Shmkit-Pos (position hex). A message larger
 *   than the server's max_payload stops the mapping at that message, which stays in
 *   the channel (counted oversized; never truncated, never skipped). A slow or full
 *   stream makes the channel fill, and its producer waits as for a slow consumer.
 * - chan-in: a JetStream stream → a local channel, exactly once: a durable pull
 *   consumer; each message is committed to the channel together with a record of it
 *   in the segment "<channel>.jsmark", which a restarted bridge reads to drop what was
 *   already committed (redeliveries, and messages stored twice), then acked. The
 *   consumer is named "shmkit-HOST-ID" ('.' turned into '_'); each start deletes it
 *   and makes it anew, so what a dead predecessor had fetched comes again at once.
 * The stream of a channel mapping is created when missing (file storage, WorkQueue
 * retention, discard new, with the map's max_bytes, dup_window_ns and replicas); one
 * chan-out and one chan-in per stream (docs/bridge-jetstream.md).
 *
 * Counters per mapping are published for other processes in a blob segment named
 * "/shmkit-bridge-ID" (ID: the host id), rewritten at least every 250 ms while the
 * bridge runs and deleted when it closes. Its content is text, one line per item:
 *   shmkit-bridge 1 HOST-ID CONNECTED(0|1) SERVER-URL-OR-"-" WRITTEN-MS
 * (WRITTEN-MS: CLOCK_REALTIME of this write in ms since the epoch; a status older
 * than a second or two is a bridge that died without removing it)
 *   out|in LOCAL SUBJECT forwarded N dropped N oversized N pending N skipped N
 * and for a channel mapping the same line (out: chan-out, in: chan-in) followed by
 *   channel STREAM duplicates N resent N errors N
 * then, while a connection error is known, or a channel mapping cannot proceed (see
 * shmkit_bridge_last_error()), a last
 *   error TEXT
 * line, then a NUL byte. `shmkit bridge --status` prints it; shmkit_bridge_status_read()
 * returns it.
 */
#ifndef SHMKIT_BRIDGE_H
#define SHMKIT_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <shmkit/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from libshmkit_bridge, a library of its own (not libshmkit's ABI). */
#if defined(SHMKIT_BUILDING_BRIDGE)
#define SHMKIT_BRIDGE_API __attribute__((visibility("default")))
#else
#define SHMKIT_BRIDGE_API
#endif

/** A bridge. Opaque. */
typedef struct shmkit_bridge shmkit_bridge;

/** Direction of one mapping. */
enum shmkit_bridge_dir {
	SHMKIT_BRIDGE_TOPIC_OUT = 1, /**< local topic → NATS subject (core NATS) */
	SHMKIT_BRIDGE_TOPIC_IN = 2,  /**< NATS subject → local topic */
	SHMKIT_BRIDGE_CHAN_OUT = 3,  /**< local channel → JetStream stream (since 0.3) */
	SHMKIT_BRIDGE_CHAN_IN = 4,   /**< JetStream stream → local channel (since 0.3) */
};

/** One mapping. The fields after @subject are for the channel directions only and
 * must be zero for topics. */
struct shmkit_bridge_map {
	unsigned dir;        /**< enum shmkit_bridge_dir */
	const char *local;   /**< local topic or channel name ("/name"); created if absent
	                      *   (a topic lossy, a channel, both of default size) */
	const char *subject; /**< NATS subject; wildcards (* and >) only for TOPIC_IN; for a
	                      *   channel the stream's one subject, no wildcards; NULL (channels
	                      *   only): "shmkit.chan.STREAM" */
	const char *stream;  /**< channels: the JetStream stream's name (1..255 of A-Z a-z 0-9
	                      *   _ -); NULL: @subject with every other byte turned into '_' */
	uint64_t max_bytes;  /**< channels: the stream's MaxBytes when the bridge creates it,
	                      *   in bytes (a full stream refuses new messages: the channel
	                      *   waits); 0: 64 MiB. An existing stream keeps its own */
	int64_t dup_window_ns; /**< channels: the stream's Duplicates window when the bridge
	                      *   creates it, in ns; 0: 30 s. Exactly-once does not depend on
	                      *   it (it only saves storing a resent message twice); longer
	                      *   costs server memory (one entry per message in the window) */
	unsigned replicas;   /**< channels: the stream's replicas when the bridge creates it;
	                      *   0: 1 */
	unsigned window;     /**< CHAN_OUT: publishes awaiting JetStream's ack at most (also
	                      *   at most 1 MiB of them); 0: 256 */
};

/** TLS flags of struct shmkit_bridge_opts (tls_flags). */
enum shmkit_bridge_tls {
	/** Use TLS even with no TLS file given: natsOptions_SetSecure(true), with the
	 * system's CA certificates (OpenSSL's default paths). Implied by tls_ca,
	 * tls_cert and tls_hostname; a tls:// server URL asks for it per server. */
	SHMKIT_BRIDGE_TLS = 1u << 0,
	/** Do not verify the server's certificate: natsOptions_SkipServerVerification().
	 * Anyone on the path can then read and change the traffic: for tests only. */
	SHMKIT_BRIDGE_TLS_NO_VERIFY = 1u << 1,
};

/** What shmkit_bridge_open() needs. Strings are copied (nats.c keeps its own copy of
 * the secrets; the bridge keeps none). */
struct shmkit_bridge_opts {
	const char *const *servers; /**< NATS URLs (a cluster's members), at least one */
	size_t nservers;
	const struct shmkit_bridge_map *maps; /**< at least one */
	size_t nmaps;
	const char *host_id;        /**< [A-Za-z0-9._-], 1..64 bytes */
	/* TLS and credentials, passed through to nats.c. Each is optional (NULL or 0: not
	 * used, nats.c's default). A file named here must be a readable regular file when
	 * open() is called, else open() fails with -EINVAL naming it in @errbuf. Since 0.3. */
	unsigned tls_flags;         /**< enum shmkit_bridge_tls; unknown bits: -EINVAL */
	const char *tls_ca;         /**< PEM file of the CA certificates the server's
	                             *   certificate must chain to:
	                             *   natsOptions_LoadCATrustedCertificates() (read at
	                             *   open). Default: the system's CA certificates */
	const char *tls_cert;       /**< PEM file of this client's certificate (then its
	                             *   intermediates), for servers that verify clients:
	                             *   natsOptions_LoadCertificatesChain() with @tls_key
	                             *   (read at open). Both or neither */
	const char *tls_key;        /**< PEM file of @tls_cert's private key */
	const char *tls_hostname;   /**< the name the server's certificate must carry, in
	                             *   place of the host of the server's URL:
	                             *   natsOptions_SetExpectedHostname(). Default: Debian's
	                             *   nats.c (built with NATS_FORCE_HOST_VERIFICATION)
	                             *   checks the URL's host, name or IP address; a nats.c
	                             *   built without it checks no name */
	const char *creds;          /**< NATS credentials file (user JWT and NKey seed, as
	                             *   `nsc` writes it): natsOptions_SetUserCredentialsFromFiles()
	                             *   (read at each connect). Not with @nkey */
	const char *nkey;           /**< NKey public key (U...), with @nkey_seed:
	                             *   natsOptions_SetNKeyFromSeed() */
	const char *nkey_seed;      /**< file holding @nkey's seed (read at each connect) */
	const char *token;          /**< authentication token: natsOptions_SetToken().
	                             *   Not with @user */
	const char *user;           /**< user name: natsOptions_SetUserInfo() with @password */
	const char *password;       /**< @user's password (NULL: none) */
	char *errbuf;               /**< optional: where open() writes why it failed, one
	                             *   line, NUL-terminated (bad file, nats.c's text) */
	size_t errcap;              /**< size of @errbuf */
	unsigned reserved[4];       /**< must be zero */
};

/** Counters of one mapping (also in the status segment). */
struct shmkit_bridge_counts {
	uint64_t forwarded; /**< out: handed to nats.c, which sends them (or, while
	                     *   disconnected, keeps them in its reconnect buffer);
	                     *   in: published into the local topic; chan-out: stored
	                     *   by JetStream and released from the channel; chan-in:
	                     *   committed to the channel */
	uint64_t dropped;   /**< lost: topic overflow (out), NATS publish failure or full
	                     *   reconnect buffer (out), slow-consumer drop or full local
	                     *   topic (in); oversized ones included; chan-out: always
	                     *   0; chan-in: empty messages, which a channel cannot carry
	                     *   (no chan-out sends one) */
	uint64_t oversized; /**< larger than the server's max_payload: not sent (out);
	                     *   chan-out: the mapping is held at such a message (it
	                     *   stays in the channel); chan-in: larger than the channel's
	                     *   max_msg (held likewise, in the stream) */
	uint64_t pending;   /**< out: messages in the topic not yet taken; in: messages
	                     *   received from NATS not yet published locally; chan-out:
	                     *   messages in the channel not yet stored by JetStream;
	                     *   chan-in: messages in the stream not yet committed */
	uint64_t skipped;   /**< in: came from this host; out: came in from NATS;
	                     *   chan-in: duplicates dropped (already committed) */
	uint64_t duplicates; /**< chan-out: publish acks that said "duplicate" (JetStream
	                     *   had it already: a message re-sent after a restart or a
	                     *   failure); since 0.3 */
	uint64_t resent;    /**< chan-out: messages published again by this bridge after a
	                     *   failed or timed-out publish; since 0.3 */
	uint64_t errors;    /**< channels: failed publishes, fetches or stream set-up calls,
	                     *   each retried (with back-off); since 0.3 */
};

/** shmkit_bridge_valid_stream() - whether @name is a stream name a channel mapping
 * takes: 1 to 255 bytes of A-Z a-z 0-9 _ -. Returns 1 or 0. Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_valid_stream(const char *name);

/** shmkit_bridge_valid_subject() - whether @subject is a NATS subject (tokens of
 * printable non-space bytes separated by '.', none empty); @wild: whether '*' and '>'
 * tokens are allowed ('>' last only). Returns 1 or 0. Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_valid_subject(const char *subject, int wild);

/** shmkit_bridge_open() - check the options, open the local topics, create the status
 * segment and start connecting. Does not wait for a server: with none reachable the
 * bridge keeps trying (forever, 250 ms apart, with up to 100 ms of jitter) and out
 * mappings' messages wait in nats.c's reconnect buffer (8 MiB) or are counted
 * dropped, never blocking a local publisher. A server that is reached but fails the
 * handshake (TLS: an unknown CA, a refused client certificate, no TLS where TLS is
 * required) is tried again every 2 s; meanwhile out mappings' messages are counted
 * dropped, and the reason is in the status and in shmkit_bridge_last_error().
 * Channel mappings (since 0.3) open their channel (a chan-out as its consumer, a
 * chan-in as its producer and its "<channel>.jsmark" record) here, then run on a
 * thread of their own each once the bridge has its connection, which creates or
 * finds the stream and keeps retrying (back-off up to 1 s) while no server or no
 * JetStream answers; a chan-out's channel then fills and its producer waits.
 * The status segment is created or, when one of that name is left over, taken over.
 * Returns 0, -EINVAL (bad options: no server or mapping, bad subject or stream name,
 * channel settings on a topic, bad host id, a TLS or credentials file missing,
 * unreadable or refused by nats.c, token with user, creds with nkey, tls_cert without
 * tls_key; @errbuf says which), -EPERM (the server refused the credentials:
 * "Authorization Violation"), -ENOTSUP (TLS asked of a libnats built without it),
 * -ENOMEM, -EIO (nats.c refused the options or the subscription), or the errors of
 * shmkit_topic_open() and shmkit_blob_open(), and for channels those of
 * shmkit_chan_open() (-EBUSY: another live process holds the role, such as another
 * bridge), shmkit_seg_open() and pthread_create(). Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_open(const struct shmkit_bridge_opts *o, shmkit_bridge **out);

/** shmkit_bridge_run() - carry out mappings' messages for up to @timeout_ns (in
 * mappings are carried by nats.c's threads, channel mappings by their own threads,
 * meanwhile, whether or not this runs), refresh the status segment, and retry a
 * refused handshake when it is time. Returns 0 at the timeout or earlier at a signal,
 * -EINVAL; a failing topic is counted, not returned. The connection's end is
 * returned, and again at every later call: -EPERM when the server refused the
 * credentials (nats.c gives up when one server refuses them twice in a row; the
 * bridge does not try others), -ECONNABORTED when nats.c closed the connection for
 * another reason; shmkit_bridge_last_error() says why. Close the bridge then (a new
 * one reads the credential files again). One thread at a time. Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_run(shmkit_bridge *b, int64_t timeout_ns);

/** shmkit_bridge_counts() - mapping @i's counters (i < nmaps, in open's order).
 * Returns 0, -EINVAL. Thread-safe. Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_counts(shmkit_bridge *b, size_t i, struct shmkit_bridge_counts *c);

/** shmkit_bridge_connected() - 1 connected to a server now, 0 not. */
SHMKIT_BRIDGE_API int shmkit_bridge_connected(shmkit_bridge *b);

/** shmkit_bridge_max_payload() - the server's max_payload, 0 before a first connect. */
SHMKIT_BRIDGE_API int64_t shmkit_bridge_max_payload(shmkit_bridge *b);

/** shmkit_bridge_last_error() - why the bridge is not connected: nats.c's text of the
 * last failed connection attempt (a TLS handshake error, "Authorization Violation"),
 * or of a permissions violation the server reported, copied into @buf (one line,
 * NUL-terminated, truncated to @cap). Cleared at each successful connect. While
 * connected, the first channel mapping that cannot proceed says why instead, until a
 * message moves through it again ("chan-out /orders: cannot make the stream: no
 * JetStream answers (a server run without -js?)"). Returns its length, 0 (nothing
 * failed), -EINVAL. Thread-safe. Since 0.3. */
SHMKIT_BRIDGE_API ssize_t shmkit_bridge_last_error(shmkit_bridge *b, char *buf, size_t cap);

/** shmkit_bridge_close() - stop, drain nats.c, delete the status segment, close the
 * topics and channels (NULL: nothing). A chan-out first waits for the publishes it
 * has in flight (at most about 2.5 s) and releases what was stored, so its successor
 * sends less again. Returns 0. Since 0.3. */
SHMKIT_BRIDGE_API int shmkit_bridge_close(shmkit_bridge *b);

/** shmkit_bridge_status_read() - the status text of the running bridge @host_id into
 * @buf (NUL-terminated, truncated to @cap). Returns its length, -ENOENT (no bridge
 * runs with that id), -EINVAL, or the errors of shmkit_blob_open(). Since 0.3. */
SHMKIT_BRIDGE_API ssize_t shmkit_bridge_status_read(const char *host_id, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
