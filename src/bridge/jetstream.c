/* shmkit bridge — channels over JetStream, exactly once (include/shmkit/bridge.h;
 * the design and the nats.c 3.4.1 / nats-server 2.9.10 facts it rests on are in
 * docs/bridge-jetstream.md).
 *
 * Each channel mapping has a worker thread of its own, the only thread that touches
 * its channel handle (a channel end is single-thread). nats.c's threads call
 * on_ack(), which only records an outcome in the window under `mu` and rings an
 * eventfd; the worker does every release.
 *
 * chan-out. The worker is channel A's consumer. It peeks ahead with
 * shmkit_chan_peek_next() (nothing is released, so a successor after a crash starts
 * at the oldest message not known stored) and publishes asynchronously, up to a
 * window, each message with Nats-Msg-Id = "<ctime hex>.<pos hex>": the channel
 * segment's creation time and the record position, which a restarted bridge finds
 * again for the same message. Every publish but the first of a round carries
 * Nats-Expected-Last-Msg-Id = the id published just before it (the chain), so the
 * server stores a message only right after its predecessor: a lost publish makes
 * every later one fail instead of leaving a gap or a reorder. Hence an OK for message
 * k proves k and everything before it stored, and the worker releases up to the
 * newest OK. A failure (refusal, NATS_TIMEOUT from the MaxWait each publish carries,
 * a publish nats.c would not take) ends the round: send nothing more, let everything
 * in flight settle, release up to the newest OK, back off, and start a new round at
 * the oldest unreleased message, published synchronously and without expectation
 * (the stream's last id may be anything then: it was stored or not), after which the
 * chain resumes. A resent message the server still remembers is answered
 * "duplicate" (the de-dup check comes before the expectation check in the server);
 * one it has forgotten is stored twice, which chan-in drops.
 *
 * chan-in. The worker is channel B's producer and a durable pull consumer of the
 * stream (WorkQueue: the stream forgets what was acked). Each message is reserved in
 * channel B, copied, recorded in the mark (below), committed, then acked; an ack lost
 * only means a redelivery. The mark says which stream message and which origin
 * message was committed last, so a redelivery or a message stored twice is dropped
 * whatever the timing. The stream holds channel A's messages in order, so a stream
 * sequence that jumps means an earlier message is still out with a lost delivery:
 * then the consumer is made anew (everything unacked comes again, in order) rather
 * than committing past the hole.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <shmkit/bridge.h>
#include <shmkit/chan.h>
#include <shmkit/seg.h>
#include "jetstream.h"

#define HDR_ORIGIN "Shmkit-Origin"
#define HDR_CHAN "Shmkit-Chan"
#define HDR_POS "Shmkit-Pos"
/* Every publish carries a MaxWait: nats.c times an async publish out only then, and a
 * PubAck lost in a server restart would otherwise leave it pending for ever. Loopback
 * or LAN acks take milliseconds; 2 s is far beyond a loaded machine's, and bounds
 * what a lost publish costs. */
#define PUB_WAIT_MS 2000
#define WINDOW_DEFAULT 256u
#define WINDOW_MAX 65536u
#define WINDOW_BYTES ((size_t)1 << 20) /* in flight; below nats.c's reconnect buffer */
#define MAX_BYTES_DEFAULT ((uint64_t)64 << 20)
#define DUP_WINDOW_DEFAULT (30 * SHMKIT_SEC)
#define BACKOFF_MIN_NS (10 * SHMKIT_MSEC)
#define BACKOFF_MAX_NS SHMKIT_SEC
#define IDLE_NS (100 * SHMKIT_MSEC) /* longest wait between looks at the stop flag */
#define HELD_RETRY_NS SHMKIT_SEC    /* an oversized message: look at max_payload again */
/* A message fetched and not acked within this is delivered again; a channel B that
 * stays full longer gets InProgress every half of it. */
#define ACK_WAIT_NS (30 * SHMKIT_SEC)
/* Messages delivered to chan-in and not yet acked, at most (the server holds back
 * the rest): well above a batch, so that a request can be filled. */
#define MAX_ACK_PENDING 4096
#define FETCH_BATCH 256
#define FETCH_BYTES ((int64_t)1 << 20)
#define FETCH_EXPIRES_NS (500 * SHMKIT_MSEC)
#define RESERVE_SLICE_NS (200 * SHMKIT_MSEC)
#define ID_MAX 40 /* "<16 hex>.<16 hex>" and a NUL */

/* The de-dup record of a chan-in mapping, the 4 KiB data segment "<channel>.jsmark".
 * Written only by the holder of channel B's producer role (this worker, exclusive),
 * read by the next holder at its start. Invariant: slot[gen & 1] describes the last
 * committed message, or the one being committed (gen 0: none yet). Per message the
 * worker writes slot[(gen + 1) & 1] (plain stores: it held the message before last,
 * no reader looks at it), then stores gen + 1 (release: the slot before the number
 * that points at it), then commits. A death mid-slot leaves gen unchanged, so a torn
 * slot is never read; a death between the gen store and the commit is found at the
 * next start (the slot's channel position is not below the channel's true tail) and
 * undone by storing gen - 1. */
