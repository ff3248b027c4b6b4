/* shmkit bridge — local topics over NATS subjects (include/shmkit/bridge.h).
 *
 * Built only where libnats is found, into its own library (libshmkit_bridge), so the
 * core keeps no dependency beyond libc.
 *
 * Shape. One shmkit_bridge holds one nats.c connection and a table of mappings. An
 * out mapping (topic → subject) is a lossy subscriber handle drained by
 * shmkit_bridge_run() on the caller's thread, which publishes each message with
 * natsConnection_PublishMsg(): nats.c buffers it (and, while disconnected, keeps up to
 * the reconnect buffer), so the local side never waits for the network; what the topic
 * overwrote before we read it (-EOVERFLOW) and what nats.c refused are counted as
 * dropped. An in mapping (subject → topic) is an async nats.c subscription whose
 * callback (on nats.c's thread for that subscription, the only thread that touches
 * its topic handle) publishes into the topic with timeout 0.
 *
 * Loops. Every message sent carries Shmkit-Origin (host id) and Shmkit-Seq; an in
 * mapping drops what carries its own host id (the server echoes our own publishes,
 * and on a cluster every host sees every message). That alone does not stop a loop
 * when one topic is bridged both ways on two hosts: B's in mapping publishes A's
 * message into B's topic, where B's out mapping would read it and send it back out
 * with origin B. So an in mapping records (length, hash) of what it published in a
 * small FIFO per local topic, and the out mapping on the same topic skips a message
 * that matches: recording and publishing happen under one lock, so the injected
 * messages come out of the topic in the order recorded; a recorded entry passed over
 * (its message was lost to overflow) is discarded when a later one matches. A local publisher that
 * publishes the very bytes an injected message holds, between the two, can be
 * mistaken for it; that is the one known imprecision.
 *
 * Channels → JetStream (next step; a new enum shmkit_bridge_dir value beside the
 * topic ones, with its own map kind here). A channel has one consumer and promises no
 * loss, so the bridge becomes the channel's consumer and extends the promise:
 * - out: peek a message, publish it to the stream with Nats-Msg-Id =
 *   "<host-id>/<channel>/<position>" (the channel position of the message), wait for
 *   JetStream's publish ack, and only then release it from the channel. A bridge
 *   killed between the ack and the release re-sends the message after restart with
 *   the same Nats-Msg-Id, which the stream's duplicate window drops: at-least-once on
 *   the wire, exactly once in the stream. The position must survive the bridge: it is
 *   the channel's own consumer index, so restart resumes from the last released one.
 * - in: a durable pull consumer on the stream; each message is sent into the local
 *   channel (blocking, as a channel producer waits for a slow consumer) and acked to
 *   JetStream only after the send returned; a crash between the send and the ack
 *   redelivers it. For this leg to be exactly once too, the stream sequence must be
 *   committed with the message itself: the plan is a producer tag word in the
 *   channel, written in the same commit as the message, that a restarted bridge
 *   reads back to skip what it already delivered (until the channel has one, this leg
 *   is at-least-once).
 * The status segment and the counters below serve both kinds unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <shmkit/blob.h>
#include <shmkit/bridge.h>
#include <shmkit/topic.h>

#define HDR_ORIGIN "Shmkit-Origin"
#define HDR_SEQ "Shmkit-Seq"
#define ECHO_SLOTS 4096           /* injected messages remembered per topic */
#define STATUS_EVERY_NS (250 * SHMKIT_MSEC)
#define STATUS_LINE_MAX 700       /* one mapping's line: two names and six numbers */
#define QUIET_NS (50 * SHMKIT_MSEC) /* an out topic with no publisher is polled this often */

/* What an in mapping published into a topic that an out mapping also reads. */
struct echo {
	pthread_mutex_t lock;         /* in callbacks (nats.c threads) push, run() pops */
	unsigned head, count;         /* ring of ECHO_SLOTS entries */
	struct {
		uint64_t hash;
		size_t len;
	} e[ECHO_SLOTS];
};

