/* shmkit(1) — what moves, as it moves: top (every channel, topic and blob with its
 * rates) and hz (one channel's or topic's message rate), and the figures reader they
 * share with stat.
 *
 * Both only observe: a rate is the difference of a segment's own counters (messages
 * and bytes committed, sleeps, a blob's write count) between two readings through an
 * observer handle, divided by the time between them. Nothing is received, so a
 * channel's consumer or a topic's subscribers lose nothing to the tool, and a reading
 * costs the same whatever the traffic. Each reading is timed right after its counters
 * are read, so that a slow listing of many segments does not skew one segment's rate. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "cmd.h"

/* ---- figures, through a read-only handle of the segment's kind ---- */

static int read_topic(const char *name, unsigned flags, struct shmkit__figures *f)
{
	shmkit_topic *t;
	int r = shmkit_topic_open(name, SHMKIT_TOPIC_OBSERVER, 0, 0, flags & SHMKIT_SEG_SYSV, &t);
	if (r < 0)
		return r;
	r = shmkit_topic_stats(t, &f->topic);
	f->when_ns = shmkit__mono_ns();
	/* The list may grow between the two calls: whatever fits the second is kept. */
	int n = r == 0 ? shmkit_topic_subscribers(t, NULL, 0) : 0;
	if (n > 0) {
		f->subs = calloc((size_t)n, sizeof *f->subs);
		int m = f->subs ? shmkit_topic_subscribers(t, f->subs, (size_t)n) : -ENOMEM;
		f->nsubs = m < 0 ? 0 : m < n ? m : n;
	}
	shmkit_topic_close(t);
	return r;
}

int shmkit__figures_read(const char *name, unsigned flags, unsigned kind,
			 struct shmkit__figures *f)
{
	int r;
	memset(f, 0, sizeof *f);
	f->kind = kind;
	flags &= SHMKIT_SEG_SYSV;
	if (kind == SHMKIT_KIND_BLOB) {
		shmkit_blob *b;
		r = shmkit_blob_open(name, 0, 0, flags | SHMKIT_SEG_RDONLY, &b);
		if (r < 0)
			return r;
		f->blob_size = shmkit_blob_size(b);
		f->blob_version = shmkit_blob_version(b);
		f->when_ns = shmkit__mono_ns();
		r = f->blob_version < 0 ? (int)f->blob_version : 0;
		shmkit_blob_close(b);
		return r;
	}
	if (kind == SHMKIT_KIND_CHAN) {
		shmkit_chan *ch;
		r = shmkit_chan_open(name, SHMKIT_CHAN_OBSERVER, 0, 0, flags, &ch);
		if (r < 0)
			return r;
		r = shmkit_chan_stats(ch, &f->chan);
		f->when_ns = shmkit__mono_ns();
		shmkit_chan_close(ch);
		return r;
	}
	if (kind == SHMKIT_KIND_TOPIC)
		return read_topic(name, flags, f);
	return -EINVAL;
}

void shmkit__figures_free(struct shmkit__figures *f)
{
	free(f->subs);
	f->subs = NULL;
	f->nsubs = 0;
}

/* What a rate is made of: messages (a blob: writes), payload bytes and sleeps. A
 * counter that cannot be had is UINT64_MAX (blob bytes, topic sleeps). */
struct counts {
	uint64_t msgs, bytes, sleeps;
};

static struct counts counts_of(const struct shmkit__figures *f)
{
	switch (f->kind) {
	case SHMKIT_KIND_CHAN:
		return (struct counts){f->chan.msgs_sent, f->chan.bytes_sent,
				       f->chan.producer_sleeps + f->chan.consumer_sleeps};
	case SHMKIT_KIND_TOPIC:
		return (struct counts){f->topic.published, f->topic.bytes_published, UINT64_MAX};
	default:
		return (struct counts){(uint64_t)f->blob_version, UINT64_MAX, UINT64_MAX};
	}
}

/* (b - a) per second over the readings' times; NAN when unknown or when the counter
 * went back (a segment removed and made again under the name, or a peer's write). */
