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
 * Channels ↔ JetStream streams (CHAN_OUT, CHAN_IN) are src/bridge/jetstream.c: a
 * worker thread per mapping, opened with the topics, started once the connection
 * exists and stopped before it closes; this file only dispatches to it.
 * The status segment and the counters below serve both kinds unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <shmkit/blob.h>
#include <shmkit/bridge.h>
#include <shmkit/topic.h>
#include "jetstream.h"

#define HDR_ORIGIN "Shmkit-Origin"
#define HDR_SEQ "Shmkit-Seq"
#define ECHO_SLOTS 4096           /* injected messages remembered per topic */
#define STATUS_EVERY_NS (250 * SHMKIT_MSEC)
#define STATUS_LINE_MAX 1100      /* one mapping's line: up to three names and nine numbers */
#define QUIET_NS (50 * SHMKIT_MSEC) /* an out topic with no publisher is polled this often */
#define RECONNECT_WAIT_MS 250     /* between nats.c's passes over the servers */
#define RECONNECT_JITTER_MS 100   /* plus up to this, so that bridges restarted together spread out */
#define REFUSED_RETRY_NS (2 * SHMKIT_SEC) /* a server that refused the handshake: try again after */
#define ERR_MAX 256               /* the last connection error's text */

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
	/* in: set once, with b->nc (conn_install), by open() or run(); read by
	 * shmkit_bridge_counts() on any thread. */
	_Atomic(natsSubscription *) sub;
	struct shmkit_bridge *b;
	struct echo *echo;            /* in and out of one topic share it; NULL: no pair */
	char *buf;                    /* out: receive buffer of the topic's max_msg */
	size_t cap;
	uint64_t seq;                 /* out: position in the topic (received + lost) */
	int64_t quiet_until;          /* out: no publisher; poll again after this */
	/* Written by the thread that moves this mapping's data, read by run() and
	 * shmkit_bridge_counts() on others: relaxed, as counters read for display. */
	_Atomic uint64_t forwarded, dropped, oversized, skipped;
	struct shmkit__jsmap *js;     /* a channel mapping (src/bridge/jetstream.c); else NULL */
};

static int is_chan(unsigned dir)
{
	return dir == SHMKIT_BRIDGE_CHAN_OUT || dir == SHMKIT_BRIDGE_CHAN_IN;
}

struct shmkit_bridge {
	char *host_id;
	natsOptions *opts;
	/* NULL until a first handshake succeeded or nats.c took over the retries (see
	 * conn_try()); then set once, by open() or run(), and read by any thread. */
	_Atomic(natsConnection *) nc;
	int64_t next_try;             /* nc NULL: when run() tries again (monotonic ns) */
	uint64_t jitter;              /* reconnect_delay()'s generator: nats.c's reconnect thread only */
	pthread_mutex_t err_lock;     /* err and err_status: run(), open() and nats.c's threads */
	natsStatus err_status;        /* of the last failure; NATS_OK: none since the last connect */
	char err[ERR_MAX];
	struct map *maps;
	size_t nmaps;
	struct echo **echoes;         /* owned, one per topic bridged both ways */
	size_t nechoes;
	shmkit_blob *status;
	size_t status_size;
	int64_t last_status;
	int sent;                     /* run(): forward() handed nats.c a message since flush_idle() */
	_Atomic int64_t max_payload;  /* from the connected callbacks; 0: not yet known */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

/* Tells injected messages from others of the same length (echo_match()), and seeds
 * the reconnect jitter. Word at a time in four independent lanes: a topic bridged
 * both ways has each message hashed once or twice (in, and out when the length
 * matches), and FNV-1a byte at a time (a multiply per byte, each waiting for the
 * last) took 90 us for 64 KiB on the VM of BENCHMARKS.md, this 7 us. Compared only
 * within the process, so the byte order does not matter. */
#define HASH_M1 0x9e3779b97f4a7c15ull
#define HASH_M2 0xff51afd7ed558ccdull
static inline uint64_t hash_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HASH_M2;
	return h ^ (h >> 32);
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t a = HASH_M1 ^ n, b = HASH_M2, c = ~HASH_M1, d = ~HASH_M2, w[4];
	for (; n >= sizeof w; s += sizeof w, n -= sizeof w) {
		memcpy(w, s, sizeof w);
		a = hash_mix(a, w[0]);
		b = hash_mix(b, w[1]);
		c = hash_mix(c, w[2]);
		d = hash_mix(d, w[3]);
	}
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(w, s, 8);
		a = hash_mix(a, w[0]);
	}
	w[0] = 0;
	memcpy(w, s, n); /* the tail, zero-padded: the length is in the seed */
	uint64_t h = hash_mix(hash_mix(hash_mix(hash_mix(a, w[0]), b), c), d);
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
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
	natsSubscription *sub = atomic_load(&m->sub); /* pairs with conn_install()'s store */
	if (sub && natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK && msgs > 0)
		return (uint64_t)msgs;
	return 0;
}