struct map {
	unsigned dir;
	char *local, *subject;
	shmkit_topic *topic;
	natsSubscription *sub;        /* in */
	struct shmkit_bridge *b;
	struct echo *echo;            /* in and out of one topic share it; NULL: no pair */
	char *buf;                    /* out: receive buffer of the topic's max_msg */
	size_t cap;
	uint64_t seq;                 /* out: position in the topic (received + lost) */
	int64_t quiet_until;          /* out: no publisher; poll again after this */
	/* Written by the thread that moves this mapping's data, read by run() and
	 * shmkit_bridge_counts() on others: relaxed, as counters read for display. */
	_Atomic uint64_t forwarded, dropped, oversized, skipped;
};

struct shmkit_bridge {
	char *host_id;
	natsOptions *opts;
	natsConnection *nc;
	struct map *maps;
	size_t nmaps;
	struct echo **echoes;         /* owned, one per topic bridged both ways */
	size_t nechoes;
	shmkit_blob *status;
	size_t status_size;
	int64_t last_status;
	_Atomic int64_t max_payload;  /* from the connected callbacks; 0: not yet known */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

/* FNV-1a, 64 bits: enough to tell injected messages from others of the same length. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* In mapping: publish into the topic, recording the message first when an out
 * mapping reads the same topic. The lock is held across the publish (timeout 0: a few
 * hundred nanoseconds) so that the record's order is the topic's order even when
 * several in mappings feed one topic; the out side may read the message the instant
 * it is in, so it is recorded before. Returns shmkit_topic_publish()'s result. */
static int echo_publish(struct echo *e, shmkit_topic *t, const void *p, size_t n)
{
	if (!e)
		return shmkit_topic_publish(t, p, n, 0);
	uint64_t h = hash_bytes(p, n);
	pthread_mutex_lock(&e->lock);
	if (e->count == ECHO_SLOTS) { /* the oldest was lost to overflow long ago */
		e->head = (e->head + 1) % ECHO_SLOTS;
		e->count--;
	}
	unsigned at = (e->head + e->count) % ECHO_SLOTS;
	e->e[at].hash = h;
	e->e[at].len = n;
	e->count++;
	int r = shmkit_topic_publish(t, p, n, 0);
	if (r < 0) /* never published: it is the newest entry, drop it again */
		e->count--;
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* Whether the message was injected by our in mapping; consumes its entry and the
 * entries before it (theirs were lost to overflow, as the topic keeps their order). */
static int echo_match(struct echo *e, const void *p, size_t n)
{
	int found = 0;
	uint64_t h = 0;
	int hashed = 0;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->count; i++) {
		unsigned at = (e->head + i) % ECHO_SLOTS;
		if (e->e[at].len != n)
			continue;
		if (!hashed) {
			h = hash_bytes(p, n);
			hashed = 1;
		}
		if (e->e[at].hash == h) {
			e->head = (at + 1) % ECHO_SLOTS;
			e->count -= i + 1;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return found;
}

int shmkit_bridge_valid_subject(const char *s, int wild)
{
	if (!s || !*s || strlen(s) > 4096)
		return 0;
	const char *tok = s;
	for (;;) {
		const char *end = strchr(tok, '.');
		size_t n = end ? (size_t)(end - tok) : strlen(tok);
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)tok[i] <= ' ' || tok[i] == 0x7f)
				return 0;
		int star = n == 1 && tok[0] == '*', gt = n == 1 && tok[0] == '>';
		if ((star || gt) && !wild)
			return 0;
		if (!star && !gt && (memchr(tok, '*', n) || memchr(tok, '>', n)))
			return 0;
		if (gt && end)
			return 0; /* '>' only last */
		if (!end)
			return 1;
		tok = end + 1;
	}
}

static int valid_host_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void status_name(const char *host_id, char *out, size_t cap)
{
	snprintf(out, cap, "/shmkit-bridge-%s", host_id);
}

static uint64_t map_pending(struct map *m)
{
	if (m->dir == SHMKIT_BRIDGE_TOPIC_OUT) {
		struct shmkit_topic_stats st;
		if (m->topic && shmkit_topic_stats(m->topic, &st) == 0)
			return st.lag;
		return 0;
	}
	int msgs = 0, bytes = 0;
	if (m->sub && natsSubscription_GetPending(m->sub, &msgs, &bytes) == NATS_OK && msgs > 0)
		return (uint64_t)msgs;
	return 0;
}

static void map_counts(struct map *m, struct shmkit_bridge_counts *c)
{
	memset(c, 0, sizeof *c);
	c->forwarded = atomic_load_explicit(&m->forwarded, memory_order_relaxed);
	c->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
	c->oversized = atomic_load_explicit(&m->oversized, memory_order_relaxed);
	c->skipped = atomic_load_explicit(&m->skipped, memory_order_relaxed);
	c->pending = map_pending(m);
	int64_t slow = 0; /* nats.c's own slow-consumer drops of this subscription */
	if (m->sub && natsSubscription_GetDropped(m->sub, &slow) == NATS_OK && slow > 0)
		c->dropped += (uint64_t)slow;
}

int shmkit_bridge_connected(shmkit_bridge *b)
{
	return b && b->nc && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

int64_t shmkit_bridge_max_payload(shmkit_bridge *b)
{
	return b ? atomic_load_explicit(&b->max_payload, memory_order_relaxed) : 0;
}

static void status_write(shmkit_bridge *b)
{
	char *text = malloc(b->status_size);
	if (!text)
		return;
	char url[256] = "-";
	int connected = shmkit_bridge_connected(b);
	if (connected && natsConnection_GetConnectedUrl(b->nc, url, sizeof url) != NATS_OK)
		strcpy(url, "-");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now); /* readers in other processes tell a dead bridge by it */
	size_t at = (size_t)snprintf(text, b->status_size, "shmkit-bridge 1 %s %d %s %lld\n",
				     b->host_id, connected, url[0] ? url : "-",
				     (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	for (size_t i = 0; i < b->nmaps && at < b->status_size; i++) {
		struct map *m = &b->maps[i];
		struct shmkit_bridge_counts c;
		map_counts(m, &c);
		at += (size_t)snprintf(text + at, b->status_size - at,
				       "%s %s %s forwarded %" PRIu64 " dropped %" PRIu64
				       " oversized %" PRIu64 " pending %" PRIu64 " skipped %" PRIu64 "\n",
				       m->dir == SHMKIT_BRIDGE_TOPIC_OUT ? "out" : "in", m->local,
				       m->subject, c.forwarded, c.dropped, c.oversized, c.pending,
				       c.skipped);
	}
	if (at >= b->status_size)
		at = b->status_size - 1;
	text[at] = '\0';
	(void)shmkit_blob_write(b->status, text, at + 1); /* display only: a miss is retried */
	free(text);
	b->last_status = mono_ns();
}

/* nats.c connected / reconnected: learn the server's max_payload, which the out
 * direction checks each message against before handing it to nats.c (a message the
 * server refuses would cost the connection). */
static void on_connected(natsConnection *nc, void *closure)
{
	shmkit_bridge *b = closure;
	int64_t mp = natsConnection_GetMaxPayload(nc);
	if (mp > 0)
		atomic_store_explicit(&b->max_payload, mp, memory_order_relaxed);
}

/* In mapping: a message from NATS. Runs on this subscription's nats.c thread. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct map *m = closure;
	(void)nc;
	(void)sub;
	const char *origin = NULL;
	if (natsMsgHeader_Get(msg, HDR_ORIGIN, &origin) == NATS_OK && origin &&
	    !strcmp(origin, m->b->host_id)) {
		atomic_fetch_add_explicit(&m->skipped, 1, memory_order_relaxed);
		goto out;
	}
	int len = natsMsg_GetDataLength(msg);
	const char *data = natsMsg_GetData(msg);
	if (len <= 0) { /* a topic message has at least one byte: nothing to carry */
		atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
		goto out;
	}
	if (echo_publish(m->echo, m->topic, data, (size_t)len) == 0)
		atomic_fetch_add_explicit(&m->forwarded, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
out:
	natsMsg_Destroy(msg);
}

static int nats_err(natsStatus s)
{
	return s == NATS_NO_MEMORY ? -ENOMEM : s == NATS_INVALID_ARG ? -EINVAL : -EIO;
}

int shmkit_bridge_open(const struct shmkit_bridge_opts *o, shmkit_bridge **out)
{
	int r = -EINVAL;
	natsStatus s;
	shmkit_bridge *b = NULL;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!o || !o->servers || o->nservers == 0 || o->nservers > 64 || !o->maps ||
	    o->nmaps == 0 || o->nmaps > 4096 || !valid_host_id(o->host_id))
		return -EINVAL;
	for (size_t i = 0; i < 4; i++)
		if (o->reserved[i])
			return -EINVAL;
	for (size_t i = 0; i < o->nservers; i++)
		if (!o->servers[i] || !*o->servers[i])
			return -EINVAL;
	for (size_t i = 0; i < o->nmaps; i++) {
		const struct shmkit_bridge_map *mp = &o->maps[i];
		if (mp->dir != SHMKIT_BRIDGE_TOPIC_OUT && mp->dir != SHMKIT_BRIDGE_TOPIC_IN)
			return -EINVAL;
		if (!mp->local || mp->local[0] != '/' || strlen(mp->local) > 250 ||
		    !shmkit_bridge_valid_subject(mp->subject, mp->dir == SHMKIT_BRIDGE_TOPIC_IN))
			return -EINVAL;
	}

	r = -ENOMEM;
	b = calloc(1, sizeof *b);
	if (!b)
		goto fail;
	b->host_id = strdup(o->host_id);
	b->maps = calloc(o->nmaps, sizeof *b->maps);
	b->echoes = calloc(o->nmaps, sizeof *b->echoes);
	if (!b->host_id || !b->maps || !b->echoes)
		goto fail;
	b->nmaps = o->nmaps;
	for (size_t i = 0; i < o->nmaps; i++) {
		struct map *m = &b->maps[i];
		m->b = b;
		m->dir = o->maps[i].dir;
		m->local = strdup(o->maps[i].local);
		m->subject = strdup(o->maps[i].subject);
		if (!m->local || !m->subject)
			goto fail;
	}
	/* A topic bridged both ways shares one echo record between its in and out maps. */
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *mi = &b->maps[i];
		for (size_t j = 0; j < b->nmaps && !mi->echo; j++) {
			struct map *mj = &b->maps[j];
			if (mj->dir == mi->dir || strcmp(mj->local, mi->local))
				continue;
			if (mj->echo) {
				mi->echo = mj->echo;
				break;
			}
			struct echo *e = calloc(1, sizeof *e);
			if (!e)
				goto fail;
			pthread_mutex_init(&e->lock, NULL);
			b->echoes[b->nechoes++] = e;
			mi->echo = mj->echo = e;
		}
	}