#define MARK_MAGIC UINT64_C(0x314b52414d534a53) /* "SJSMARK1" little-endian */
#define MARK_SIZE 4096u
struct jsmark_slot {
	uint64_t q;      /* channel B position of the record */
	uint64_t seq;    /* its JetStream stream sequence */
	uint64_t stream; /* the stream's creation time (ns): sequences of one incarnation */
	uint64_t chan;   /* origin channel's ctime (Shmkit-Chan); 0: none given */
	uint64_t pos;    /* origin position (Shmkit-Pos) */
};
struct jsmark {
	_Atomic uint64_t magic; /* stored last at (re)initialisation, release */
	uint64_t chan_ctime; /* channel B's creation time: positions of one incarnation */
	_Atomic uint64_t gen;
	uint64_t reserved;
	struct jsmark_slot slot[2];
};
_Static_assert(sizeof(struct jsmark_slot) == 40, "jsmark slot layout");
_Static_assert(offsetof(struct jsmark, gen) == 16, "jsmark gen offset");
_Static_assert(offsetof(struct jsmark, slot) == 32, "jsmark slot offset");
_Static_assert(sizeof(struct jsmark) == 112 && sizeof(struct jsmark) <= MARK_SIZE, "jsmark size");

enum { E_UNSENT, E_SENT, E_OK, E_FAILED };

/* One message peeked ahead in channel A. */
struct ent {
	uint64_t pos;
	const void *buf; /* in channel A's ring: valid until released */
	size_t len;
	int state;       /* E_*; under mu (on_ack writes it) */
	bool dup;        /* the PubAck said duplicate; under mu */
	unsigned tries;  /* publishes of it by this worker; worker only */
};

struct shmkit__jsmap {
	unsigned dir;
	char *local, *subject, *stream, *host_id, *durable;
	uint64_t max_bytes;
	int64_t dup_ns;
	unsigned replicas;
	natsConnection *nc;
	jsCtx *js;
	shmkit_chan *ch;
	uint64_t ctime;              /* channel's segment creation time */
	pthread_t thread;
	bool started;
	atomic_bool stop;            /* set by shmkit__js_stop(), read by the worker */

	/* chan-out. The window is a ring of wcap entries from whead: [0, wsent) were
	 * published this round, [wsent, wcount) peeked and not (yet again) published.
	 * whead, wcount and wsent change only on the worker, under mu; on_ack reads
	 * them and writes entry states under mu. */
	pthread_mutex_t mu;
	bool mu_init;
	/* Why the mapping last failed to set up or move a message, for --status; "" once
	 * a message moved again. Under mu; why_set says whether it is non-empty, so that
	 * clearing costs a message one relaxed load. */
	char why[200];
	atomic_bool why_set;
	int efd;                     /* on_ack → worker */
	struct ent *w;
	unsigned wcap, whead, wcount, wsent;
	size_t wbytes;               /* bytes of [0, wcount); worker only */
	char prev[ID_MAX];           /* id published last ("" : the round's first) */
	bool held;                   /* an oversized message holds the mapping */
	bool async_used;             /* js_PublishMsgAsync was called (nats.c 3.4.1's
	                              * pending list crashes on a context that never was) */
	uint64_t held_pos;

	/* chan-in */
	shmkit_seg *markseg;
	struct jsmark *mark;
	natsSubscription *sub;
	natsSubscription **old_subs; /* replaced ones: destroyed after the connection
	                              * closes (nats.c 3.4.1 may crash destroying a
	                              * subscription while its connection runs) */
	size_t nold;
	int64_t stream_created;

	/* Counters: written by the worker (and on_ack), read for display: relaxed. */
	_Atomic uint64_t forwarded, dropped, oversized, skipped, duplicates, resent, errors;
	_Atomic uint64_t in_pending; /* chan-in: the stream's count after the last fetch */
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed); /* display only */
}

static bool stopping(struct shmkit__jsmap *j)
{
	/* Pairs with the release store in shmkit__js_stop(); nothing else is passed. */
	return atomic_load_explicit(&j->stop, memory_order_acquire);
}

/* Sleeps @ns in slices, returning early when asked to stop. */
static void nap(struct shmkit__jsmap *j, int64_t ns)
{
	int64_t end = mono_ns() + ns;
	while (!stopping(j)) {
		int64_t left = end - mono_ns();
		if (left <= 0)
			return;
		if (left > IDLE_NS)
			left = IDLE_NS;
		struct timespec ts = {left / SHMKIT_SEC, left % SHMKIT_SEC};
		nanosleep(&ts, NULL);
	}
}

static int64_t backoff_next(int64_t b)
{
	return b <= 0 ? BACKOFF_MIN_NS : b * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : b * 2;
}

int shmkit_bridge_valid_stream(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int shmkit__js_valid(const struct shmkit_bridge_map *m)
{
	if (m->dir != SHMKIT_BRIDGE_CHAN_OUT && m->dir != SHMKIT_BRIDGE_CHAN_IN)
		return 0;
	if (!m->local || m->local[0] != '/' || strlen(m->local) > 240) /* + ".jsmark" */
		return 0;
	if (!m->subject && !m->stream)
		return 0;
	if (m->subject && !shmkit_bridge_valid_subject(m->subject, 0))
		return 0;
	if (m->stream && !shmkit_bridge_valid_stream(m->stream))
		return 0;
	if (!m->stream && strlen(m->subject) > 255)
		return 0;
	if (m->dup_window_ns < 0 || m->replicas > 5 || m->window > WINDOW_MAX)
		return 0;
	return 1;
}

static char *strdup_printf(const char *fmt, const char *a, const char *b)
{
	size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, fmt, a, b ? b : "");
	return s;
}

static void id_of(const struct shmkit__jsmap *j, uint64_t pos, char *out)
{
	snprintf(out, ID_MAX, "%" PRIx64 ".%" PRIx64, j->ctime, pos);
}

/* ---- chan-in's mark ---- */

/* Takes the mark over at start: a record about another incarnation of channel B is
 * reset (documented: positions restart with a new channel); a record of a message
 * that was never committed (the last holder died between the gen store and the
 * commit) is undone. */