static void map_counts(struct map *m, struct shmkit_bridge_counts *c)
{
	if (m->js) {
		shmkit__js_counts(m->js, c);
		return;
	}
	memset(c, 0, sizeof *c);
	c->forwarded = atomic_load_explicit(&m->forwarded, memory_order_relaxed);
	c->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
	c->oversized = atomic_load_explicit(&m->oversized, memory_order_relaxed);
	c->skipped = atomic_load_explicit(&m->skipped, memory_order_relaxed);
	c->pending = map_pending(m);
	int64_t slow = 0; /* nats.c's own slow-consumer drops of this subscription */
	natsSubscription *sub = atomic_load(&m->sub); /* pairs with conn_install()'s store */
	if (sub && natsSubscription_GetDropped(sub, &slow) == NATS_OK && slow > 0)
		c->dropped += (uint64_t)slow;
}

int shmkit_bridge_connected(shmkit_bridge *b)
{
	natsConnection *nc = b ? atomic_load(&b->nc) : NULL; /* pairs with conn_install()'s store */
	return nc && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
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
	if (connected && natsConnection_GetConnectedUrl(atomic_load(&b->nc), url, sizeof url) != NATS_OK)
		strcpy(url, "-");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now); /* readers in other processes tell a dead bridge by it */
	size_t at = (size_t)snprintf(text, b->status_size, "shmkit-bridge 1 %s %d %s %lld\n",
				     b->host_id, connected, url[0] ? url : "-",
				     (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	for (size_t i = 0; i < b->nmaps && at < b->status_size; i++) {
		struct map *m = &b->maps[i];
		struct shmkit_bridge_counts c;
		if (m->js) {
			at += (size_t)shmkit__js_status_line(m->js, text + at, b->status_size - at);
			continue;
		}
		map_counts(m, &c);
		at += (size_t)snprintf(text + at, b->status_size - at,
				       "%s %s %s forwarded %" PRIu64 " dropped %" PRIu64
				       " oversized %" PRIu64 " pending %" PRIu64 " skipped %" PRIu64 "\n",
				       m->dir == SHMKIT_BRIDGE_TOPIC_OUT ? "out" : "in", m->local,
				       m->subject, c.forwarded, c.dropped, c.oversized, c.pending,
				       c.skipped);
	}
	char err[ERR_MAX];
	if (at < b->status_size && shmkit_bridge_last_error(b, err, sizeof err) > 0)
		at += (size_t)snprintf(text + at, b->status_size - at, "error %s\n", err);
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
	pthread_mutex_lock(&b->err_lock); /* connected: what failed before no longer explains anything */
	b->err_status = NATS_OK;
	b->err[0] = '\0';
	pthread_mutex_unlock(&b->err_lock);
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

/* ---- the connection: TLS, credentials, and why it fails ---------------------------
 *
 * nats.c 3.4.1 retries on its own only what it takes for a network failure: a server
 * that is down, or lost after a connect. A server reached whose handshake fails (TLS,
 * credentials) at the first connect makes a retrying connection close at once, with
 * "No server available" instead of the reason; and the reason of a failed reconnect
 * stays in the reconnect thread's thread-local error. So the bridge makes its first
 * connect itself, one pass over the servers on the calling thread (conn_try()), and
 * reads the reason there: connected, the connection is the bridge's; no server
 * reachable, it connects again with nats.c's retries on (which then survive any later
 * failure but a refusal of the credentials); refused handshake, run() tries again
 * later. nats.c's reconnect thread reports its reasons through reconnect_delay(). */

/* Records why the connection failed: nats.c's text, without its "(file.c:123): "
 * prefix, on one line. */
static void set_error(shmkit_bridge *b, natsStatus s, const char *text)
{
	if (!text || !*text)
		text = natsStatus_GetText(s);
	const char *p;
	while (*text == '(' && (p = strstr(text, "): ")) != NULL)
		text = p + 3;
	pthread_mutex_lock(&b->err_lock);
	b->err_status = s;
	snprintf(b->err, sizeof b->err, "%s", text);
	for (char *c = b->err; *c; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			*c = ' ';
	pthread_mutex_unlock(&b->err_lock);
}

/* nats.c's reconnect thread, before each pass over the servers: the thread-local
 * error there is the last pass's reason (a fresh thread has none). Returns the wait. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	shmkit_bridge *b = closure;
	(void)nc;
	(void)attempts;
	natsStatus s = NATS_OK;
	const char *text = nats_GetLastError(&s);
	if (s != NATS_OK)
		set_error(b, s, text);
	b->jitter = b->jitter * 6364136223846793005ull + 1442695040888963407ull;
	return RECONNECT_WAIT_MS + (int64_t)((b->jitter >> 33) % RECONNECT_JITTER_MS);
}

/* nats.c's asynchronous errors: a permissions violation (a subject the credentials
 * do not allow) or a refusal of the credentials on reconnect, which would otherwise
 * go unseen. A slow consumer is counted as dropped, not reported. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)sub;
	if (err != NATS_NOT_PERMITTED && err != NATS_CONNECTION_AUTH_FAILED)
		return;
	const char *text = NULL;
	if (natsConnection_GetLastError(nc, &text) == NATS_OK)
		text = NULL;
	set_error(closure, err, text);
}

/* Readable regular file, or -EINVAL with the reason in @o's errbuf. */
static int check_file(const struct shmkit_bridge_opts *o, const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int e = fd < 0 ? errno : 0;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode))
		e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
	if (fd >= 0)
		close(fd);
	if (!e)
		return 0;
	if (o->errbuf && o->errcap)
		snprintf(o->errbuf, o->errcap, "%s %s: %s", what, path,
			 e == EINVAL ? "not a regular file" : strerror(e));
	return -EINVAL;
}

/* The TLS and credential options into nats.c's. Returns 0 or an error, with the
 * reason in errbuf. */
static int conn_options(shmkit_bridge *b, const struct shmkit_bridge_opts *o)
{
	const char *what = NULL, *file = NULL;
	int r;
	natsStatus s = NATS_OK;
	if (o->tls_flags & ~(unsigned)(SHMKIT_BRIDGE_TLS | SHMKIT_BRIDGE_TLS_NO_VERIFY))
		what = "unknown TLS flags";
	else if (!o->tls_cert != !o->tls_key)
		what = "a client certificate needs its key, and a key its certificate";
	else if (o->creds && o->nkey)
		what = "a credentials file and an NKey exclude each other";
	else if (!o->nkey != !o->nkey_seed)
		what = "an NKey needs its seed file, and a seed file its NKey";
	else if (o->token && o->user)
		what = "a token and a user exclude each other";
	else if (o->password && !o->user)
		what = "a password needs a user";
	if (what) {
		if (o->errbuf && o->errcap)
			snprintf(o->errbuf, o->errcap, "%s", what);
		return -EINVAL;
	}
	if ((o->tls_ca && (r = check_file(o, "CA certificate file", o->tls_ca))) ||
	    (o->tls_cert && (r = check_file(o, "certificate file", o->tls_cert))) ||
	    (o->tls_key && (r = check_file(o, "key file", o->tls_key))) ||
	    (o->creds && (r = check_file(o, "credentials file", o->creds))) ||
	    (o->nkey_seed && (r = check_file(o, "NKey seed file", o->nkey_seed))))
		return r;

	int tls = (o->tls_flags & SHMKIT_BRIDGE_TLS) || o->tls_ca || o->tls_cert || o->tls_hostname ||
		  (o->tls_flags & SHMKIT_BRIDGE_TLS_NO_VERIFY);
	what = "TLS";
	if (tls && (s = natsOptions_SetSecure(b->opts, true)) != NATS_OK)
		goto fail;
	what = "CA certificate file", file = o->tls_ca;
	if (o->tls_ca && (s = natsOptions_LoadCATrustedCertificates(b->opts, o->tls_ca)) != NATS_OK)
		goto fail;
	what = "certificate and key files", file = o->tls_cert;
	if (o->tls_cert &&
	    (s = natsOptions_LoadCertificatesChain(b->opts, o->tls_cert, o->tls_key)) != NATS_OK)
		goto fail;
	what = "expected host name", file = NULL;
	if (o->tls_hostname &&
	    (s = natsOptions_SetExpectedHostname(b->opts, o->tls_hostname)) != NATS_OK)
		goto fail;
	what = "TLS";
	if ((o->tls_flags & SHMKIT_BRIDGE_TLS_NO_VERIFY) &&
	    (s = natsOptions_SkipServerVerification(b->opts, true)) != NATS_OK)
		goto fail;
	what = "credentials file", file = o->creds;
	if (o->creds && (s = natsOptions_SetUserCredentialsFromFiles(b->opts, o->creds, NULL)) != NATS_OK)
		goto fail;
	what = "NKey seed file", file = o->nkey_seed;
	if (o->nkey && (s = natsOptions_SetNKeyFromSeed(b->opts, o->nkey, o->nkey_seed)) != NATS_OK)
		goto fail;
	what = "token", file = NULL;
	if (o->token && (s = natsOptions_SetToken(b->opts, o->token)) != NATS_OK)
		goto fail;
	what = "user";
	if (o->user && (s = natsOptions_SetUserInfo(b->opts, o->user, o->password)) != NATS_OK)
		goto fail;
	return 0;
fail:
	if (o->errbuf && o->errcap) {
		const char *text = nats_GetLastError(NULL);
		const char *p;
		while (text && *text == '(' && (p = strstr(text, "): ")) != NULL)
			text = p + 3;
		if (s == NATS_ILLEGAL_STATE && tls)
			snprintf(o->errbuf, o->errcap, "this libnats was built without TLS");
		else
			snprintf(o->errbuf, o->errcap, "%s%s%s: %s", what, file ? " " : "",
				 file ? file : "", text && *text ? text : natsStatus_GetText(s));
	}
	return s == NATS_ILLEGAL_STATE && tls ? -ENOTSUP : s == NATS_NO_MEMORY ? -ENOMEM : -EINVAL;
}

/* @nc becomes the bridge's, with the in mappings' subscriptions. */
static int conn_install(shmkit_bridge *b, natsConnection *nc)
{
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *m = &b->maps[i];
		natsSubscription *sub = NULL;
		if (m->dir != SHMKIT_BRIDGE_TOPIC_IN)
			continue;
		natsStatus s = natsConnection_Subscribe(&sub, nc, m->subject, on_msg, m);
		if (s != NATS_OK) {
			set_error(b, s, nats_GetLastError(NULL));
			/* None of it: the bridge stays unconnected. The connection is closed
			 * first: nats.c 3.4.1 may crash destroying a subscription it still reads. */
			natsConnection_Close(nc);
			for (size_t j = 0; j < i; j++)
				natsSubscription_Destroy(atomic_exchange(&b->maps[j].sub, NULL));
			natsConnection_Destroy(nc);
			return nats_err(s);
		}
		atomic_store(&m->sub, sub); /* seq_cst: seen by map_counts() on any thread */
	}
	atomic_store(&b->nc, nc);
	/* The channel mappings' workers start on the connection the bridge keeps. */
	for (size_t i = 0; i < b->nmaps; i++) {
		int r = b->maps[i].js ? shmkit__js_start(b->maps[i].js, nc) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* One pass over the servers on this thread (see above). Returns 0 (connected, or
 * nats.c retries from now on, or a server refused the handshake and run() tries again
 * at next_try), -EPERM (the server refused the credentials), or -ENOMEM, -EIO. */
static int conn_try(shmkit_bridge *b)
{
	natsConnection *nc = NULL;
	natsStatus s = natsOptions_SetRetryOnFailedConnect(b->opts, false, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, b->opts);
	if (s == NATS_OK) {
		on_connected(nc, b);
		return conn_install(b, nc);
	}
	set_error(b, s, nats_GetLastError(NULL));
	if (s == NATS_CONNECTION_AUTH_FAILED)
		return -EPERM;
	if (s == NATS_NO_MEMORY)
		return -ENOMEM;
	if (s != NATS_NO_SERVER && s != NATS_TIMEOUT && s != NATS_IO_ERROR) {
		b->next_try = mono_ns() + REFUSED_RETRY_NS;
		return 0;
	}
	/* Nothing reachable: from here on nats.c retries, in the background. */
	s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_connected, b);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, b->opts);
	if (s == NATS_OK)
		on_connected(nc, b);
	else if (s != NATS_NOT_YET_CONNECTED)
		return s == NATS_CONNECTION_AUTH_FAILED ? -EPERM : nats_err(s);
	return conn_install(b, nc);
}