	/* Local topics first: a bad name fails before any network activity. */
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *m = &b->maps[i];
		int out_dir = m->dir == SHMKIT_BRIDGE_TOPIC_OUT;
		r = shmkit_topic_open(m->local, out_dir ? SHMKIT_TOPIC_SUBSCRIBER : SHMKIT_TOPIC_PUBLISHER,
				      0, 0, SHMKIT_SEG_CREATE, &m->topic);
		if (r < 0)
			goto fail;
		if (out_dir) {
			struct shmkit_topic_stats st;
			r = shmkit_topic_stats(m->topic, &st);
			if (r < 0)
				goto fail;
			m->cap = (size_t)st.max_msg;
			m->buf = malloc(m->cap ? m->cap : 1);
			r = -ENOMEM;
			if (!m->buf)
				goto fail;
		}
	}

	char sname[128];
	status_name(b->host_id, sname, sizeof sname);
	b->status_size = 256 + b->nmaps * STATUS_LINE_MAX;
	r = shmkit_blob_open(sname, b->status_size, 0644, SHMKIT_SEG_CREATE, &b->status);
	if (r == -EINVAL) { /* a leftover of another size: replace it */
		shmkit_blob *old = NULL;
		if (shmkit_blob_open(sname, 0, 0, 0, &old) == 0) {
			shmkit_blob_delete(old);
			shmkit_blob_close(old);
		}
		r = shmkit_blob_open(sname, b->status_size, 0644, SHMKIT_SEG_CREATE, &b->status);
	}
	if (r < 0)
		goto fail;

	r = -EIO;
	if ((s = natsOptions_Create(&b->opts)) != NATS_OK)
		goto nats_fail;
	const char **urls = (const char **)o->servers;
	if ((s = natsOptions_SetServers(b->opts, urls, (int)o->nservers)) != NATS_OK ||
	    (s = natsOptions_SetName(b->opts, b->host_id)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(b->opts, -1)) != NATS_OK ||
	    (s = natsOptions_SetReconnectWait(b->opts, 250)) != NATS_OK ||
	    (s = natsOptions_SetReconnectBufSize(b->opts, 8 * 1024 * 1024)) != NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(b->opts, on_connected, b)) != NATS_OK ||
	    (s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_connected, b)) != NATS_OK)
		goto nats_fail;
	s = natsConnection_Connect(&b->nc, b->opts);
	if (s == NATS_OK)
		on_connected(b->nc, b);
	else if (s != NATS_NOT_YET_CONNECTED)
		goto nats_fail;
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *m = &b->maps[i];
		if (m->dir != SHMKIT_BRIDGE_TOPIC_IN)
			continue;
		if ((s = natsConnection_Subscribe(&m->sub, b->nc, m->subject, on_msg, m)) != NATS_OK)
			goto nats_fail;
	}
	status_write(b);
	*out = b;
	return 0;