static int mark_recover(struct shmkit__jsmap *j)
{
	struct jsmark *k = j->mark;
	/* Acquire: pairs with the release store below, by an earlier holder. */
	if (atomic_load_explicit(&k->magic, memory_order_acquire) != MARK_MAGIC ||
	    k->chan_ctime != j->ctime) {
		atomic_store_explicit(&k->magic, 0, memory_order_relaxed);
		atomic_store_explicit(&k->gen, 0, memory_order_relaxed);
		memset(k->slot, 0, sizeof k->slot);
		k->chan_ctime = j->ctime;
		/* Release: a reader that sees the magic sees the reset record. */
		atomic_store_explicit(&k->magic, MARK_MAGIC, memory_order_release);
		return 0;
	}
	uint64_t tail;
	int r = shmkit_chan_position(j->ch, &tail);
	if (r < 0)
		return r;
	/* Acquire: pairs with the release store of gen in deliver(), so the slot it
	 * points at is read whole. */
	uint64_t g = atomic_load_explicit(&k->gen, memory_order_acquire);
	if (g > 0 && k->slot[g & 1].q >= tail)
		atomic_store_explicit(&k->gen, g - 1, memory_order_release);
	return 0;
}

/* ---- open / start / stop / free ---- */

int shmkit__js_open(const struct shmkit_bridge_map *m, const char *host_id,
		    struct shmkit__jsmap **out)
{
	int r = -ENOMEM;
	*out = NULL;
	struct shmkit__jsmap *j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->efd = -1;
	j->dir = m->dir;
	j->max_bytes = m->max_bytes ? m->max_bytes : MAX_BYTES_DEFAULT;
	j->dup_ns = m->dup_window_ns ? m->dup_window_ns : DUP_WINDOW_DEFAULT;
	j->replicas = m->replicas ? m->replicas : 1;
	j->wcap = m->window ? m->window : WINDOW_DEFAULT;
	j->local = strdup(m->local);
	j->host_id = strdup(host_id);
	if (m->stream)
		j->stream = strdup(m->stream);
	if (m->subject)
		j->subject = strdup(m->subject);
	else if (m->stream)
		j->subject = strdup_printf("shmkit.chan.%s", m->stream, NULL);
	if (!j->stream && j->subject) { /* every byte a stream name refuses becomes '_' */
		j->stream = strdup(j->subject);
		for (char *p = j->stream; p && *p; p++)
			if (!shmkit_bridge_valid_stream((char[2]){*p, 0}))
				*p = '_';
	}
	j->durable = strdup_printf("shmkit-%s", host_id, NULL);
	if (!j->local || !j->host_id || !j->stream || !j->subject || !j->durable)
		goto fail;
	for (char *p = j->durable; *p; p++) /* a durable name has no '.' */
		if (*p == '.')
			*p = '_';
	int out_dir = m->dir == SHMKIT_BRIDGE_CHAN_OUT;
	r = shmkit_chan_open(m->local, out_dir ? SHMKIT_CHAN_CONSUMER : SHMKIT_CHAN_PRODUCER, 0,
			     0, SHMKIT_SEG_CREATE, &j->ch);
	if (r < 0)
		goto fail;
	struct shmkit_seg_info si;
	r = shmkit_seg_stat(shmkit_chan_seg(j->ch), &si);
	if (r < 0)
		goto fail;
	j->ctime = (uint64_t)si.ctime_ns;
	if (out_dir) {
		r = -ENOMEM;
		j->w = calloc(j->wcap, sizeof *j->w);
		if (!j->w)
			goto fail;
		r = -pthread_mutex_init(&j->mu, NULL);
		if (r < 0)
			goto fail;
		j->mu_init = true;
		j->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (j->efd < 0) {
			r = -errno;
			goto fail;
		}
	} else {
		char name[SHMKIT_NAME_MAX + 1];
		snprintf(name, sizeof name, "%s.jsmark", m->local);
		/* Persistent: the record must outlive each bridge (gc would take a segment
		 * whose creator died). */
		r = shmkit_seg_open(name, SHMKIT_KIND_DATA, MARK_SIZE, 0644,
				    SHMKIT_SEG_CREATE | SHMKIT_SEG_PERSIST, &j->markseg);
		if (r < 0)
			goto fail;
		j->mark = shmkit_seg_data(j->markseg);
		r = mark_recover(j);
		if (r < 0)
			goto fail;
	}
	*out = j;
	return 0;
fail:
	shmkit__js_free(j);
	return r;
}

static void *out_main(void *arg);
static void *in_main(void *arg);
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

int shmkit__js_start(struct shmkit__jsmap *j, natsConnection *nc)
{
	jsOptions jo;
	jsOptions_Init(&jo);
	if (j->dir == SHMKIT_BRIDGE_CHAN_OUT) {
		/* Above our own window, so nats.c never stalls a publish: we count. */
		jo.PublishAsync.MaxPending = 2 * (int64_t)j->wcap;
		jo.PublishAsync.AckHandler = on_ack;
		jo.PublishAsync.AckHandlerClosure = j;
	}
	jo.Wait = PUB_WAIT_MS; /* stream and consumer calls */
	j->nc = nc;
	natsStatus s = natsConnection_JetStream(&j->js, nc, &jo);
	if (s != NATS_OK)
		return s == NATS_NO_MEMORY ? -ENOMEM : -EIO;
	int r = -pthread_create(&j->thread, NULL,
				j->dir == SHMKIT_BRIDGE_CHAN_OUT ? out_main : in_main, j);
	if (r == 0)
		j->started = true;
	return r;
}