static double rate(uint64_t a, uint64_t b, int64_t ta, int64_t tb)
{
	if (a == UINT64_MAX || b == UINT64_MAX || b < a || tb <= ta)
		return NAN;
	return (double)(b - a) * 1e9 / (double)(tb - ta);
}

/* ---- options and waiting ---- */

/* The terminal's settings while top reads single keys; restored on every way out. */
struct keys {
	int raw;   /* the terminal is in single-key mode: restore saved */
	int on;    /* keys are watched (until the input ends) */
	struct termios saved;
};

static void keys_start(struct keys *k)
{
	struct termios raw;
	k->raw = k->on = 0;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &k->saved) < 0)
		return;
	raw = k->saved;
	/* Keys arrive one at a time and unechoed; ISIG stays, so Ctrl-C is SIGINT. */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		k->raw = k->on = 1;
}

static void keys_stop(struct keys *k)
{
	if (k->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &k->saved);
	k->raw = k->on = 0;
}

/* Waits until CLOCK_MONOTONIC reaches deadline. Returns 1 when told to stop (a signal,
 * or q typed when k is on), 0 at the deadline. */
static int wait_until(int64_t deadline, struct keys *k)
{
	for (;;) {
		if (shmkit__stop)
			return 1;
		int64_t left = deadline - shmkit__mono_ns();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int ms = (int)((left + 999999) / 1000000);
		int n = poll(&p, k && k->on ? 1 : 0, ms);
		if (n > 0 && (p.revents & POLLIN)) {
			char c;
			ssize_t got = read(STDIN_FILENO, &c, 1);
			if (got == 1 && (c == 'q' || c == 'Q'))
				return 1;
			if (got == 0)
				k->on = 0; /* end of input: keys no longer come */
		} else if (n > 0) {
			k->on = 0; /* POLLHUP, POLLERR: stop watching */
		}
	}
}

/* When the next reading is due: one interval after the last, so that the rhythm holds
 * whatever a reading costs, but never in the past, so that a reading slower than the
 * interval (many segments, a loaded machine) is not followed by a burst of readings
 * only microseconds apart. */
static int64_t next_frame(int64_t last, double interval)
{
	int64_t next = last + (int64_t)(interval * 1e9), now = shmkit__mono_ns();
	return next > now ? next : now;
}

/* Seconds for --interval: finite, 10 ms to one hour. Returns 0 or -1. */
static int parse_interval(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (!s[0] || *end || !(v >= 0.01 && v <= 3600))
		return -1;
	*out = v;
	return 0;
}