nats_fail:
	r = nats_err(s);
fail:
	shmkit_bridge_close(b);
	return r;
}

/* Out mapping: publish one topic message on the subject, with its headers. */
static void forward(shmkit_bridge *b, struct map *m, size_t len)
{
	char seq[24];
	natsMsg *msg = NULL;
	snprintf(seq, sizeof seq, "%" PRIu64, m->seq);
	/* NATS/1.0\r\n, each "Key: value\r\n", the closing \r\n: what counts with the data
	 * against max_payload. */
	size_t hdr = 10 + strlen(HDR_ORIGIN) + 4 + strlen(b->host_id) + strlen(HDR_SEQ) + 4 +
		     strlen(seq) + 2;
	int64_t mp = atomic_load_explicit(&b->max_payload, memory_order_relaxed);
	if (mp > 0 && (int64_t)(len + hdr) > mp) {
		atomic_fetch_add_explicit(&m->oversized, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
		return;
	}
	natsStatus s = natsMsg_Create(&msg, m->subject, NULL, m->buf, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, HDR_ORIGIN, b->host_id);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, HDR_SEQ, seq);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, msg);
	natsMsg_Destroy(msg);
	if (s == NATS_OK) {
		atomic_fetch_add_explicit(&m->forwarded, 1, memory_order_relaxed);
		return;
	}
	if (s == NATS_MAX_PAYLOAD)
		atomic_fetch_add_explicit(&m->oversized, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
}