void shmkit__js_stop(struct shmkit__jsmap *j)
{
	if (!j || !j->started)
		return;
	atomic_store_explicit(&j->stop, true, memory_order_release); /* see stopping() */
	pthread_join(j->thread, NULL);
	j->started = false;
}

void shmkit__js_free(struct shmkit__jsmap *j)
{
	if (!j)
		return;
	shmkit__js_stop(j);
	if (j->js) {
		/* What nats.c still holds for us (it will never be acked now). */
		natsMsgList pend = {0};
		if (j->async_used &&
		    js_PublishAsyncGetPendingList(&pend, j->js) == NATS_OK)
			natsMsgList_Destroy(&pend);
		jsCtx_Destroy(j->js);
	}
	natsSubscription_Destroy(j->sub);
	for (size_t i = 0; i < j->nold; i++)
		natsSubscription_Destroy(j->old_subs[i]);
	free(j->old_subs);
	shmkit_chan_close(j->ch);
	shmkit_seg_close(j->markseg);
	if (j->efd >= 0)
		close(j->efd);
	if (j->mu_init)
		pthread_mutex_destroy(&j->mu);
	free(j->w);
	free(j->local);
	free(j->subject);
	free(j->stream);
	free(j->host_id);
	free(j->durable);
	free(j);
}

/* ---- the stream ---- */

/* Creates the stream, or finds it made (by the other side, or an earlier run). Needs
 * the JetStream meta leader: with a two-server cluster there is none while one is
 * down, so the caller retries. 0 or -EIO. */
/* Records why the mapping cannot proceed: @what, then nats.c's text for this thread's
 * last error (without its "(file.c:123): " prefix), or the JetStream error code. A
 * server that answers nothing on the JetStream API runs without JetStream. */
static void why(struct shmkit__jsmap *j, const char *what, natsStatus s, jsErrCode jerr)
{
	const char *text = nats_GetLastError(NULL), *p;
	if (!text || !*text)
		text = natsStatus_GetText(s);
	while (*text == '(' && (p = strstr(text, "): ")) != NULL)
		text = p + 3;
	pthread_mutex_lock(&j->mu);
	if (s == NATS_NO_RESPONDERS)
		snprintf(j->why, sizeof j->why, "%s: no JetStream answers (a server run without -js?)",
			 what);
	else if (jerr)
		snprintf(j->why, sizeof j->why, "%s: %s (JetStream error %d)", what, text, (int)jerr);
	else
		snprintf(j->why, sizeof j->why, "%s: %s", what, text);
	for (char *c = j->why; *c; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f)
			*c = ' ';
	atomic_store_explicit(&j->why_set, true, memory_order_relaxed);
	pthread_mutex_unlock(&j->mu);
}

/* A message moved: whatever failed before no longer explains anything. */
static void why_clear(struct shmkit__jsmap *j)
{
	if (!atomic_load_explicit(&j->why_set, memory_order_relaxed))
		return;
	pthread_mutex_lock(&j->mu);
	j->why[0] = '\0';
	atomic_store_explicit(&j->why_set, false, memory_order_relaxed);
	pthread_mutex_unlock(&j->mu);
}

ssize_t shmkit__js_why(struct shmkit__jsmap *j, char *buf, size_t cap)
{
	if (!atomic_load_explicit(&j->why_set, memory_order_relaxed) || !j->mu_init)
		return 0;
	pthread_mutex_lock(&j->mu);
	int n = snprintf(buf, cap, "%s %s: %s", j->dir == SHMKIT_BRIDGE_CHAN_OUT ? "chan-out" : "chan-in",
			 j->local, j->why);
	pthread_mutex_unlock(&j->mu);
	return n < 0 ? 0 : (ssize_t)strlen(buf);
}

static int ensure_stream(struct shmkit__jsmap *j)
{
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	const char *subjects[1] = {j->subject};
	sc.Name = j->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy; /* a message acked by chan-in is gone */
	sc.Discard = js_DiscardNew;        /* full: refuse, never drop old ones */
	sc.MaxBytes = (int64_t)j->max_bytes;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)j->replicas;
	sc.Duplicates = j->dup_ns;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_AddStream(&si, j->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr) /* made with other settings: use it */
		s = js_GetStreamInfo(&si, j->js, j->stream, NULL, &jerr);
	if (s != NATS_OK) {
		count(&j->errors, 1);
		why(j, "cannot make the stream", s, jerr);
		return -EIO;
	}
	j->stream_created = si->Created;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* ---- chan-out ---- */

static struct ent *ent_at(struct shmkit__jsmap *j, unsigned i)
{
	return &j->w[(j->whead + i) % j->wcap];
}

/* nats.c's thread: one publish settled (ack, refusal or MaxWait timeout). */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct shmkit__jsmap *j = closure;
	const char *v = NULL;
	(void)js;
	(void)pae;
	if (msg && natsMsgHeader_Get(msg, HDR_POS, &v) == NATS_OK && v) {
		uint64_t pos = strtoull(v, NULL, 16);
		pthread_mutex_lock(&j->mu);
		/* A publish that left the window (released by a later OK) finds nothing. */
		for (unsigned i = 0; i < j->wsent; i++) {
			struct ent *e = ent_at(j, i);
			if (e->pos != pos)
				continue;
			if (e->state == E_SENT) {
				e->state = pa ? E_OK : E_FAILED;
				e->dup = pa && pa->Duplicate;
				if (!pa) /* refused (10070 after a lost one, 10077 full) or timed out */
					count(&j->errors, 1);
			}
			break;
		}
		pthread_mutex_unlock(&j->mu);
	}
	uint64_t one = 1;
	ssize_t w = write(j->efd, &one, sizeof one); /* a full counter is still readable */
	(void)w;
	natsMsg_Destroy(msg);
}

