/* shmkit bridge — the channel directions (src/bridge/jetstream.c), as bridge.c sees
 * them: one worker thread per channel mapping, started once the connection exists,
 * stopped before it closes. Internal; not installed. */
#ifndef SHMKIT_BRIDGE_JETSTREAM_H
#define SHMKIT_BRIDGE_JETSTREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <nats/nats.h>
#include <shmkit/bridge.h>

struct shmkit__jsmap;

/* Whether @m is a valid channel mapping (dir CHAN_OUT or CHAN_IN): 1 or 0. */
int shmkit__js_valid(const struct shmkit_bridge_map *m);

/* Opens the local channel (and, for CHAN_IN, the de-dup mark) of mapping @m, which
 * shmkit__js_valid() accepted: errors of the local side come back before any network
 * activity. Returns 0, -ENOMEM, or the errors of shmkit_chan_open()/shmkit_seg_open(). */
int shmkit__js_open(const struct shmkit_bridge_map *m, const char *host_id,
		    struct shmkit__jsmap **out);

/* Starts the mapping's worker on connection @nc (connected or not yet). Returns 0,
 * -ENOMEM, -EIO (nats.c refused the JetStream context), or pthread_create's -errno. */
int shmkit__js_start(struct shmkit__jsmap *j, natsConnection *nc);

/* Asks the worker to stop and waits for it (at most about one publish MaxWait). The
 * connection must still be open: a CHAN_OUT worker first settles what is in flight. */
void shmkit__js_stop(struct shmkit__jsmap *j);

/* Frees the mapping; after natsConnection_Close() (nats.c may call the publish-ack
 * handler until then). NULL: nothing. */
void shmkit__js_free(struct shmkit__jsmap *j);

/* Counters (thread-safe). */
void shmkit__js_counts(struct shmkit__jsmap *j, struct shmkit_bridge_counts *c);

/* Why the mapping last failed ("chan-out LOCAL: what: nats.c's reason"), until a
 * message moves again, NUL-terminated in @buf: its length, 0 if nothing failed. */
ssize_t shmkit__js_why(struct shmkit__jsmap *j, char *buf, size_t cap);

/* The mapping's status line (see bridge.h), NUL-terminated in @buf. Returns its length
 * as snprintf(). */
int shmkit__js_status_line(struct shmkit__jsmap *j, char *buf, size_t cap);

#endif