/* Takes what an out topic holds now, at most a batch, so one busy topic cannot starve
 * the others or the status refresh. */
static void drain(shmkit_bridge *b, struct map *m, int64_t now)
{
	for (int k = 0; k < 1024; k++) {
		ssize_t n = shmkit_topic_receive(m->topic, m->buf, m->cap, 0);
		if (n > 0) {
			m->seq++;
			if (m->echo && echo_match(m->echo, m->buf, (size_t)n)) {
				atomic_fetch_add_explicit(&m->skipped, 1, memory_order_relaxed);
				continue;
			}
			forward(b, m, (size_t)n);
			continue;
		}
		if (n == -EOVERFLOW) {
			uint64_t lost = shmkit_topic_lost(m->topic);
			m->seq += lost;
			atomic_fetch_add_explicit(&m->dropped, lost, memory_order_relaxed);
			continue;
		}
		if (n == 0 || n == -EPIPE) /* no publisher now: readable until one comes */
			m->quiet_until = now + QUIET_NS;
		return; /* -EAGAIN, or an error that the next round meets again */
	}
}

int shmkit_bridge_run(shmkit_bridge *b, int64_t timeout_ns)
{
	if (!b)
		return -EINVAL;
	int64_t end = mono_ns() + (timeout_ns > 0 ? timeout_ns : 0);
	struct pollfd *pfd = calloc(b->nmaps, sizeof *pfd);
	struct map **who = calloc(b->nmaps, sizeof *who);
	int r = 0;
	if (!pfd || !who) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		int64_t now = mono_ns();
		int n = 0;
		int64_t wake = end;
		for (size_t i = 0; i < b->nmaps; i++) {
			struct map *m = &b->maps[i];
			if (m->dir != SHMKIT_BRIDGE_TOPIC_OUT)
				continue;
			if (m->quiet_until > now) {
				if (m->quiet_until < wake)
					wake = m->quiet_until;
				continue;
			}
			int fd = shmkit_topic_fd(m->topic);
			if (fd < 0)
				continue;
			pfd[n].fd = fd;
			pfd[n].events = POLLIN;
			who[n++] = m;
		}
		int64_t next_status = b->last_status + STATUS_EVERY_NS;
		if (next_status < wake)
			wake = next_status;
		int64_t wait = wake - now;
		if (wait < 0)
			wait = 0;
		int got = poll(pfd, (nfds_t)n, (int)((wait + SHMKIT_MSEC - 1) / SHMKIT_MSEC));
		if (got < 0 && errno == EINTR)
			break; /* a signal: let the caller look at its flags */
		now = mono_ns();
		for (int i = 0; got > 0 && i < n; i++)
			if (pfd[i].revents)
				drain(b, who[i], now);
		if (now >= b->last_status + STATUS_EVERY_NS)
			status_write(b);
		if (now >= end)
			break;
	}