/* Bytes of the headers a publish adds (NATS/1.0 line, "Key: value\r\n" each, the
 * closing CRLF), which count with the data against max_payload. */
static size_t header_bytes(const struct shmkit__jsmap *j)
{
	return 10 + (strlen("Nats-Msg-Id") + 4 + ID_MAX) +
	       (strlen("Nats-Expected-Last-Msg-Id") + 4 + ID_MAX) +
	       (strlen("Nats-Expected-Stream") + 4 + strlen(j->stream)) +
	       (strlen(HDR_ORIGIN) + 4 + strlen(j->host_id)) + (strlen(HDR_CHAN) + 4 + 16) +
	       (strlen(HDR_POS) + 4 + 16) + 2;
}

/* Whether @e may be sent: a message larger than the server's max_payload holds the
 * mapping (counted once per message) until a server takes it. */
static bool fits(struct shmkit__jsmap *j, const struct ent *e)
{
	int64_t mp = natsConnection_GetMaxPayload(j->nc); /* 0: not known yet */
	if (mp <= 0 || (int64_t)(e->len + header_bytes(j)) <= mp) {
		j->held = false;
		return true;
	}
	if (!j->held || j->held_pos != e->pos) {
		count(&j->oversized, 1);
		j->held = true;
		j->held_pos = e->pos;
	}
	return false;
}

static natsStatus make_msg(struct shmkit__jsmap *j, const struct ent *e, natsMsg **m)
{
	char v[24];
	natsStatus s = natsMsg_Create(m, j->subject, NULL, e->buf, (int)e->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*m, HDR_ORIGIN, j->host_id);
	snprintf(v, sizeof v, "%" PRIx64, j->ctime);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*m, HDR_CHAN, v);
	snprintf(v, sizeof v, "%" PRIx64, e->pos);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*m, HDR_POS, v);
	return s;
}

/* Every publish's options: the entry's id (in @id, which @po points to), a MaxWait,
 * the stream. No expectation: the caller adds the chain where it applies. */
static void pub_opts(const struct shmkit__jsmap *j, const struct ent *e, char *id,
		     jsPubOptions *po)
{
	id_of(j, e->pos, id);
	jsPubOptions_Init(po);
	po->MsgId = id;
	po->MaxWait = PUB_WAIT_MS;
	po->ExpectStream = j->stream;
}

/* Publishes entry wsent asynchronously, chained to the previous one. 0, or -1 when
 * nats.c refused it (then it is FAILED: nothing after it goes out this round). */
static int publish_async(struct shmkit__jsmap *j)
{
	struct ent *e = ent_at(j, j->wsent);
	char id[ID_MAX];
	natsMsg *m = NULL;
	jsPubOptions po;
	pub_opts(j, e, id, &po);
	po.ExpectLastMsgId = j->prev; /* the chain */
	natsStatus s = make_msg(j, e, &m);
	/* Registered before it goes: its ack may come before the call returns. */
	pthread_mutex_lock(&j->mu);
	e->state = E_SENT;
	e->dup = false;
	j->wsent++;
	pthread_mutex_unlock(&j->mu);
	if (s == NATS_OK) {
		j->async_used = true;
		s = js_PublishMsgAsync(j->js, &m, &po); /* takes m on success */
	}
	natsMsg_Destroy(m);
	if (e->tries++ > 0)
		count(&j->resent, 1);
	if (s != NATS_OK) {
		pthread_mutex_lock(&j->mu);
		if (e->state == E_SENT)
			e->state = E_FAILED;
		pthread_mutex_unlock(&j->mu);
		count(&j->errors, 1);
		return -1;
	}
	memcpy(j->prev, id, ID_MAX);
	return 0;
}

/* Releases every entry up to and including the newest OK one (an OK proves all
 * before it stored: see the top). Then reports whether any sent entry failed and
 * whether any is unsettled. */
static int settle(struct shmkit__jsmap *j, bool *failed, bool *unsettled)
{
	int k = -1;
	uint64_t dups = 0;
	*failed = *unsettled = false;
	pthread_mutex_lock(&j->mu);
	for (unsigned i = 0; i < j->wsent; i++)
		if (ent_at(j, i)->state == E_OK)
			k = (int)i;
	uint64_t pos = 0;
	if (k >= 0) {
		for (int i = 0; i <= k; i++) {
			struct ent *e = ent_at(j, (unsigned)i);
			dups += e->state == E_OK && e->dup;
			j->wbytes -= e->len;
		}
		pos = ent_at(j, (unsigned)k)->pos;
		j->whead = (j->whead + (unsigned)k + 1) % j->wcap;
		j->wcount -= (unsigned)k + 1;
		j->wsent -= (unsigned)k + 1;
	}
	for (unsigned i = 0; i < j->wsent; i++) {
		int st = ent_at(j, i)->state;
		*failed |= st == E_FAILED;
		*unsettled |= st == E_SENT;
	}
	pthread_mutex_unlock(&j->mu);
	if (k < 0)
		return 0;
	int r = shmkit_chan_release_to(j->ch, pos);
	if (r < 0) {
		count(&j->errors, 1);
		return r;
	}
	count(&j->forwarded, (uint64_t)k + 1);
	count(&j->duplicates, dups);
	why_clear(j);
	return 0;
}

/* The first publish of a round: synchronous and without expectation. NATS_OK: stored
 * (now or before); else why not. */