/* A positive count for --count. Returns 0 or -1. */
static int parse_count(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!s[0] || *end || errno || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* v for a column: 1234 -> "1234", 12345 -> "12.3k", then M, G, T; "-" when unknown. */
static const char *human(double v, char *buf, size_t cap)
{
	static const char unit[] = " kMGTP";
	int u = 0;
	if (isnan(v))
		return "-";
	if (v < 10000) {
		snprintf(buf, cap, v < 10 && v != floor(v) ? "%.1f" : "%.0f", v);
		return buf;
	}
	while (v >= 1000 && u < 5)
		v /= 1000, u++;
	snprintf(buf, cap, "%.*f%c", v < 100 ? 1 : 0, v, unit[u]);
	return buf;
}

/* ---- top ---- */

/* One segment at one reading. */
struct sample {
	struct entry e;
	struct shmkit__figures f;
	int ok; /* f was read */
};

struct frame {
	struct sample *s;
	int n;
};

static int watched(unsigned kind)
{
	return kind == SHMKIT_KIND_CHAN || kind == SHMKIT_KIND_TOPIC || kind == SHMKIT_KIND_BLOB;
}

static void frame_free(struct frame *fr)
{
	for (int i = 0; i < fr->n; i++)
		shmkit__figures_free(&fr->s[i].f);
	free(fr->s);
	fr->s = NULL;
	fr->n = 0;
}

/* Every channel, topic and blob that ls lists, with its figures. Returns 0 or
 * -ENOMEM. */
static int frame_take(struct frame *fr)
{
	struct list l = {0};
	int r = shmkit__collect(&l);
	fr->s = NULL;
	fr->n = 0;
	if (r == 0 && !(fr->s = calloc((size_t)l.n + 1, sizeof *fr->s)))
		r = -ENOMEM;
	for (int i = 0; r == 0 && i < l.n; i++) {
		const struct entry *e = &l.e[i];
		if (!watched(e->in.kind))
			continue;
		struct sample *s = &fr->s[fr->n++];
		s->e = *e;
		/* By the name the library reads ("id:N" for System V), not the header's:
		 * a peer may have written another segment's name there. */
		if (e->in.state == SHMKIT_STATE_READY)
			s->ok = shmkit__figures_read(e->obj, e->in.sysv ? SHMKIT_SEG_SYSV : 0,
						     e->in.kind, &s->f) == 0;
	}
	free(l.e);
	return r;
}

/* The same segment in the previous reading: same backend, object, kind and creation
 * time (a segment removed and made again under the name starts its counters anew). */
static const struct sample *frame_find(const struct frame *fr, const struct sample *s)
{
	for (int i = 0; fr && i < fr->n; i++) {
		const struct entry *a = &fr->s[i].e, *b = &s->e;
		if (a->in.sysv == b->in.sysv && a->in.kind == b->in.kind &&
		    a->in.ctime_ns == b->in.ctime_ns && !strcmp(a->obj, b->obj) &&
		    (a->in.sysv || (a->dev == b->dev && a->ino == b->ino)))
			return &fr->s[i];
	}
	return NULL;
}

/* One row of the table, from two readings of a segment. */
struct row {
	const struct sample *s;
	double msgs, bytes, sleeps; /* per second; NAN unknown */
	double fill;                /* chan: percent of the ring in use; NAN otherwise */
	double lag;                 /* topic: the slowest live subscriber's lag; NAN */
	int subs_alive, subs_dead;  /* topic: listed subscribers by liveness */
};

static struct row row_of(const struct sample *s, const struct sample *prev)
{
	struct row w = {.s = s, .msgs = NAN, .bytes = NAN, .sleeps = NAN, .fill = NAN, .lag = NAN};
	if (!s->ok)
		return w;
	if (prev && prev->ok) {
		struct counts a = counts_of(&prev->f), b = counts_of(&s->f);
		w.msgs = rate(a.msgs, b.msgs, prev->f.when_ns, s->f.when_ns);
		w.bytes = rate(a.bytes, b.bytes, prev->f.when_ns, s->f.when_ns);
		w.sleeps = rate(a.sleeps, b.sleeps, prev->f.when_ns, s->f.when_ns);
	}
	if (s->f.kind == SHMKIT_KIND_CHAN && s->f.chan.capacity)
		w.fill = 100.0 * (double)s->f.chan.used / (double)s->f.chan.capacity;
	if (s->f.kind == SHMKIT_KIND_TOPIC) {
		uint64_t lag = 0;
		for (int i = 0; i < s->f.nsubs; i++) {
			const struct shmkit_topic_sub_info *u = &s->f.subs[i];
			if (u->alive == 0) {
				w.subs_dead++; /* its lag only grows until it is evicted */
				continue;
			}
			w.subs_alive++;
			lag = u->lag > lag ? u->lag : lag;
		}
		if (w.subs_alive)
			w.lag = (double)lag;
	}
	return w;
}

static void json_opt_int(FILE *f, const char *key, long long v, int known)
{
	fprintf(f, ", \"%s\": ", key);
	if (known)
		fprintf(f, "%lld", v);
	else
		fputs("null", f);
}

static void json_rate(FILE *f, const char *key, double v)
{
	fprintf(f, ", \"%s\": ", key);
	shmkit__json_num(f, v);
}

/* ---- bridges: their status blobs (include/shmkit/bridge.h) ---- */

#define BRIDGE_PREFIX "/shmkit-bridge-"
#define BRIDGE_MAPS_MAX 32
/* A status older than this is a bridge that died without removing it (as --status). */
#define BRIDGE_STALE_MS 2000

struct bridge_map {
	char dir[4], local[256], subject[256];
	unsigned long long forwarded, dropped, oversized, pending, skipped;
	/* A channel mapping's line goes on: channel STREAM duplicates N resent N errors N */
	int chan;
	char stream[256];
	unsigned long long duplicates, resent, errors;
};
struct bridge_status {
	char host[256];
	int connected, running;
	int nmaps;
	struct bridge_map map[BRIDGE_MAPS_MAX];
};

/* Read and parse the status of the bridge whose blob is @name: 1, or 0 if it is not a
 * bridge's status. The text is another process's, so hostile: every field is bounded
 * and a line that does not parse ends the list. */
static int bridge_read(const char *name, unsigned flags, struct bridge_status *bs)
{
	if (strncmp(name, BRIDGE_PREFIX, strlen(BRIDGE_PREFIX)) != 0)
		return 0;
	shmkit_blob *b;
	if (shmkit_blob_open(name, 0, 0, flags | SHMKIT_SEG_RDONLY, &b) < 0)
		return 0;
	static char text[64 << 10];
	uint64_t v;
	ssize_t n = shmkit_blob_read(b, text, sizeof text - 1, &v);
	shmkit_blob_close(b);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	memset(bs, 0, sizeof *bs);
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	char url[256];
	unsigned long long written;
	int ver;
	if (!line || sscanf(line, "shmkit-bridge %d %255s %d %255s %llu", &ver, bs->host,
			    &bs->connected, url, &written) != 5 || ver != 1)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned long long ms = (unsigned long long)now.tv_sec * 1000 + (unsigned long long)now.tv_nsec / 1000000;
	bs->running = ms - written <= BRIDGE_STALE_MS || written > ms;
	while (bs->nmaps < BRIDGE_MAPS_MAX && (line = strtok_r(NULL, "\n", &save)) != NULL) {
		struct bridge_map *m = &bs->map[bs->nmaps];
		int end = 0;
		if (sscanf(line, "%3s %255s %255s forwarded %llu dropped %llu oversized %llu pending %llu skipped %llu%n",
			   m->dir, m->local, m->subject, &m->forwarded, &m->dropped, &m->oversized,
			   &m->pending, &m->skipped, &end) != 8)
			break;
		m->chan = sscanf(line + end, " channel %255s duplicates %llu resent %llu errors %llu",
				 m->stream, &m->duplicates, &m->resent, &m->errors) == 4;
		bs->nmaps++;
	}
	return 1;
}

static void bridge_json(FILE *f, const struct bridge_status *bs)
{
	fputs(", \"bridge\": {\"host\": ", f);
	shmkit__json_str(f, bs->host);
	fprintf(f, ", \"running\": %s, \"connected\": %s, \"mappings\": [",
		bs->running ? "true" : "false", bs->connected ? "true" : "false");
	for (int i = 0; i < bs->nmaps; i++) {
		const struct bridge_map *m = &bs->map[i];
		fprintf(f, "%s{\"direction\": ", i ? ", " : "");
		shmkit__json_str(f, m->dir);
		fputs(", \"local\": ", f);
		shmkit__json_str(f, m->local);
		fputs(", \"subject\": ", f);
		shmkit__json_str(f, m->subject);
		fprintf(f, ", \"forwarded\": %llu, \"dropped\": %llu, \"oversized\": %llu, "
			   "\"pending\": %llu, \"skipped\": %llu",
			m->forwarded, m->dropped, m->oversized, m->pending, m->skipped);
		if (m->chan) {
			fputs(", \"channel\": {\"stream\": ", f);
			shmkit__json_str(f, m->stream);
			fprintf(f, ", \"duplicates\": %llu, \"resent\": %llu, \"errors\": %llu}",
				m->duplicates, m->resent, m->errors);
		}
		fputc('}', f);
	}
	fputs("]}", f);
}

static void row_json(FILE *f, const struct row *w)
{
	const struct sample *s = w->s;
	const struct entry *e = &s->e;
	fprintf(f, "{\"backend\": \"%s\", \"name\": ", e->in.sysv ? "sysv" : "posix");
	shmkit__json_str(f, e->name);
	fprintf(f, ", \"kind\": \"%s\", \"readable\": %s", shmkit__kind_name(e->in.kind),
		s->ok ? "true" : "false");
	json_rate(f, "msgs_per_s", w->msgs);
	json_rate(f, "bytes_per_s", w->bytes);
	json_rate(f, "sleeps_per_s", w->sleeps);
	json_rate(f, "fill_pct", w->fill);
	json_rate(f, "lag", w->lag);
	fprintf(f, ", \"creator_alive\": %s",
		e->in.creator_alive < 0 ? "null" : e->in.creator_alive ? "true" : "false");
	/* A lower bound is not a count: null, as ls says. */
	json_opt_int(f, "attached", e->users, e->users >= 0 && !e->blind);
	if (s->ok && s->f.kind == SHMKIT_KIND_CHAN) {
		const struct shmkit_chan_stats *c = &s->f.chan;
		fprintf(f, ", \"chan\": {\"capacity\": %llu, \"used\": %llu, \"msgs_sent\": %llu, "
			   "\"bytes_sent\": %llu, \"msgs_recv\": %llu",
			(unsigned long long)c->capacity, (unsigned long long)c->used,
			(unsigned long long)c->msgs_sent, (unsigned long long)c->bytes_sent,
			(unsigned long long)c->msgs_recv);
		json_opt_int(f, "producer_pid", c->producer_pid, c->producer_pid != 0);
		json_opt_int(f, "consumer_pid", c->consumer_pid, c->consumer_pid != 0);
		fprintf(f, ", \"producer_closed\": %s", c->producer_closed ? "true" : "false");
		fprintf(f, ", \"producer_alive\": %s, \"consumer_alive\": %s}",
			c->producer_alive < 0 ? "null" : c->producer_alive ? "true" : "false",
			c->consumer_alive < 0 ? "null" : c->consumer_alive ? "true" : "false");
	} else if (s->ok && s->f.kind == SHMKIT_KIND_TOPIC) {
		const struct shmkit_topic_stats *t = &s->f.topic;
		fprintf(f, ", \"topic\": {\"delivery\": \"%s\", \"published\": %llu, "
			   "\"bytes_published\": %llu, \"publishers\": %u, \"subscribers\": %u, "
			   "\"subscribers_alive\": %d, \"subscribers_dead\": %d}",
			t->reliable ? "reliable" : "lossy", (unsigned long long)t->published,
			(unsigned long long)t->bytes_published, t->publishers, t->subscribers,
			w->subs_alive, w->subs_dead);
	} else if (s->ok) {
		fprintf(f, ", \"blob\": {\"size\": %zu, \"writes\": %lld}", s->f.blob_size,
			(long long)s->f.blob_version);
		struct bridge_status bs;
		if (bridge_read(e->name, e->in.sysv ? SHMKIT_SEG_SYSV : 0, &bs))
			bridge_json(f, &bs);
	}
	fputc('}', f);
}

/* PEERS and ALIVE of a row, as text. */
static void row_peers(const struct row *w, char *peers, size_t pcap, char *alive, size_t acap)
{
	const struct sample *s = w->s;
	snprintf(peers, pcap, "-");
	snprintf(alive, acap, "-");
	if (!s->ok)
		return;
	if (s->f.kind == SHMKIT_KIND_CHAN) {
		const struct shmkit_chan_stats *c = &s->f.chan;
		char p[16] = "-", q[16] = "-";
		if (c->producer_pid)
			snprintf(p, sizeof p, "%d", c->producer_pid);
		else if (c->producer_closed)
			snprintf(p, sizeof p, "closed");
		if (c->consumer_pid)
			snprintf(q, sizeof q, "%d", c->consumer_pid);
		snprintf(peers, pcap, "prod %s cons %s", p, q);
		/* A role word holds a liveness token: alive means alive in any pid
		 * namespace, where the pid above means nothing. */
		static const char *const yn[] = {"?", "no", "yes"};
		if (c->producer_pid || c->consumer_pid)
			snprintf(alive, acap, "prod %s cons %s",
				 c->producer_pid ? yn[c->producer_alive + 1] : "-",
				 c->consumer_pid ? yn[c->consumer_alive + 1] : "-");
	} else if (s->f.kind == SHMKIT_KIND_TOPIC) {
		snprintf(peers, pcap, "pub %u sub %u", s->f.topic.publishers,
			 s->f.topic.subscribers);
		snprintf(alive, acap, w->subs_dead ? "%d/%d subs" : "%d subs", w->subs_alive,
			 w->subs_alive + w->subs_dead);
	} else if (s->f.kind == SHMKIT_KIND_BLOB) {
		struct bridge_status bs;
		if (bridge_read(s->e.name, s->e.in.sysv ? SHMKIT_SEG_SYSV : 0, &bs)) {
			unsigned long long fwd = 0, drop = 0, pend = 0;
			for (int i = 0; i < bs.nmaps; i++) {
				fwd += bs.map[i].forwarded;
				drop += bs.map[i].dropped;
				pend += bs.map[i].pending;
			}
			snprintf(peers, pcap, "bridge fwd %llu drop %llu pend %llu", fwd, drop, pend);
			snprintf(alive, acap, !bs.running ? "not running" : bs.connected ? "connected"
											  : "disconnected");
		}
	}
}

static void frame_print(FILE *f, const struct frame *cur, const struct frame *prev,
			double interval, int json, int tty)
{
	if (json) {
		fprintf(f, "{\"interval\": ");
		shmkit__json_num(f, interval);
		fprintf(f, ", \"segments\": [");
		for (int i = 0; i < cur->n; i++) {
			struct row w = row_of(&cur->s[i], frame_find(prev, &cur->s[i]));
			fputs(i ? ", " : "", f);
			row_json(f, &w);
		}
		fprintf(f, "]}\n");
		return;
	}
	if (tty)
		fputs("\033[H\033[J", f); /* cursor home, clear to the end of the screen */
	fprintf(f, "shmkit top: %d segment%s (channels, topics, blobs), every %.2g s%s\n",
		cur->n, cur->n == 1 ? "" : "s", interval, tty ? " (q quits)" : "");
	fprintf(f, "%-5s %-28s %-5s %9s %9s %6s %8s %-22s %-10s %6s\n", "TYPE", "NAME", "KIND",
		"MSG/S", "BYTES/S", "FILL", "SLEEP/S", "PEERS", "ALIVE", "ATTACH");
	for (int i = 0; i < cur->n; i++) {
		struct row w = row_of(&cur->s[i], frame_find(prev, &cur->s[i]));
		const struct entry *e = &w.s->e;
		char name[SHMKIT_TEXT_MAX], m[16], b[16], sl[16], fill[24] = "-", peers[48],
		    alive[32], users[16] = "-";
		shmkit__text_str(name, sizeof name, e->name);
		if (!isnan(w.fill))
			snprintf(fill, sizeof fill, "%.0f%%", w.fill);
		else if (!isnan(w.lag))
			snprintf(fill, sizeof fill, "lag %.0f", w.lag);
		if (e->users >= 0)
			snprintf(users, sizeof users, e->blind ? "%d+" : "%d", e->users);
		row_peers(&w, peers, sizeof peers, alive, sizeof alive);
		fprintf(f, "%-5s %-28s %-5s %9s %9s %6s %8s %-22s %-10s %6s\n",
			e->in.sysv ? "sysv" : "posix", name, shmkit__kind_name(e->in.kind),
			human(w.msgs, m, sizeof m), human(w.bytes, b, sizeof b), fill,
			human(w.sleeps, sl, sizeof sl), peers, alive, users);
	}
}

int shmkit_cmd_top(int argc, char **argv)
{
	static const char usage[] =
	    "shmkit top [--once] [--json] [--interval SECONDS] [--count N]";
	double interval = 1;
	long count = -1;
	int once = 0, json = 0, status = SHMKIT_EXIT_OK;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nA live table of every channel, topic and blob on the machine\n"
		       "(POSIX and System V): messages/s (a blob: writes/s), payload bytes/s,\n"
		       "fill (a channel: the ring in use; a topic: the lag, in messages, of its\n"
		       "slowest live subscriber), sleeps/s (a channel's producer and consumer),\n"
		       "peers (a channel: producer and consumer pids; a topic: publisher and\n"
		       "subscriber slots held), live subscribers, and processes attached.\n"
		       "Rates are counter differences between readings SECONDS apart (default\n"
		       "1): nothing is received or consumed. Redraws every interval until q,\n"
		       "Ctrl-C or N frames (--count). --once: one reading over one interval,\n"
		       "printed once. --json: each frame as one JSON object\n"
		       "{\"interval\": S, \"segments\": [...]} (rates null when unknown).\n",
		       usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once")) {
			once = 1;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			if (parse_interval(argv[++i], &interval) < 0) {
				fprintf(stderr, "shmkit top: --interval %s: seconds from 0.01 to "
						"3600 expected\n", argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			if (parse_count(argv[++i], &count) < 0) {
				fprintf(stderr, "shmkit top: --count %s: a positive number of frames "
						"expected\n", argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
		} else {
			return shmkit__usage_error(usage);
		}
	}
	if (once)
		count = 1;
	const int tty = !json && isatty(STDOUT_FILENO);
	struct keys keys = {0};
	struct frame prev = {0}, cur = {0};
	shmkit__catch_stop();
	if (tty && !once)
		keys_start(&keys);
	int r = frame_take(&prev);
	int64_t next = shmkit__mono_ns();
	for (long frames = 0; r == 0 && (count < 0 || frames < count); frames++) {
		next = next_frame(next, interval);
		if (wait_until(next, &keys))
			break;
		r = frame_take(&cur);
		if (r < 0)
			break;
		frame_print(stdout, &cur, &prev, interval, json, tty);
		if (fflush(stdout) != 0) {
			fprintf(stderr, "shmkit top: writing output: %s\n", strerror(errno));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		frame_free(&prev);
		prev = cur;
		cur = (struct frame){0};
	}
	keys_stop(&keys);
	if (r < 0) {
		fprintf(stderr, "shmkit top: %s\n", shmkit_strerror(r));
		status = SHMKIT_EXIT_FAIL;
	}
	frame_free(&prev);
	frame_free(&cur);
	return status;
}

/* ---- hz ---- */

int shmkit_cmd_hz(int argc, char **argv)
{
	static const char usage[] = "shmkit hz [--sysv] [--json] [--interval SECONDS] "
				    "[--window N] [--count N] NAME";
	double interval = 1;
	long count = -1, window = 10;
	unsigned flags = 0;
	int json = 0, status = SHMKIT_EXIT_OK;
	const char *name = NULL;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nThe message rate of channel or topic NAME (a blob: its writes),\n"
		       "observed without receiving anything: the difference of its message\n"
		       "counter every SECONDS (default 1). Each line gives the rate over the\n"
		       "last interval, then the minimum, maximum and mean of the rates of the\n"
		       "last N intervals (--window, default 10), and payload bytes/s. Runs\n"
		       "until Ctrl-C or --count lines. --json: each line one JSON object\n"
		       "{\"name\", \"kind\", \"rate\", \"min\", \"max\", \"mean\", \"window\",\n"
		       "\"bytes_per_s\", \"messages\"}.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sysv")) {
			flags = SHMKIT_SEG_SYSV;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			if (parse_interval(argv[++i], &interval) < 0) {
				fprintf(stderr, "shmkit hz: --interval %s: seconds from 0.01 to "
						"3600 expected\n", argv[i]);
				return SHMKIT_EXIT_USAGE;
			}
		} else if ((!strcmp(argv[i], "--count") || !strcmp(argv[i], "--window")) &&
			   i + 1 < argc) {
			long *v = argv[i][2] == 'c' ? &count : &window;
			if (parse_count(argv[i + 1], v) < 0 || (v == &window && window > 100000)) {
				fprintf(stderr, "shmkit hz: %s %s: a positive number expected%s\n",
					argv[i], argv[i + 1], v == &window ? " (at most 100000)" : "");
				return SHMKIT_EXIT_USAGE;
			}
			i++;
		} else if (argv[i][0] == '-' || name) {
			return shmkit__usage_error(usage);
		} else {
			name = argv[i];
		}
	}
	if (!name)
		return shmkit__usage_error(usage);
	struct shmkit_seg_info in;
	int r = shmkit_seg_inspect(name, flags, &in);
	if (r == 0 && !watched(in.kind)) {
		fprintf(stderr, "shmkit hz: %s: a %s segment, not a channel, topic or blob\n", name,
			in.kind == SHMKIT_KIND_RAW ? "raw" : shmkit__kind_name(in.kind));
		return SHMKIT_EXIT_FAIL;
	}
	double *rates = calloc((size_t)window, sizeof *rates);
	struct shmkit__figures prev = {0}, cur = {0};
	if (r == 0 && !rates)
		r = -ENOMEM;
	if (r == 0)
		r = shmkit__figures_read(name, flags, in.kind, &prev);
	shmkit__catch_stop();
	int64_t next = shmkit__mono_ns();
	long filled = 0;
	for (long lines = 0; r == 0 && (count < 0 || lines < count); lines++) {
		next = next_frame(next, interval);
		if (wait_until(next, NULL))
			break;
		r = shmkit__figures_read(name, flags, in.kind, &cur);
		if (r < 0)
			break;
		struct counts a = counts_of(&prev), b = counts_of(&cur);
		double hz = rate(a.msgs, b.msgs, prev.when_ns, cur.when_ns);
		double bps = rate(a.bytes, b.bytes, prev.when_ns, cur.when_ns);
		rates[filled++ % window] = hz;
		long n = filled < window ? filled : window;
		double lo = INFINITY, hi = -INFINITY, sum = 0;
		for (long k = 0; k < n; k++) {
			lo = rates[k] < lo ? rates[k] : lo; /* NAN compares false: skipped */
			hi = rates[k] > hi ? rates[k] : hi;
			sum += rates[k];
		}
		double mean = sum / (double)n; /* NAN if any rate was unknown */
		if (json) {
			printf("{\"name\": ");
			shmkit__json_str(stdout, name);
			printf(", \"kind\": \"%s\"", shmkit__kind_name(in.kind));
			json_rate(stdout, "rate", hz);
			json_rate(stdout, "min", lo);
			json_rate(stdout, "max", hi);
			json_rate(stdout, "mean", mean);
			printf(", \"window\": %ld", n);
			json_rate(stdout, "bytes_per_s", bps);
			printf(", \"messages\": %llu}\n", (unsigned long long)b.msgs);
		} else {
			char text[SHMKIT_TEXT_MAX], h[16], l[16], x[16], m[16], y[16];
			shmkit__text_str(text, sizeof text, name);
			printf("%s: rate %s msg/s  min %s  max %s  mean %s  (window %ld)  %s B/s\n",
			       text, human(hz, h, sizeof h), human(isinf(lo) ? NAN : lo, l, sizeof l),
			       human(isinf(hi) ? NAN : hi, x, sizeof x), human(mean, m, sizeof m), n,
			       human(bps, y, sizeof y));
		}
		if (fflush(stdout) != 0) {
			fprintf(stderr, "shmkit hz: writing output: %s\n", strerror(errno));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		shmkit__figures_free(&prev);
		prev = cur;
		cur = (struct shmkit__figures){0};
	}
	if (r < 0) {
		fprintf(stderr, "shmkit hz: %s: %s\n", name, shmkit_strerror(r));
		status = SHMKIT_EXIT_FAIL;
	}
	shmkit__figures_free(&prev);
	shmkit__figures_free(&cur);
	free(rates);
	return status;
}