out:
	free(pfd);
	free(who);
	return r;
}

int shmkit_bridge_counts(shmkit_bridge *b, size_t i, struct shmkit_bridge_counts *c)
{
	if (!b || !c || i >= b->nmaps)
		return -EINVAL;
	map_counts(&b->maps[i], c);
	return 0;
}

int shmkit_bridge_close(shmkit_bridge *b)
{
	if (!b)
		return 0;
	/* Subscriptions first: no callback may run once the topics are closed. */
	for (size_t i = 0; i < b->nmaps; i++)
		if (b->maps[i].sub) {
			natsSubscription_Unsubscribe(b->maps[i].sub);
			natsSubscription_Destroy(b->maps[i].sub);
		}
	if (b->nc) {
		if (shmkit_bridge_connected(b)) /* what was handed over gets out if it can */
			natsConnection_FlushTimeout(b->nc, 1000);
		natsConnection_Close(b->nc);
		natsConnection_Destroy(b->nc);
	}
	natsOptions_Destroy(b->opts);
	if (b->status) {
		shmkit_blob_delete(b->status);
		shmkit_blob_close(b->status);
	}
	for (size_t i = 0; i < b->nmaps; i++) {
		shmkit_topic_close(b->maps[i].topic);
		free(b->maps[i].buf);
		free(b->maps[i].local);
		free(b->maps[i].subject);
	}
	for (size_t i = 0; i < b->nechoes; i++) {
		pthread_mutex_destroy(&b->echoes[i]->lock);
		free(b->echoes[i]);
	}
	free(b->echoes);
	free(b->maps);
	free(b->host_id);
	free(b);
	return 0;
}

ssize_t shmkit_bridge_status_read(const char *host_id, char *buf, size_t cap)
{
	if (!valid_host_id(host_id) || !buf || cap == 0)
		return -EINVAL;
	char sname[128];
	shmkit_blob *st = NULL;
	status_name(host_id, sname, sizeof sname);
	int r = shmkit_blob_open(sname, 0, 0, SHMKIT_SEG_RDONLY, &st);
	if (r < 0)
		return r;
	ssize_t n = shmkit_blob_read(st, buf, cap - 1, NULL);
	shmkit_blob_close(st);
	if (n < 0)
		return n;
	buf[n] = '\0';
	return (ssize_t)strlen(buf); /* the text ends at its NUL; the rest of the blob is zero */
}