static natsStatus publish_sync(struct shmkit__jsmap *j)
{
	struct ent *e = ent_at(j, 0);
	char id[ID_MAX];
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	jsPubOptions po;
	pub_opts(j, e, id, &po);
	natsStatus s = make_msg(j, e, &m);
	if (s == NATS_OK)
		s = js_PublishMsg(&pa, j->js, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (e->tries++ > 0)
		count(&j->resent, 1);
	if (s != NATS_OK) {
		count(&j->errors, 1);
		why(j, "publishing", s, jerr);
		return s;
	}
	pthread_mutex_lock(&j->mu); /* settle() takes it from here like an async OK */
	e->state = E_OK;
	e->dup = pa->Duplicate;
	j->wsent = 1;
	pthread_mutex_unlock(&j->mu);
	jsPubAck_Destroy(pa);
	memcpy(j->prev, id, ID_MAX);
	return NATS_OK;
}

/* Peeks the next message into the window. 1 one added, else peek_next's result. */
static int peek_one(struct shmkit__jsmap *j)
{
	const void *buf;
	size_t len;
	uint64_t pos;
	ssize_t r = shmkit_chan_peek_next(j->ch, &buf, &len, &pos, 0);
	if (r <= 0)
		return (int)r;
	pthread_mutex_lock(&j->mu);
	struct ent *e = ent_at(j, j->wcount);
	*e = (struct ent){.pos = pos, .buf = buf, .len = len, .state = E_UNSENT};
	j->wcount++;
	pthread_mutex_unlock(&j->mu);
	j->wbytes += len;
	return 1;
}

/* Waits for an ack (and, with @chan, for channel A) up to @ns. */
static void out_wait(struct shmkit__jsmap *j, bool chan, int64_t ns)
{
	struct pollfd p[2] = {{.fd = j->efd, .events = POLLIN}, {.fd = -1}};
	if (chan) {
		p[1].fd = shmkit_chan_fd(j->ch);
		p[1].events = POLLIN;
	}
	int got = poll(p, p[1].fd >= 0 ? 2 : 1, (int)((ns + SHMKIT_MSEC - 1) / SHMKIT_MSEC));
	if (got > 0 && (p[0].revents & POLLIN)) {
		uint64_t v;
		ssize_t n = read(j->efd, &v, sizeof v);
		(void)n;
	}
}

static void *out_main(void *arg)
{
	struct shmkit__jsmap *j = arg;
	bool round_start = true; /* the next publish is a round's first */
	int64_t backoff = 0;
	while (!stopping(j)) {
		bool failed, unsettled;
		if (settle(j, &failed, &unsettled) < 0) {
			nap(j, BACKOFF_MAX_NS);
			continue;
		}
		if (failed) {
			if (unsettled) { /* each settles within MaxWait */
				out_wait(j, false, IDLE_NS);
				continue;
			}
			/* All settled, and no OK after the failure: a new round from the
			 * oldest unreleased message, after a back-off. */
			pthread_mutex_lock(&j->mu);
			for (unsigned i = 0; i < j->wsent; i++)
				ent_at(j, i)->state = E_UNSENT;
			j->wsent = 0;
			pthread_mutex_unlock(&j->mu);
			round_start = true;
			backoff = backoff_next(backoff);
			nap(j, backoff);
			continue;
		}
		if (round_start) {
			if (j->wcount == 0) {
				int r = peek_one(j);
				if (r <= 0) {
					out_wait(j, r == -EAGAIN, IDLE_NS);
					if (r < 0 && r != -EAGAIN && r != -EPIPE && r != -ETIMEDOUT)
						count(&j->errors, 1);
					continue;
				}
			}
			if (!fits(j, ent_at(j, 0))) {
				nap(j, HELD_RETRY_NS);
				continue;
			}
			natsStatus s = publish_sync(j);
			if (s != NATS_OK) {
				/* No stream takes the subject: make it. Only then, because
				 * that needs the JetStream meta leader, which a two-server
				 * cluster lacks for seconds around a server's restart, while
				 * publishing to an existing stream does not. */
				if (s == NATS_NO_RESPONDERS)
					ensure_stream(j);
				backoff = backoff_next(backoff);
				nap(j, backoff);
				continue;
			}
			round_start = false;
			backoff = 0;
			continue;
		}
		/* Entries peeked before a failure go again, in order; then new ones. */
		bool chan_idle = false, stop_sending = false;
		while (j->wsent < j->wcount) {
			if (!fits(j, ent_at(j, j->wsent)) || publish_async(j) < 0) {
				stop_sending = true;
				break;
			}
		}
		while (!stop_sending && j->wcount < j->wcap && j->wbytes < WINDOW_BYTES) {
			int r = peek_one(j);
			if (r <= 0) {
				chan_idle = r == -EAGAIN;
				if (r < 0 && r != -EAGAIN && r != -EPIPE && r != -ETIMEDOUT)
					count(&j->errors, 1);
				break;
			}
			if (!fits(j, ent_at(j, j->wsent)) || publish_async(j) < 0)
				break;
		}
		out_wait(j, chan_idle, j->held ? HELD_RETRY_NS : IDLE_NS);
	}
	/* Stopping: what is in flight settles within MaxWait; release what was stored,
	 * so a successor sends less again. */
	int64_t end = mono_ns() + (PUB_WAIT_MS + 500) * SHMKIT_MSEC;
	while (mono_ns() < end) {
		bool failed, unsettled;
		if (settle(j, &failed, &unsettled) < 0 || !unsettled)
			break;
		out_wait(j, false, IDLE_NS);
	}
	return NULL;
}

/* ---- chan-in ---- */

/* Deletes the durable consumer (if any) and makes it again: on a WorkQueue stream it
 * then delivers everything not acked, in stream order, at once, including what a
 * dead predecessor had fetched. The old subscription is kept until the connection
 * closes. 0 or -EIO (retried by the caller). */
static int consumer_anew(struct shmkit__jsmap *j)
{
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteConsumer(j->js, j->stream, j->durable, NULL, &jerr);
	if (s != NATS_OK && jerr != JSConsumerNotFoundErr && s != NATS_NOT_FOUND) {
		count(&j->errors, 1);
		why(j, "cannot remake its consumer", s, jerr);
		return -EIO;
	}
	if (j->sub) {
		natsSubscription **o = realloc(j->old_subs, (j->nold + 1) * sizeof *o);
		if (!o)
			return -EIO;
		j->old_subs = o;
		natsSubscription_Unsubscribe(j->sub);
		j->old_subs[j->nold++] = j->sub;
		j->sub = NULL;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = j->stream;
	so.Config.Durable = j->durable;
	so.Config.AckPolicy = js_AckExplicit; /* the only one a WorkQueue stream takes */
	so.Config.AckWait = ACK_WAIT_NS;
	so.Config.MaxAckPending = MAX_ACK_PENDING;
	so.Config.DeliverPolicy = js_DeliverAll;
	s = js_PullSubscribe(&j->sub, j->js, j->subject, j->durable, NULL, &so, &jerr);
	if (s != NATS_OK) {
		j->sub = NULL;
		count(&j->errors, 1);
		why(j, "cannot make its consumer", s, jerr);
		return -EIO;
	}
	return 0;
}

static uint64_t hdr_hex(natsMsg *m, const char *key)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v)
		return 0;
	return strtoull(v, NULL, 16);
}