/* Called by run(): retries a refused handshake when it is time; returns how the
 * connection ended if nats.c closed it (see shmkit_bridge_run()), else 0. */
static int conn_tend(shmkit_bridge *b, int64_t now)
{
	natsConnection *nc = atomic_load(&b->nc);
	if (!nc)
		return now >= b->next_try ? conn_try(b) : 0;
	if (natsConnection_Status(nc) != NATS_CONN_STATUS_CLOSED)
		return 0;
	/* nats.c's own reason, unless it is only "No server available" (what it says
	 * when it gave up after refusals): then the last reason seen before. */
	const char *text = NULL;
	natsStatus s = natsConnection_GetLastError(nc, &text);
	if (s != NATS_OK && s != NATS_NO_SERVER) {
		set_error(b, s, text);
	} else {
		pthread_mutex_lock(&b->err_lock);
		natsStatus seen = b->err_status;
		pthread_mutex_unlock(&b->err_lock);
		if (seen == NATS_OK)
			set_error(b, NATS_CONNECTION_CLOSED, text);
		s = seen;
	}
	return s == NATS_CONNECTION_AUTH_FAILED ? -EPERM : -ECONNABORTED;
}

ssize_t shmkit_bridge_last_error(shmkit_bridge *b, char *buf, size_t cap)
{
	if (!b || !buf || cap == 0)
		return -EINVAL;
	pthread_mutex_lock(&b->err_lock);
	snprintf(buf, cap, "%s", b->err_status == NATS_OK ? "" : b->err);
	pthread_mutex_unlock(&b->err_lock);
	/* Connected: the first channel mapping that cannot proceed, and why. */
	for (size_t i = 0; !*buf && i < b->nmaps; i++)
		if (b->maps[i].js)
			shmkit__js_why(b->maps[i].js, buf, cap);
	return (ssize_t)strlen(buf);
}