enum { D_DONE, D_SKIPPED, D_GAP, D_STOP };

/* One fetched message into channel B. D_DONE committed, D_SKIPPED a duplicate (both
 * to be acked), D_GAP an earlier stream message is missing (make the consumer anew),
 * D_STOP not delivered (stopping, or the message does not fit channel B). */
static int deliver(struct shmkit__jsmap *j, natsMsg *msg, uint64_t *last_seq)
{
	jsMsgMetaData *meta = NULL;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
		return D_SKIPPED; /* not a JetStream message: nothing to ack either way */
	uint64_t seq = meta->Sequence.Stream;
	atomic_store_explicit(&j->in_pending, meta->NumPending, memory_order_relaxed);
	jsMsgMetaData_Destroy(meta);
	uint64_t ich = hdr_hex(msg, HDR_CHAN), ipos = hdr_hex(msg, HDR_POS);
	struct jsmark *k = j->mark;
	/* Only this worker writes the mark: a relaxed load of our own store. */
	uint64_t g = atomic_load_explicit(&k->gen, memory_order_relaxed);
	const struct jsmark_slot *rec = g ? &k->slot[g & 1] : NULL;
	if ((*last_seq && seq <= *last_seq) ||
	    (rec && rec->stream == (uint64_t)j->stream_created && seq <= rec->seq) ||
	    (rec && ich && ich == rec->chan && ipos <= rec->pos)) {
		count(&j->skipped, 1);
		if (seq > *last_seq)
			*last_seq = seq;
		return D_SKIPPED;
	}
	if (*last_seq && seq > *last_seq + 1)
		return D_GAP;
	int len = natsMsg_GetDataLength(msg);
	if (len <= 0) { /* a channel message has at least one byte: not ours to carry */
		count(&j->dropped, 1);
		*last_seq = seq;
		return D_SKIPPED;
	}
	void *p = NULL;
	int64_t waited_from = mono_ns(), progress_at = waited_from;
	bool held = false;
	for (;;) {
		int r = shmkit_chan_reserve(j->ch, (size_t)len, RESERVE_SLICE_NS, &p);
		if (r == 0)
			break;
		if (stopping(j))
			return D_STOP;
		if (r == -EMSGSIZE) { /* held here until channel B is made larger */
			if (!held)
				count(&j->oversized, 1);
			held = true;
			nap(j, HELD_RETRY_NS);
		} else if (r != -ETIMEDOUT && r != -EAGAIN && r != -EPIPE) {
			count(&j->errors, 1); /* -EIDRM, -EPROTO: an operator must look */
			nap(j, HELD_RETRY_NS);
		} else if (r == -EPIPE) { /* full, consumer gone: wait for the next one */
			nap(j, RESERVE_SLICE_NS);
		}
		int64_t now = mono_ns();
		if (now - progress_at > ACK_WAIT_NS / 2) { /* keep it ours while channel B is full */
			natsMsg_InProgress(msg, NULL);
			progress_at = now;
		}
	}
	uint64_t q;
	if (shmkit_chan_position(j->ch, &q) < 0) {
		count(&j->errors, 1);
		return D_STOP;
	}
	memcpy(p, natsMsg_GetData(msg), (size_t)len);
	struct jsmark_slot *s = &k->slot[(g + 1) & 1];
	s->q = q;
	s->seq = seq;
	s->stream = (uint64_t)j->stream_created;
	s->chan = ich;
	s->pos = ipos;
	/* Release: the slot before the number that points at it (see struct jsmark). */
	atomic_store_explicit(&k->gen, g + 1, memory_order_release);
	shmkit_chan_commit(j->ch, (size_t)len);
	count(&j->forwarded, 1);
	why_clear(j);
	*last_seq = seq;
	return D_DONE;
}

/* The batch of the next fetch. nats.c 3.4.1 (Debian's) overruns its array in
 * natsSubscription_FetchRequest() when the subscription already holds more than half
 * a batch as the call starts (messages of an earlier request that came after it
 * returned: at a reconnect, a request that expired as they came, a byte limit counted
 * differently by client and server); fixed only in nats.c 3.10.0 ("Fix heap buffer
 * overflow in _fetch", #749). Most likely what was seen here once in some 60 runs:
 * a chan-in bridge aborting in malloc() right after its server stopped (no stack
 * was caught). So when the subscription
 * holds more than a quarter batch, the batch is made at least twice that plus a
 * batch (room for what still arrives before the call looks). Such a batch may exceed
 * what the server sends at once (MAX_ACK_PENDING), and the request then lasts until
 * it expires: rare. */
static int fetch_batch(natsSubscription *sub)
{
	int msgs = 0, bytes = 0;
	if (natsSubscription_GetPending(sub, &msgs, &bytes) == NATS_OK && msgs > FETCH_BATCH / 4)
		return 2 * msgs + FETCH_BATCH;
	return FETCH_BATCH;
}

static void *in_main(void *arg)
{
	struct shmkit__jsmap *j = arg;
	int64_t backoff = 0;
	int timeouts = 0;
	bool anew = true;
	bool waiting = true; /* the next fetch waits for one message (nothing was left) */
	uint64_t last_seq = 0; /* last stream sequence handled since the consumer was made;
	                        * 0: none (the first one delivered is the oldest unacked) */
	while (!stopping(j)) {
		if (anew) {
			if (ensure_stream(j) < 0 || consumer_anew(j) < 0) {
				backoff = backoff_next(backoff);
				nap(j, backoff);
				continue;
			}
			anew = false;
			last_seq = 0;
		}
		/* Two kinds of fetch, because nats.c's returns only once it has the whole
		 * batch or the request expired: a batch of 256 asked while messages come one
		 * by one would hold the first for up to FETCH_EXPIRES_NS. So, while nothing
		 * is known to wait, ask for one message and wait for it (it comes as soon as
		 * it is stored); then take what is there by batches without waiting (NoWait:
		 * the server sends what it has and says so), until it has nothing. */
		natsMsgList list = {0};
		jsFetchRequest fr;
		jsFetchRequest_Init(&fr);
		fr.MaxBytes = FETCH_BYTES;
		fr.Expires = FETCH_EXPIRES_NS;
		fr.Batch = fetch_batch(j->sub);
		if (waiting && fr.Batch == FETCH_BATCH)
			fr.Batch = 1;
		else
			fr.NoWait = true;
		natsStatus s = natsSubscription_FetchRequest(&list, j->sub, &fr);
		if (s == NATS_NOT_FOUND && fr.NoWait) { /* nothing waits: wait for the next */
			waiting = true;
			timeouts = 0;
			continue;
		}
		waiting = false;
		if (s == NATS_TIMEOUT) {
			waiting = true;
			/* nats.c 3.4.1 may answer a stale timeout at once after one: a short
			 * pause after two in a row keeps that from spinning. */
			if (++timeouts >= 2)
				nap(j, 10 * SHMKIT_MSEC);
			continue;
		}
		timeouts = 0;
		if (s != NATS_OK) { /* disconnected, no responders, consumer gone... */
			count(&j->errors, 1);
			why(j, "fetching", s, 0);
			backoff = backoff_next(backoff);
			nap(j, backoff);
			if (backoff >= BACKOFF_MAX_NS) /* still failing after ~1 s of tries */
				anew = true;
			continue;
		}
		backoff = 0;
		for (int i = 0; i < list.Count; i++) {
			int d = deliver(j, list.Msgs[i], &last_seq);
			if (d == D_DONE || d == D_SKIPPED) {
				natsMsg_Ack(list.Msgs[i], NULL); /* a lost ack is a redelivery: dropped */
				continue;
			}
			if (d == D_GAP) {
				count(&j->errors, 1);
				anew = true;
			}
			break; /* never past a message not delivered: the rest come again */
		}
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

/* ---- counters and status ---- */

void shmkit__js_counts(struct shmkit__jsmap *j, struct shmkit_bridge_counts *c)
{
	memset(c, 0, sizeof *c);
	c->forwarded = atomic_load_explicit(&j->forwarded, memory_order_relaxed);
	c->dropped = atomic_load_explicit(&j->dropped, memory_order_relaxed);
	c->oversized = atomic_load_explicit(&j->oversized, memory_order_relaxed);
	c->skipped = atomic_load_explicit(&j->skipped, memory_order_relaxed);
	c->duplicates = atomic_load_explicit(&j->duplicates, memory_order_relaxed);
	c->resent = atomic_load_explicit(&j->resent, memory_order_relaxed);
	c->errors = atomic_load_explicit(&j->errors, memory_order_relaxed);
	if (j->dir == SHMKIT_BRIDGE_CHAN_OUT) {
		/* Committed and not yet released: the channel's own counters (any thread). */
		struct shmkit_chan_stats st;
		if (j->ch && shmkit_chan_stats(j->ch, &st) == 0 && st.msgs_sent >= st.msgs_recv)
			c->pending = st.msgs_sent - st.msgs_recv;
	} else {
		c->pending = atomic_load_explicit(&j->in_pending, memory_order_relaxed);
	}
}

int shmkit__js_status_line(struct shmkit__jsmap *j, char *buf, size_t cap)
{
	struct shmkit_bridge_counts c;
	shmkit__js_counts(j, &c);
	return snprintf(buf, cap,
			"%s %s %s forwarded %" PRIu64 " dropped %" PRIu64 " oversized %" PRIu64
			" pending %" PRIu64 " skipped %" PRIu64 " channel %s duplicates %" PRIu64
			" resent %" PRIu64 " errors %" PRIu64 "\n",
			j->dir == SHMKIT_BRIDGE_CHAN_OUT ? "out" : "in", j->local, j->subject,
			c.forwarded, c.dropped, c.oversized, c.pending, c.skipped, j->stream,
			c.duplicates, c.resent, c.errors);
}