/* -EINVAL, with the reason in @o's errbuf (mapping @i's when @i >= 0). */
static int refuse(const struct shmkit_bridge_opts *o, long i, const char *why)
{
	if (o && o->errbuf && o->errcap) {
		if (i >= 0)
			snprintf(o->errbuf, o->errcap, "mapping %ld: %s", i, why);
		else
			snprintf(o->errbuf, o->errcap, "%s", why);
	}
	return -EINVAL;
}

int shmkit_bridge_open(const struct shmkit_bridge_opts *o, shmkit_bridge **out)
{
	int r = -EINVAL;
	natsStatus s;
	shmkit_bridge *b = NULL;
	if (!out || !o)
		return -EINVAL;
	*out = NULL;
	if (o->errbuf && o->errcap)
		o->errbuf[0] = '\0';
	if (!o->servers || o->nservers == 0 || o->nservers > 64)
		return refuse(o, -1, "1 to 64 servers");
	if (!o->maps || o->nmaps == 0 || o->nmaps > 4096)
		return refuse(o, -1, "1 to 4096 mappings");
	if (!valid_host_id(o->host_id))
		return refuse(o, -1, "bad host id (1 to 64 of A-Z a-z 0-9 . _ -)");
	for (size_t i = 0; i < 4; i++)
		if (o->reserved[i])
			return refuse(o, -1, "reserved[] must be zero");
	for (size_t i = 0; i < o->nservers; i++)
		if (!o->servers[i] || !*o->servers[i])
			return refuse(o, -1, "an empty server URL");
	for (size_t i = 0; i < o->nmaps; i++) {
		const struct shmkit_bridge_map *mp = &o->maps[i];
		if (is_chan(mp->dir)) {
			if (!shmkit__js_valid(mp))
				return refuse(o, (long)i, "not a valid channel mapping (a local name like "
							  "/name, a stream name or subject, settings in "
							  "range: see shmkit_bridge_open(3))");
			continue;
		}
		if (mp->dir != SHMKIT_BRIDGE_TOPIC_OUT && mp->dir != SHMKIT_BRIDGE_TOPIC_IN)
			return refuse(o, (long)i, "unknown direction");
		if (mp->stream || mp->max_bytes || mp->dup_window_ns || mp->replicas || mp->window)
			return refuse(o, (long)i, "channel settings on a topic mapping");
		if (!mp->local || mp->local[0] != '/' || strlen(mp->local) > 250)
			return refuse(o, (long)i, "a local topic is a name like /name (at most 250 bytes)");
		if (!shmkit_bridge_valid_subject(mp->subject, mp->dir == SHMKIT_BRIDGE_TOPIC_IN))
			return refuse(o, (long)i, mp->dir == SHMKIT_BRIDGE_TOPIC_IN
							  ? "not a NATS subject"
							  : "not a NATS subject (no wildcards on publish)");
	}

	r = -ENOMEM;
	b = calloc(1, sizeof *b);
	if (!b)
		goto fail;
	pthread_mutex_init(&b->err_lock, NULL);
	b->jitter = hash_bytes(o->host_id, strlen(o->host_id)); /* bridges of different hosts spread */
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
		m->subject = strdup(o->maps[i].subject ? o->maps[i].subject : "");
		if (!m->local || !m->subject)
			goto fail;
	}
	/* A topic bridged both ways shares one echo record between its in and out maps. */
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *mi = &b->maps[i];
		for (size_t j = 0; j < b->nmaps && !mi->echo && !is_chan(mi->dir); j++) {
			struct map *mj = &b->maps[j];
			if (is_chan(mj->dir) || mj->dir == mi->dir || strcmp(mj->local, mi->local))
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

	/* Local topics and channels first: a bad name fails before any network activity. */
	for (size_t i = 0; i < b->nmaps; i++) {
		struct map *m = &b->maps[i];
		if (is_chan(m->dir)) {
			r = shmkit__js_open(&o->maps[i], b->host_id, &m->js);
			if (r < 0)
				goto fail;
			continue;
		}
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
	/* the first line (an id of 64, a URL of 255), the error line, the mappings */
	b->status_size = 512 + sizeof "error \n" + ERR_MAX + b->nmaps * STATUS_LINE_MAX;
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
	    (s = natsOptions_SetCustomReconnectDelay(b->opts, reconnect_delay, b)) != NATS_OK ||
	    (s = natsOptions_SetReconnectBufSize(b->opts, 8 * 1024 * 1024)) != NATS_OK ||
	    (s = natsOptions_SetReconnectedCB(b->opts, on_connected, b)) != NATS_OK ||
	    (s = natsOptions_SetErrorHandler(b->opts, on_error, b)) != NATS_OK)
		goto nats_fail;
	if ((r = conn_options(b, o)) < 0)
		goto fail;
	if ((r = conn_try(b)) < 0) {
		if (o->errbuf && o->errcap)
			shmkit_bridge_last_error(b, o->errbuf, o->errcap);
		goto fail;
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
	natsConnection *nc = atomic_load_explicit(&b->nc, memory_order_relaxed); /* this thread's own store, or NULL */
	if (!nc) { /* a server refused the handshake: nothing to hand the message to */
		atomic_fetch_add_explicit(&m->dropped, 1, memory_order_relaxed);
		return;
	}
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
		s = natsConnection_PublishMsg(nc, msg);
	natsMsg_Destroy(msg);
	if (s == NATS_OK) {
		b->sent = 1;
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

/* The out direction ran dry after handing nats.c messages: write them now. With its
 * default options nats.c 3.4.1 does not write a publish at once: its flusher thread
 * waits for the next whole millisecond of the wall clock to gather more. Every hop
 * publishes on that tick, so a round trip through NATS is a whole number of them, and
 * the bridge's hops (two topic wake-ups and a copy, 100-300 us) made the bridge's
 * publish miss the tick its message arrived in and wait for the next: a millisecond
 * more for 10-14 % of the legs at 64 KiB, where the servers' transit leaves less of
 * the millisecond (BENCHMARKS.md, "Bridge"). natsConnection_FlushTimeout() writes nats.c's
 * buffer at once, with a PING, and waits for the server's PONG (at most until the next
 * millisecond): while it waits, a stream gathers in the topic and goes out in one
 * write after it, so the bridge still batches under load (send-at-once, a write per
 * message, cost half the 64 B throughput). Nothing is flushed when nothing is
 * buffered: while reconnecting nats.c keeps publishes in its reconnect buffer. */
static void flush_idle(shmkit_bridge *b)
{
	natsConnection *nc = atomic_load_explicit(&b->nc, memory_order_relaxed); /* run()'s own store */
	b->sent = 0;
	if (nc && natsConnection_Buffered(nc) > 0)
		(void)natsConnection_FlushTimeout(nc, 1); /* written either way; the PONG only paces */
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
	if ((r = conn_tend(b, mono_ns())) < 0)
		goto out;
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
		if (b->sent) /* before a return too: the caller may not call again soon */
			flush_idle(b);
		if (now >= b->last_status + STATUS_EVERY_NS) {
			r = conn_tend(b, now); /* as often as the status: it costs nats.c's lock */
			status_write(b);
			if (r < 0)
				break;
		}
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
	for (size_t i = 0; i < b->nmaps; i++) {
		natsSubscription *sub = atomic_load(&b->maps[i].sub);
		if (sub) {
			natsSubscription_Unsubscribe(sub);
			natsSubscription_Destroy(sub);
		}
	}
	/* Channel workers next, while the connection still runs: a chan-out settles
	 * what it has in flight. */
	for (size_t i = 0; i < b->nmaps; i++)
		shmkit__js_stop(b->maps[i].js);
	natsConnection *nc = atomic_load(&b->nc);
	if (nc) {
		if (shmkit_bridge_connected(b)) /* what was handed over gets out if it can */
			natsConnection_FlushTimeout(nc, 1000);
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
	natsOptions_Destroy(b->opts);
	if (b->status) {
		shmkit_blob_delete(b->status);
		shmkit_blob_close(b->status);
	}
	for (size_t i = 0; i < b->nmaps; i++) {
		shmkit__js_free(b->maps[i].js); /* after the close: no ack handler runs now */
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
	pthread_mutex_destroy(&b->err_lock);
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
