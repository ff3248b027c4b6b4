/* The crash matrix (issue 8): every role SIGKILLed at random moments, then the
 * promises checked. Roles: blob writer (mid-write of 1 MiB snapshots, with readers
 * checking every snapshot), channel producer and consumer (in every call, while
 * asleep, both backends), stream owner, segment creator during initialization, and
 * mutex holder. After each kill: every surviving call returns within BOUND_NS, no torn
 * snapshot, every committed message delivered intact and in order exactly once (or, for
 * a dead consumer, redelivered within the documented capacity/8 bytes), -EPIPE for the
 * survivor, a successor takes the role, and an interrupted creation is recovered.
 *
 * Kills come from the parent or from a "killer" child, so that the parent can be
 * blocked in a call (asleep in recv, in send on a full ring, in lock) when its peer
 * dies. SHMKIT_CRASH_SCALE=N multiplies the trials (make soak); sanitizer builds run a
 * quarter. SHMKIT_CRASH_SEED=N repeats a run's random choices (timing still varies). */
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "common.h"

/* What every surviving call must return within, once its peer is dead: the library
 * documents about 200 ms for a dead channel peer; the rest is room for a machine
 * shared by many busy processes. Latencies are printed, so drift shows. */
#define BOUND_NS (2 * SHMKIT_SEC)
/* A create-or-open after a killed creator must not wait out the 2 s creator wait. */
#define CREATE_BOUND_NS (3 * SHMKIT_SEC / 2)
#define GUARD_S 30

static uint64_t rng;
static int scale_mul = 1;
static char what[256]; /* the hang guard's label: role, backend, trial, variant */

static void guard(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	t_guard(GUARD_S, what);
}

static int trials(int n)
{
	long v = (long)n * scale_mul;
	if (SANITIZED)
		v /= 4;
	return v < 4 ? 4 : (int)v;
}

static uint64_t rnd(uint64_t n)
{
	return n ? t_rand(&rng) % n : 0;
}

/* A random delay below @max_ns, zero a quarter of the time (a kill at once). */
static int64_t rdelay(int64_t max_ns)
{
	return rnd(4) == 0 ? 0 : (int64_t)rnd((uint64_t)max_ns);
}

static void nap_ns(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = {(time_t)(ns / SHMKIT_SEC), (long)(ns % SHMKIT_SEC)};
	nanosleep(&ts, NULL);
}

static const char *bk_name(unsigned backend)
{
	return backend ? "sysv" : "posix";
}

/* Latency statistics of the survivors' calls after a kill. */
struct lat {
	int64_t max;
	int64_t sum;
	uint64_t n;
};

static void lat_add(struct lat *l, int64_t ns, const char *label)
{
	if (ns >= BOUND_NS) {
		fprintf(stderr, "%s: a survivor's call took %.0f ms (bound %.0f ms)\n", label,
			ns / 1e6, BOUND_NS / 1e6);
		exit(T_FAIL);
	}
	if (ns > l->max)
		l->max = ns;
	l->sum += ns;
	l->n++;
}

static void lat_print(const char *label, const struct lat *l)
{
	if (l->n)
		printf("  %-44s %6llu, mean %7.2f ms, max %7.2f ms\n", label,
		       (unsigned long long)l->n, l->sum / 1e6 / (double)l->n, l->max / 1e6);
}

/* ---- killers ---- */

/* Shared with every child: when the kill was sent, and whether a killer gave up
 * waiting for its moment. */
struct ksh {
	_Atomic int64_t t_kill;
	_Atomic int late;
};
static struct ksh *K;

typedef int (*ready_fn)(void *arg);

/* Fork a process that waits until @ready(@arg) says so (if given; at most 10 s), then
 * @delay_ns more, then SIGKILLs @victim. It works on its own copy of *@arg. */
static pid_t killer(pid_t victim, ready_fn ready, void *arg, int64_t delay_ns)
{
	atomic_store(&K->t_kill, 0);
	atomic_store(&K->late, 0);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid > 0)
		return pid;
	alarm(GUARD_S);
	if (ready) {
		int64_t end = t_now_ns() + 10 * SHMKIT_SEC;
		while (!ready(arg)) {
			if (t_now_ns() > end) {
				atomic_store(&K->late, 1);
				break;
			}
			nap_ns(20000);
		}
	}
	nap_ns(delay_ns);
	atomic_store(&K->t_kill, t_now_ns());
	kill(victim, SIGKILL);
	_exit(0);
}

/* The killer first, then its victim: reaping the victim first could let its pid be
 * reused before the kill lands. The victim must have died of the kill: any other end
 * is a child's failure (it printed why). */
static void reap_killer(pid_t k)
{
	CHECK_EQ(t_wait(k), 0);
	if (atomic_load(&K->late)) {
		fprintf(stderr, "%s: the killer's moment never came\n", what);
		exit(T_FAIL);
	}
}

static void reap(pid_t k, pid_t victim)
{
	if (k > 0)
		reap_killer(k);
	int st = t_wait(victim);
	if (st != 128 + SIGKILL) {
		fprintf(stderr, "%s: the victim ended with status %d, not by SIGKILL\n", what, st);
		exit(T_FAIL);
	}
}

/* Wait (under the guard) until *@flag is nonzero or a kill was sent. */
static void await_flag_or_kill(_Atomic int *flag)
{
	while (!atomic_load(flag) && !atomic_load(&K->t_kill))
		nap_ns(10000);
}

static void await_flag(_Atomic int *flag)
{
	while (!atomic_load(flag))
		nap_ns(10000);
}

/* =================================== blob =================================== */

enum { SNAP_WORDS = 1 << 17 }; /* 1 MiB: a write lasts long enough to be hit inside */

struct blob_sh {
	_Atomic uint64_t committed; /* version of the writer's last write that returned */
	_Atomic int stop;           /* readers: finish */
	_Atomic uint64_t reads;     /* snapshots the readers checked */
	_Atomic int bad;            /* a reader saw a torn snapshot or a version go back */
};

static struct {
	uint64_t trials, snapshots, writes_before_kill, kill_in_write;
	struct lat recover;
} blob_tot;

/* Readers check every snapshot: its content is exactly the one its version names
 * (the writers write snapshot v as the v-th write), and versions never go back. */
static int blob_reader(const char *name, unsigned backend, struct blob_sh *bs)
{
	shmkit_blob *b;
	uint64_t *buf = malloc(SNAP_WORDS * 8), last = 0;
	if (!buf || shmkit_blob_open(name, 0, 0, backend | SHMKIT_SEG_RDONLY, &b) < 0)
		return 2;
	while (!atomic_load(&bs->stop)) {
		uint64_t v;
		ssize_t n = shmkit_blob_read(b, buf, SNAP_WORDS * 8, &v);
		uint64_t tag = n == SNAP_WORDS * 8 ? t_snap_tag(buf, SNAP_WORDS) : UINT64_MAX;
		if (tag != v || v < last) {
			fprintf(stderr, "blob reader: read %zd, version %llu (last %llu), content %llx\n",
				n, (unsigned long long)v, (unsigned long long)last,
				(unsigned long long)tag);
			atomic_store(&bs->bad, 1);
			return 1;
		}
		last = v;
		atomic_fetch_add(&bs->reads, 1);
	}
	shmkit_blob_close(b);
	free(buf);
	return 0;
}

/* The only writer while it lives: its n-th write is version v0 + n. */
static int blob_writer(const char *name, unsigned backend, struct blob_sh *bs)
{
	shmkit_blob *b;
	uint64_t *buf = malloc(SNAP_WORDS * 8);
	if (!buf || shmkit_blob_open(name, 0, 0, backend, &b) < 0)
		return 2;
	int64_t v = shmkit_blob_version(b);
	if (v < 0)
		return 3;
	for (;;) {
		t_snap_fill(buf, SNAP_WORDS, (uint64_t)v + 1);
		int r = shmkit_blob_write(b, buf, SNAP_WORDS * 8);
		if (r < 0) {
			fprintf(stderr, "blob writer: write: %s\n", shmkit_strerror(r));
			return 4;
		}
		atomic_store(&bs->committed, (uint64_t)++v);
	}
}

static void crash_blob(unsigned backend, int n)
{
	enum { READERS = 2 };
	const char *name = t_name(backend ? "blob-sysv" : "blob-posix");
	struct blob_sh *bs = t_shared(sizeof *bs);
	uint64_t *buf = malloc(SNAP_WORDS * 8);
	CHECK(buf != NULL);
	shmkit_blob *b;
	CHECK_OK(shmkit_blob_open(name, SNAP_WORDS * 8, 0,
				  backend | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &b));
	pid_t readers[READERS];
	for (int i = 0; i < READERS; i++) {
		readers[i] = t_fork_raw();
		CHECK(readers[i] >= 0);
		if (readers[i] == 0)
			_exit(blob_reader(name, backend, bs));
	}
	for (int t = 0; t < n; t++) {
		guard("blob %s trial %d", bk_name(backend), t);
		uint64_t v0 = (uint64_t)shmkit_blob_version(b);
		atomic_store(&bs->committed, v0);
		pid_t w = t_fork_raw();
		CHECK(w >= 0);
		if (w == 0)
			_exit(blob_writer(name, backend, bs));
		if (rnd(4) == 0) {
			nap_ns((int64_t)rnd(300000)); /* maybe before its first write */
		} else {
			while (atomic_load(&bs->committed) == v0)
				nap_ns(20000);
			nap_ns((int64_t)rnd(3000000));
		}
		kill(w, SIGKILL);
		reap(-1, w);
		uint64_t c = atomic_load(&bs->committed);
		int64_t v = shmkit_blob_version(b);
		/* Nothing lost: the last write that returned is there, at most one more that
		 * published before its counter could be stored. */
		CHECK(v >= 0 && ((uint64_t)v == c || (uint64_t)v == c + 1));
		uint64_t rv;
		CHECK_EQ(shmkit_blob_read(b, buf, SNAP_WORDS * 8, &rv), SNAP_WORDS * 8);
		CHECK_EQ(rv, v);
		CHECK_EQ(t_snap_tag(buf, SNAP_WORDS), rv);
		/* The next writer gets the lock at once and writes version v + 1. */
		t_snap_fill(buf, SNAP_WORDS, (uint64_t)v + 1);
		int64_t t0 = t_now_ns();
		CHECK_OK(shmkit_blob_write(b, buf, SNAP_WORDS * 8));
		lat_add(&blob_tot.recover, t_now_ns() - t0, what);
		CHECK_EQ(shmkit_blob_read(b, buf, SNAP_WORDS * 8, &rv), SNAP_WORDS * 8);
		CHECK_EQ(rv, v + 1);
		CHECK_EQ(t_snap_tag(buf, SNAP_WORDS), v + 1);
		CHECK_EQ(atomic_load(&bs->bad), 0);
		blob_tot.trials++;
		blob_tot.snapshots += 2;
		blob_tot.writes_before_kill += c - v0;
	}
	guard("blob %s: the readers finish", bk_name(backend));
	atomic_store(&bs->stop, 1);
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(t_wait(readers[i]), 0);
	CHECK_EQ(atomic_load(&bs->bad), 0);
	blob_tot.snapshots += atomic_load(&bs->reads);
	CHECK_OK(shmkit_blob_delete(b));
	shmkit_blob_close(b);
	free(buf);
	munmap(bs, sizeof *bs);
}

/* ================================= channels ================================= */

#define P SHMKIT_CHAN_PRODUCER
#define C SHMKIT_CHAN_CONSUMER
#define O SHMKIT_CHAN_OBSERVER

enum { CALL_SEND, CALL_SENDV, CALL_RESERVE, CALL_MIXED, N_PCALLS };
static const char *const pcall_names[] = {"send", "sendv", "reserve/commit", "mixed"};
enum { CALL_RECV, CALL_PEEK, CALL_RMIXED, N_CCALLS };
static const char *const ccall_names[] = {"recv", "peek/release", "mixed"};

/* Producer-kill variants: killed soon after it starts (maybe inside open); while it
 * streams to a consumer that drains at the same time; blocked on a full ring (spinning
 * or asleep); or parked while the consumer sleeps on the empty ring. */
enum { PK_SOON, PK_STREAM, PK_FULL, PK_CSLEEP, N_PK };
static const char *const pk_names[] = {"soon", "streaming", "blocked on full ring",
				       "consumer asleep"};
/* Consumer-kill variants: soon; while it drains a stream; asleep on an empty ring;
 * stalled while the producer sleeps on a full ring. */
enum { CK_SOON, CK_STREAM, CK_ASLEEP, CK_PFULL, N_CK };
static const char *const ck_names[] = {"soon", "streaming", "asleep on empty ring",
				       "producer asleep on full ring"};

struct chan_sh {
	/* producer child */
	_Atomic uint64_t committed; /* next seq: every message below it was accepted */
	_Atomic uint64_t attempt;   /* committed + what the call in progress may commit */
	_Atomic int opened;         /* 1 once its open returned 0 */
	_Atomic int parked;         /* it sent what it was asked to and waits to die */
	/* consumer child */
	_Atomic int c_started;      /* c_start is valid */
	_Atomic uint64_t c_start;   /* the first message it received */
	_Atomic uint64_t c_seen;    /* one past the last message it received and checked;
	                             * 0 before the first */
	_Atomic int c_inflight;     /* inside a receive that may consume one more */
	/* parent consumer */
	_Atomic uint64_t got;       /* messages the parent received so far */
};

static struct {
	uint64_t p_trials, c_trials, msgs, bytes, takeovers, redelivered, redelivered_bytes;
	uint64_t pk[N_PK], ck[N_CK], pcalls[N_PCALLS], ccalls[N_CCALLS], epipe_checks;
	size_t again_permille; /* the most received again at once, per mille of capacity */
	struct lat p_dead, c_dead;
} chan_tot;

static shmkit_chan *chan_open_ok(const char *name, unsigned role, size_t cap, unsigned flags)
{
	shmkit_chan *ch = NULL;
	CHECK_OK(shmkit_chan_open(name, role, cap, 0, flags, &ch));
	return ch;
}

/* Bytes of messages @from..@to-1 that a successor received again, as chan.h counts
 * them ("up to capacity/8 bytes of messages"): payload bytes. */
static size_t again_bytes(uint64_t from, uint64_t to, size_t max)
{
	size_t n = 0;
	for (uint64_t q = from; q < to; q++)
		n += t_msg_len(q, max);
	return n;
}

/* Producer child: messages @first.. with the chosen call, accepted counts published
 * before (attempt) and after (committed) each call; parks after @park. */
static int producer_child(const char *name, unsigned backend, struct chan_sh *sh, uint64_t first,
			  uint64_t park, int call, int64_t spin, size_t max, uint64_t seed)
{
	shmkit_chan *p;
	int r = shmkit_chan_open(name, P, 0, 0, backend, &p);
	if (r < 0) {
		fprintf(stderr, "producer: open: %s\n", shmkit_strerror(r));
		return 2;
	}
	atomic_store(&sh->opened, 1);
	if (spin >= 0)
		shmkit_chan_set_spin(p, spin);
	enum { VMAX = 8 };
	unsigned char *vb[VMAX];
	struct iovec iov[VMAX];
	for (int i = 0; i < VMAX; i++)
		CHECK((vb[i] = malloc(max)) != NULL);
	uint64_t s = seed | 1, seq = first;
	for (;;) {
		if (seq >= park) {
			atomic_store(&sh->parked, 1);
			for (;;)
				pause();
		}
		int mode = call == CALL_MIXED ? (int)(t_rand(&s) % 3) : call;
		size_t len = t_msg_len(seq, max);
		if (mode == CALL_SEND) {
			t_msg_fill(vb[0], len, seq);
			atomic_store(&sh->attempt, seq + 1);
			r = shmkit_chan_send(p, vb[0], len, -1);
			if (r == 0)
				seq++;
		} else if (mode == CALL_SENDV) {
			int k = 1 + (int)(t_rand(&s) % VMAX);
			if ((uint64_t)k > park - seq)
				k = (int)(park - seq);
			for (int i = 0; i < k; i++) {
				iov[i].iov_len = t_msg_len(seq + (uint64_t)i, max);
				iov[i].iov_base = vb[i];
				t_msg_fill(vb[i], iov[i].iov_len, seq + (uint64_t)i);
			}
			atomic_store(&sh->attempt, seq + (uint64_t)k);
			r = shmkit_chan_sendv(p, iov, k, -1);
			if (r > 0) {
				seq += (uint64_t)r;
				r = 0;
			}
		} else {
			/* Sometimes reserve more than the message needs. */
			size_t extra = t_rand(&s) % 3 == 0 ? (size_t)(t_rand(&s) % 100) : 0;
			if (extra > max - len)
				extra = max - len;
			void *q;
			atomic_store(&sh->attempt, seq + 1);
			r = shmkit_chan_reserve(p, len + extra, -1, &q);
			if (r == 0) {
				t_msg_fill(q, len, seq);
				r = shmkit_chan_commit(p, len);
				if (r == 0)
					seq++;
			}
		}
		if (r < 0) {
			fprintf(stderr, "producer: %s: %s\n", pcall_names[mode], shmkit_strerror(r));
			return 3;
		}
		atomic_store(&sh->committed, seq);
	}
}

/* Consumer child: receives with the chosen call and checks every message; its first
 * message (wherever its predecessor left it) and its progress go to @sh. Stalls after
 * @stall messages. Never returns normally: the producer stays open. */
static int consumer_child(const char *name, unsigned backend, struct chan_sh *sh, int call,
			  int64_t spin, uint64_t stall, size_t max, uint64_t seed)
{
	shmkit_chan *c;
	int r = shmkit_chan_open(name, C, 0, 0, backend, &c);
	if (r < 0) {
		fprintf(stderr, "consumer: open: %s\n", shmkit_strerror(r));
		return 2;
	}
	atomic_store(&sh->opened, 1);
	if (spin >= 0)
		shmkit_chan_set_spin(c, spin);
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	uint64_t s = seed | 1, seq = 0, n = 0;
	for (;; n++) {
		if (n >= stall) {
			atomic_store(&sh->parked, 1);
			for (;;)
				pause();
		}
		int mode = call == CALL_RMIXED ? (int)(t_rand(&s) % 2) : call;
		const unsigned char *m;
		size_t len;
		atomic_store(&sh->c_inflight, 1);
		ssize_t got;
		if (mode == CALL_RECV) {
			got = shmkit_chan_recv(c, buf, max, -1);
			m = buf;
			len = got > 0 ? (size_t)got : 0;
		} else {
			const void *b;
			got = shmkit_chan_peek(c, &b, &len, -1);
			m = b;
		}
		if (got <= 0) {
			fprintf(stderr, "consumer: %s: %zd (%s)\n", ccall_names[mode], got,
				got ? shmkit_strerror((int)got) : "end of stream");
			return 4;
		}
		uint64_t q = n == 0 ? t_msg_seq(m, len) : seq;
		if (!t_msg_check(m, len, q, max)) {
			fprintf(stderr, "consumer: message %llu (%zu bytes) is wrong\n",
				(unsigned long long)q, len);
			return 5;
		}
		if (mode == CALL_PEEK && shmkit_chan_release(c) != 0)
			return 6;
		if (n == 0) {
			atomic_store(&sh->c_start, q);
			atomic_store(&sh->c_started, 1);
		}
		seq = q + 1;
		atomic_store(&sh->c_seen, seq);
		atomic_store(&sh->c_inflight, 0);
	}
}

/* Killers' moments for channels: the named side's sleep counter moved (it went to
 * sleep) after *gate reached gate_val (if gate). The killer opens its own observer. */
struct sleep_cond {
	const char *name;
	unsigned backend;
	int consumer;            /* 1: consumer_sleeps, 0: producer_sleeps */
	_Atomic uint64_t *gate;
	uint64_t gate_val;
	int have_base;
	uint64_t base;
	shmkit_chan *obs;
};

static int sleep_ready(void *arg)
{
	struct sleep_cond *sc = arg;
	struct shmkit_chan_stats st;
	if (sc->gate && atomic_load(sc->gate) < sc->gate_val)
		return 0;
	if (!sc->obs)
		sc->obs = chan_open_ok(sc->name, O, 0, sc->backend);
	CHECK_OK(shmkit_chan_stats(sc->obs, &st));
	uint64_t v = sc->consumer ? st.consumer_sleeps : st.producer_sleeps;
	if (!sc->have_base) {
		sc->have_base = 1;
		sc->base = v;
		return 0;
	}
	return v > sc->base;
}

/* Parent consumer: receive (mixing calls) and check every message from sh->got on,
 * until the dead producer is reported. Returns the -EPIPE time. A 0 (end of stream)
 * or any other error fails the test. */
static int64_t drain_until_epipe(shmkit_chan *c, struct chan_sh *sh, size_t max, unsigned char *buf)
{
	for (;;) {
		uint64_t seq = atomic_load(&sh->got);
		ssize_t r;
		const unsigned char *m = buf;
		size_t len = 0;
		int mode = (int)rnd(3);
		if (mode == 0) {
			r = shmkit_chan_recv(c, buf, max, -1);
			len = r > 0 ? (size_t)r : 0;
		} else if (mode == 1) {
			/* Too small on purpose now and then: the message must stay queued. */
			size_t cap = 16 + (size_t)rnd(64);
			r = shmkit_chan_recv(c, buf, cap, -1);
			if (r == -EMSGSIZE) {
				CHECK(t_msg_len(seq, max) > cap);
				continue;
			}
			len = r > 0 ? (size_t)r : 0;
		} else {
			const void *b;
			r = shmkit_chan_peek(c, &b, &len, -1);
			m = b;
		}
		if (r == -EPIPE)
			return t_now_ns();
		if (r <= 0) {
			fprintf(stderr, "%s: consumer got %zd (%s) at message %llu\n", what, r,
				r ? shmkit_strerror((int)r) : "end of stream", (unsigned long long)seq);
			exit(T_FAIL);
		}
		if (!t_msg_check(m, len, seq, max)) {
			fprintf(stderr, "%s: message %llu wrong (%zu bytes, claims %llu)\n", what,
				(unsigned long long)seq, len, (unsigned long long)t_msg_seq(m, len));
			exit(T_FAIL);
		}
		if (mode == 2)
			CHECK_OK(shmkit_chan_release(c));
		chan_tot.msgs++;
		chan_tot.bytes += len;
		atomic_store(&sh->got, seq + 1);
	}
}

static void crash_producer(unsigned backend, int n)
{
	const size_t caps[] = {4096, 16384, 65536};
	const size_t cap = caps[rnd(3)];
	const char *name = t_name(backend ? "pkill-sysv" : "pkill-posix");
	struct chan_sh *sh = t_shared(sizeof *sh);
	shmkit_chan *own = chan_open_ok(name, O, cap, backend | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
	struct shmkit_chan_stats st;
	CHECK_OK(shmkit_chan_stats(own, &st));
	const size_t max = st.max_msg;
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	for (int t = 0; t < n; t++) {
		/* Not "soon" first: a channel that never had a producer waits for one,
		 * rightly, and would wait for ever for one killed before it claimed. */
		int v = t == 0 ? PK_STREAM : (int)rnd(N_PK), call = (int)rnd(N_PCALLS);
		int64_t spin = v == PK_CSLEEP || (v == PK_FULL && rnd(2)) ? 0 : -1;
		guard("producer kill, %s, cap %zu, trial %d: %s, %s, spin %s", bk_name(backend), cap,
		      t, pk_names[v], pcall_names[call], spin ? "default" : "0 (sleep mode)");
		uint64_t first = atomic_load(&sh->got);
		uint64_t park = v == PK_CSLEEP ? first + 1 + rnd(40) : UINT64_MAX;
		atomic_store(&sh->committed, first);
		atomic_store(&sh->attempt, first);
		atomic_store(&sh->opened, 0);
		atomic_store(&sh->parked, 0);
		/* A new consumer handle each trial: a reused one checks a peer's liveness at
		 * most every 100 ms, which would make every trial wait a 200 ms slice. */
		shmkit_chan *c = chan_open_ok(name, C, 0, backend);
		uint64_t seed = t_rand(&rng);
		pid_t p = t_fork_raw();
		CHECK(p >= 0);
		if (p == 0) {
			shmkit_chan_close(c);
			shmkit_chan_close(own);
			_exit(producer_child(name, backend, sh, first, park, call, spin, max, seed));
		}
		pid_t k;
		int claimed = 1; /* the producer held the role before we started receiving */
		if (v == PK_SOON) {
			k = killer(p, NULL, NULL, (int64_t)rnd(300000));
			await_flag_or_kill(&sh->opened);
			claimed = atomic_load(&sh->opened);
		} else if (v == PK_STREAM) {
			await_flag(&sh->opened);
			k = killer(p, NULL, NULL, rdelay(3000000));
		} else if (v == PK_FULL) {
			await_flag(&sh->opened);
			/* Nobody receives: the producer fills the ring and waits, spinning or
			 * asleep; it dies there. */
			struct sleep_cond sc = {.name = name, .backend = backend, .consumer = 0};
			k = killer(p, spin == 0 ? sleep_ready : NULL, &sc, rdelay(3000000));
			reap_killer(k);
		} else {
			await_flag(&sh->opened);
			shmkit_chan_set_spin(c, 0);
			/* Dies once we have everything and sleep on the empty ring. */
			struct sleep_cond sc = {.name = name, .backend = backend, .consumer = 1,
						.gate = &sh->got, .gate_val = park};
			k = killer(p, sleep_ready, &sc, rdelay(2000000));
		}
		int64_t t_epipe = drain_until_epipe(c, sh, max, buf);
		int64_t t_kill = atomic_load(&K->t_kill);
		if (claimed && (t_kill == 0 || t_epipe < t_kill)) {
			fprintf(stderr, "%s: -EPIPE while the producer lived\n", what);
			exit(T_FAIL);
		}
		if (v == PK_FULL)
			reap(-1, p);
		else
			reap(k, p);
		/* Dead for sure now: what it committed is all there, then -EPIPE again. */
		int64_t t_final = drain_until_epipe(c, sh, max, buf);
		if (t_kill)
			lat_add(&chan_tot.p_dead, (claimed ? t_epipe : t_final) - t_kill, what);
		uint64_t got = atomic_load(&sh->got), com = atomic_load(&sh->committed),
			 att = atomic_load(&sh->attempt);
		if (got < com || got > att || (v == PK_CSLEEP && got != park)) {
			fprintf(stderr, "%s: received %llu; committed %llu, attempted %llu\n", what,
				(unsigned long long)got, (unsigned long long)com,
				(unsigned long long)att);
			exit(T_FAIL);
		}
		chan_tot.takeovers += (uint64_t)atomic_load(&sh->opened);
		chan_tot.p_trials++;
		chan_tot.pk[v]++;
		chan_tot.pcalls[call]++;
		shmkit_chan_close(c);
	}
	/* A last producer takes over, sends and closes: end of stream after its messages. */
	guard("producer kill, %s: the last producer", bk_name(backend));
	uint64_t first = atomic_load(&sh->got);
	atomic_store(&sh->opened, 0);
	/* The consumer first: a producer that found the role closed (the last trial's
	 * consumer closed it) would rightly get -EPIPE, as a pipe's writer does. */
	shmkit_chan *c = chan_open_ok(name, C, 0, backend);
	pid_t p = t_fork_raw();
	CHECK(p >= 0);
	if (p == 0) {
		shmkit_chan_close(c); /* inherited: the role stays the parent's */
		shmkit_chan_close(own);
		shmkit_chan *q = chan_open_ok(name, P, 0, backend);
		unsigned char *b = malloc(max);
		CHECK(b != NULL);
		for (uint64_t s = first; s < first + 100; s++) {
			t_msg_fill(b, t_msg_len(s, max), s);
			CHECK_OK(shmkit_chan_send(q, b, t_msg_len(s, max), -1));
		}
		shmkit_chan_close(q);
		_exit(0);
	}
	for (uint64_t s = first; s < first + 100;) {
		ssize_t r = shmkit_chan_recv(c, buf, max, -1);
		if (r == -EPIPE) { /* the dead one, until the new one has claimed the role */
			nap_ns(100000);
			continue;
		}
		CHECK(r > 0 && t_msg_check(buf, (size_t)r, s, max));
		s++;
	}
	CHECK_EQ(shmkit_chan_recv(c, buf, max, -1), 0);
	CHECK_EQ(t_wait(p), 0);
	shmkit_chan_close(c);
	CHECK_OK(shmkit_seg_delete(shmkit_chan_seg(own)));
	shmkit_chan_close(own);
	free(buf);
	munmap(sh, sizeof *sh);
}

/* Fill the ring without waiting; then a blocking send must report the dead consumer
 * within the bound. Returns messages sent. */
static uint64_t expect_send_epipe(shmkit_chan *p, uint64_t seq, size_t max, unsigned char *buf)
{
	int r;
	for (;;) {
		size_t len = t_msg_len(seq, max);
		t_msg_fill(buf, len, seq);
		r = shmkit_chan_send(p, buf, len, 0);
		if (r != 0)
			break;
		seq++;
	}
	if (r == -EAGAIN) {
		size_t len = t_msg_len(seq, max);
		int64_t t0 = t_now_ns();
		r = shmkit_chan_send(p, buf, len, -1);
		lat_add(&chan_tot.c_dead, t_now_ns() - t0, what);
	}
	CHECK_EQ(r, -EPIPE);
	chan_tot.epipe_checks++;
	return seq;
}

static void crash_consumer(unsigned backend, int n)
{
	const size_t caps[] = {4096, 16384, 65536};
	const size_t cap = caps[rnd(3)];
	const char *name = t_name(backend ? "ckill-sysv" : "ckill-posix");
	struct chan_sh *sh = t_shared(sizeof *sh);
	shmkit_chan *p = chan_open_ok(name, P, cap, backend | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
	struct shmkit_chan_stats st;
	CHECK_OK(shmkit_chan_stats(p, &st));
	const size_t max = st.max_msg;
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	/* sent: the next message number. unseen: no consumer has recorded a message at or
	 * after it. slack: messages consumers may have taken without recording them (a
	 * kill between a receive and its record). */
	uint64_t sent = 0, unseen = 0, slack = 0;
	for (int t = 0; t < n; t++) {
		/* Likewise: a consumer must have claimed the role once. */
		int v = t == 0 ? CK_STREAM : (int)rnd(N_CK), call = (int)rnd(N_CCALLS);
		int64_t spin = v == CK_ASLEEP || (v == CK_PFULL && rnd(2)) ? 0 : -1;
		guard("consumer kill, %s, cap %zu, trial %d: %s, %s, spin %s", bk_name(backend), cap,
		      t, ck_names[v], ccall_names[call], spin ? "default" : "0 (sleep mode)");
		/* Mostly a new producer handle too (a close and a reopen, while no consumer
		 * lives: no end of stream seen), so that a full ring reports the dead consumer
		 * after a 2 ms slice; a reused one, which checked liveness less than 100 ms
		 * ago, sleeps the documented 200 ms first. */
		if (t > 0 && rnd(4) != 0) {
			shmkit_chan_close(p);
			p = chan_open_ok(name, P, 0, backend);
		}
		atomic_store(&sh->opened, 0);
		atomic_store(&sh->parked, 0);
		atomic_store(&sh->c_started, 0);
		atomic_store(&sh->c_seen, 0);
		atomic_store(&sh->c_inflight, 0);
		uint64_t stall = v == CK_PFULL ? rnd(20) : UINT64_MAX, seed = t_rand(&rng);
		pid_t c = t_fork_raw();
		CHECK(c >= 0);
		if (c == 0) {
			shmkit_chan_close(p);
			_exit(consumer_child(name, backend, sh, call, spin, stall, max, seed));
		}
		pid_t k = -1;
		int r;
		if (v == CK_SOON) {
			k = killer(c, NULL, NULL, (int64_t)rnd(300000));
			for (uint64_t i = rnd(20); i > 0; i--) {
				size_t len = t_msg_len(sent, max);
				t_msg_fill(buf, len, sent);
				if (shmkit_chan_send(p, buf, len, 0) != 0)
					break;
				sent++;
			}
		} else if (v == CK_STREAM) {
			await_flag(&sh->opened);
			k = killer(c, NULL, NULL, rdelay(3000000));
			/* Keep it busy until the kill: it dies inside its receive calls. */
			while (!atomic_load(&K->t_kill)) {
				size_t len = t_msg_len(sent, max);
				t_msg_fill(buf, len, sent);
				r = shmkit_chan_send(p, buf, len, 0);
				if (r == 0) {
					sent++;
				} else if (r == -EAGAIN) {
					sched_yield();
				} else if (r == -EPIPE) {
					CHECK(atomic_load(&K->t_kill) != 0); /* a live consumer is not gone */
					break;
				} else {
					CHECK_OK(r);
				}
			}
		} else if (v == CK_ASLEEP) {
			await_flag(&sh->opened);
			for (uint64_t i = 1 + rnd(30); i > 0; i--) {
				size_t len = t_msg_len(sent, max);
				t_msg_fill(buf, len, sent);
				CHECK_OK(shmkit_chan_send(p, buf, len, -1));
				sent++;
			}
			/* Dies once it has everything and sleeps on the empty ring. */
			struct sleep_cond sc = {.name = name, .backend = backend, .consumer = 1,
						.gate = &sh->c_seen, .gate_val = sent};
			k = killer(c, sleep_ready, &sc, rdelay(2000000));
		} else {
			/* It stalls; we fill the ring and sleep (or spin) in send; it dies. */
			await_flag(&sh->opened);
			if (spin >= 0)
				shmkit_chan_set_spin(p, spin);
			struct sleep_cond sc = {.name = name, .backend = backend, .consumer = 0};
			k = killer(c, spin == 0 ? sleep_ready : NULL, &sc, rdelay(2000000));
			for (;;) {
				size_t len = t_msg_len(sent, max);
				t_msg_fill(buf, len, sent);
				r = shmkit_chan_send(p, buf, len, -1);
				if (r != 0)
					break;
				sent++;
			}
			int64_t t_e = t_now_ns(), t_kill = atomic_load(&K->t_kill);
			CHECK_EQ(r, -EPIPE);
			if (t_kill == 0 || t_e < t_kill) {
				fprintf(stderr, "%s: -EPIPE while the consumer lived\n", what);
				exit(T_FAIL);
			}
			lat_add(&chan_tot.c_dead, t_e - t_kill, what);
			shmkit_chan_set_spin(p, 50000); /* the default again */
		}
		reap(k, c);
		/* A producer reports a consumer's end only if that consumer came in its own
		 * session: one killed before it claimed the role leaves the end of an earlier
		 * one, which a producer that attached after it waits through, as a FIFO's
		 * writer waits for a reader (test_chan_fifo). */
		if (v != CK_PFULL && rnd(4) == 0 && atomic_load(&sh->opened))
			sent = expect_send_epipe(p, sent, max, buf);
		/* What the dead one left to its successor, checked by the successor below. */
		if (atomic_load(&sh->c_started)) {
			uint64_t s = atomic_load(&sh->c_start), seen = atomic_load(&sh->c_seen);
			if (seen == 0) /* killed between its two records */
				seen = s;
			if (s > unseen + slack) {
				fprintf(stderr, "%s: lost messages: started at %llu, first unseen %llu (+%llu)\n",
					what, (unsigned long long)s, (unsigned long long)unseen,
					(unsigned long long)slack);
				exit(T_FAIL);
			}
			/* Received again: what its predecessor had received but not published,
			 * capacity/8 bytes at most (the documented rule). */
			size_t again = again_bytes(s, unseen, max);
			if (again > cap / 8) {
				fprintf(stderr, "%s: %zu bytes received again (%llu messages); bound %zu\n",
					what, again, (unsigned long long)(unseen - s), cap / 8);
				exit(T_FAIL);
			}
			if (s < unseen) {
				chan_tot.redelivered += unseen - s;
				chan_tot.redelivered_bytes += again;
				if (again * 1000 / cap > chan_tot.again_permille)
					chan_tot.again_permille = again * 1000 / cap;
			}
			if (seen > unseen) {
				chan_tot.msgs += seen - (s > unseen ? s : unseen);
				unseen = seen;
			}
			slack = (uint64_t)atomic_load(&sh->c_inflight);
		} else {
			slack += (uint64_t)atomic_load(&sh->c_inflight);
		}
		chan_tot.takeovers += (uint64_t)atomic_load(&sh->opened);
		chan_tot.c_trials++;
		chan_tot.ck[v]++;
		chan_tot.ccalls[call]++;
	}
	/* End of stream: a last consumer gets everything from where the others left. */
	guard("consumer kill, %s: the last consumer", bk_name(backend));
	shmkit_chan_close(p);
	shmkit_chan *c = chan_open_ok(name, C, 0, backend);
	ssize_t r = shmkit_chan_recv(c, buf, max, -1);
	if (r > 0) {
		uint64_t s = t_msg_seq(buf, (size_t)r);
		CHECK(s <= unseen + slack);
		CHECK(again_bytes(s, unseen, max) <= cap / 8);
		for (;; s++) {
			CHECK(t_msg_check(buf, (size_t)r, s, max));
			r = shmkit_chan_recv(c, buf, max, -1);
			if (r <= 0)
				break;
		}
		CHECK_EQ(s + 1, sent);
	} else {
		CHECK(unseen + slack >= sent);
	}
	CHECK_EQ(r, 0);
	shmkit_chan_close(c);
	CHECK_OK(shmkit_seg_unlink(name, backend));
	free(buf);
	munmap(sh, sizeof *sh);
}

/* ================================== streams ================================= */

enum { REC_WORDS = 8, RECS = 2048 }; /* 64-byte records, 128 KiB */

struct stream_sh {
	_Atomic int created;        /* the owner's open returned */
	_Atomic uint64_t committed; /* records whose fwrite returned */
};

static struct {
	uint64_t trials, guest_calls, records, reclaimed, fshm, core;
	struct lat calls;
} stream_tot;

static FILE *stream_owner(const char *name, int api)
{
	FILE *f = NULL;
	if (api == 0)
		return fshm_open(name, 0600, FSHM_OWNER);
	int r = shmkit_stream_open(name, 0600, SHMKIT_STREAM_OWNER, &f);
	errno = r < 0 ? -r : 0;
	return f;
}

static FILE *stream_guest(const char *name, int api)
{
	FILE *f = NULL;
	if (api == 0)
		return fshm_open(name, 0, FSHM_GUEST);
	int r = shmkit_stream_open(name, 0, SHMKIT_STREAM_GUEST, &f);
	errno = r < 0 ? -r : 0;
	return f;
}

static int stream_destroy(const char *name, int api)
{
	if (api == 0)
		return fshm_force_destroy(name) == 0 ? 0 : -errno;
	return shmkit_stream_destroy(name);
}

static int owner_child(const char *name, int api, struct stream_sh *ss)
{
	FILE *f = stream_owner(name, api);
	if (!f) {
		fprintf(stderr, "stream owner: open: %s\n", strerror(errno));
		return 2;
	}
	atomic_store(&ss->created, 1);
	uint64_t rec[REC_WORDS];
	for (uint64_t i = 0; i < RECS; i++) {
		t_snap_fill(rec, REC_WORDS, i + 1);
		if (fwrite(rec, sizeof rec, 1, f) != 1)
			return 3;
		atomic_store(&ss->committed, i + 1);
	}
	for (;;)
		pause();
}

/* Guest calls are timed: each must return within the bound, dead owner or not. */
static int64_t guest_t0;

static void guest_begin(void)
{
	guest_t0 = t_now_ns();
}

static void guest_end(void)
{
	lat_add(&stream_tot.calls, t_now_ns() - guest_t0, what);
	stream_tot.guest_calls++;
}

/* Every record below @n must be intact (records above may be partial or absent):
 * all of them through the descriptor, one through the FILE (an unbuffered cookie
 * stream's fread() reads byte by byte: a whole stream that way would be slow). */
static void guest_check(FILE *g, uint64_t n)
{
	static uint64_t recs[RECS][REC_WORDS];
	if (n == 0)
		return;
	guest_begin();
	CHECK_EQ(pread(fileno(g), recs, n * sizeof recs[0], 0), (ssize_t)(n * sizeof recs[0]));
	guest_end();
	for (uint64_t i = 0; i < n; i++)
		CHECK_EQ(t_snap_tag(recs[i], REC_WORDS), i + 1);
	uint64_t i = rnd(n);
	guest_begin();
	CHECK_EQ(fseek(g, (long)(i * sizeof recs[0]), SEEK_SET), 0);
	guest_end();
	guest_begin();
	CHECK_EQ(fread(recs[0], sizeof recs[0], 1, g), 1);
	guest_end();
	CHECK_EQ(t_snap_tag(recs[0], REC_WORDS), i + 1);
	stream_tot.records += n;
}

static void crash_stream(int n)
{
	const char *name = t_name("stream");
	struct stream_sh *ss = t_shared(sizeof *ss);
	uint64_t rec[REC_WORDS];
	for (int t = 0; t < n; t++) {
		int api = (int)rnd(2), active = (int)rnd(2);
		guard("stream owner kill, trial %d: %s API, guest %s", t, api ? "shmkit_stream" : "fshm",
		      active ? "reading during the kill" : "after");
		atomic_store(&ss->created, 0);
		atomic_store(&ss->committed, 0);
		pid_t o = t_fork_raw();
		CHECK(o >= 0);
		if (o == 0)
			_exit(owner_child(name, api, ss));
		FILE *g = NULL;
		pid_t k;
		if (active) {
			await_flag(&ss->created);
			g = stream_guest(name, api);
			CHECK(g != NULL);
			k = killer(o, NULL, NULL, rdelay(2000000));
			while (!atomic_load(&K->t_kill))
				guest_check(g, atomic_load(&ss->committed));
		} else {
			k = killer(o, NULL, NULL, rdelay(1000000));
		}
		reap(k, o);
		uint64_t done = atomic_load(&ss->committed);
		if (!g && atomic_load(&ss->created)) {
			g = stream_guest(name, api);
			CHECK(g != NULL);
		}
		if (g) {
			/* The guest goes on: everything written is there, and it can write too. */
			guest_check(g, done);
			guest_begin();
			CHECK_EQ(fseek(g, (long)(RECS * sizeof rec), SEEK_SET), 0);
			guest_end();
			t_snap_fill(rec, REC_WORDS, 7777);
			guest_begin();
			CHECK_EQ(fwrite(rec, sizeof rec, 1, g), 1);
			guest_end();
			guest_begin();
			CHECK_EQ(ftell(g), (long)((RECS + 1) * sizeof rec));
			guest_end();
			memset(rec, 0, sizeof rec);
			guest_begin();
			CHECK_EQ(pread(fileno(g), rec, sizeof rec, (off_t)(RECS * sizeof rec)),
				 (ssize_t)sizeof rec);
			guest_end();
			CHECK_EQ(t_snap_tag(rec, REC_WORDS), 7777);
		}
		/* The name is reclaimed as documented: a new owner gets EEXIST while the dead
		 * one's stream exists; force-destroy frees the name. */
		int api2 = (int)rnd(2);
		FILE *f = stream_owner(name, api2);
		if (!f) {
			CHECK_EQ(errno, EEXIST);
			CHECK_OK(stream_destroy(name, api2));
			f = stream_owner(name, api2);
			CHECK(f != NULL);
			stream_tot.reclaimed++;
		} else {
			/* Free already: the owner died before its object existed. */
			CHECK(!atomic_load(&ss->created));
		}
		if (g) /* an open guest keeps the old stream's data */
			guest_check(g, done);
		CHECK_EQ(fclose(f), 0); /* the new owner's close destroys the new stream */
		FILE *none = stream_guest(name, api2);
		CHECK(none == NULL && errno == ENOENT);
		if (g)
			CHECK_EQ(fclose(g), 0);
		stream_tot.trials++;
		if (api)
			stream_tot.core++;
		else
			stream_tot.fshm++;
	}
	munmap(ss, sizeof *ss);
}

/* ============================= segment creators ============================= */

struct creator_sh {
	_Atomic int started; /* about to call shmkit_seg_open_init() */
	_Atomic int in_init; /* inside the initializer */
	_Atomic int done;    /* the call returned 0 */
};
static struct creator_sh *CR;

/* The initializer stamps every page (first byte of each page, and the last byte of
 * the area) in @steps steps, pausing between them when @slow. */
struct init_plan {
	unsigned char byte;
	int steps;
	int64_t pause_ns;
};

static int stamp_init(void *data, size_t size, void *arg)
{
	const struct init_plan *pl = arg;
	unsigned char *d = data;
	atomic_store(&CR->in_init, 1);
	size_t pages = (size + 4095) / 4096;
	for (int s = 0; s < pl->steps; s++) {
		for (size_t pg = pages * (size_t)s / (size_t)pl->steps;
		     pg < pages * (size_t)(s + 1) / (size_t)pl->steps; pg++)
			d[pg * 4096] = pl->byte;
		nap_ns(pl->pause_ns);
	}
	d[size - 1] = pl->byte;
	return 0;
}

/* 1 if every stamp is @byte. */
static int stamps_are(const unsigned char *d, size_t size, unsigned char byte)
{
	for (size_t off = 0; off < size; off += 4096)
		if (d[off] != byte)
			return 0;
	return d[size - 1] == byte;
}

static struct {
	uint64_t trials[2], recovered_open[2], recovered_create[2], failed[2], in_init[2];
	struct lat open;
} creator_tot;

static void crash_creator(unsigned backend, int n)
{
	enum { MAX_FAILS = 3 }; /* a broken recovery costs 2 s a trial: stop early */
	const size_t sizes[] = {4096, 200000, 1 << 20, 8 << 20, 64 << 20, 256 << 20};
	const char *name = t_name(backend ? "creator-sysv" : "creator-posix");
	int b = backend ? 1 : 0, fails = 0;
	for (int t = 0; t < n && fails < MAX_FAILS; t++) {
		uint64_t x = rnd(100);
		size_t size = sizes[x < 30 ? 0 : x < 50 ? 1 : x < 65 ? 2 : x < 80 ? 3 : x < 97 ? 4 : 5];
		struct init_plan plan = {(unsigned char)(1 + rnd(250)), 1 + (int)rnd(4),
					 rnd(2) ? (int64_t)rnd(1000000) : 0};
		int with_init = rnd(4) != 0;
		/* When to kill: at once, or some time after the call began (sized so that
		 * large ones die inside posix_fallocate or the initializer). */
		int64_t horizon = size >= (8u << 20) ? 40000000 : 3000000;
		int64_t delay = rnd(4) == 0 ? -1 : rdelay(horizon);
		guard("creator kill, %s, trial %d: %zu bytes, initializer %s, kill %s %.2f ms",
		      bk_name(backend), t, size, with_init ? (plan.pause_ns ? "slow" : "fast") : "none",
		      delay < 0 ? "at fork +" : "at call +", delay < 0 ? 0.0 : delay / 1e6);
		memset(CR, 0, sizeof *CR);
		pid_t c = t_fork_raw();
		CHECK(c >= 0);
		if (c == 0) {
			shmkit_seg *s;
			atomic_store(&CR->started, 1);
			int r = shmkit_seg_open_init(name, SHMKIT_KIND_DATA, size, 0600,
						     backend | SHMKIT_SEG_CREATE,
						     with_init ? stamp_init : NULL, &plan, &s);
			if (r < 0) {
				fprintf(stderr, "creator: %s\n", shmkit_strerror(r));
				_exit(2);
			}
			atomic_store(&CR->done, 1);
			for (;;)
				pause();
		}
		if (delay < 0) {
			nap_ns((int64_t)rnd(200000));
		} else {
			await_flag(&CR->started);
			nap_ns(delay);
		}
		kill(c, SIGKILL);
		reap(-1, c);
		int done = atomic_load(&CR->done);
		creator_tot.in_init[b] += (uint64_t)(atomic_load(&CR->in_init) && !done);
		/* Create-or-open of the same name must succeed promptly. */
		shmkit_seg *s = NULL;
		int64_t t0 = t_now_ns();
		int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, size, 0600, backend | SHMKIT_SEG_CREATE, &s);
		int64_t dt = t_now_ns() - t0;
		if (r < 0 || dt >= CREATE_BOUND_NS) {
			fails++;
			creator_tot.failed[b]++;
			fprintf(stderr, "%s:\n  create-or-open after the kill: %s after %.0f ms "
				"(creator %s)\n", what, r < 0 ? shmkit_strerror(r) : "ok", dt / 1e6,
				done ? "had finished" : atomic_load(&CR->in_init) ? "was in its initializer"
				: "had started");
			if (s)
				shmkit_seg_close(s);
			shmkit_seg_unlink(name, backend);
			shmkit_seg_unlink(name, backend | SHMKIT_SEG_RAW);
			continue;
		}
		lat_add(&creator_tot.open, dt, what);
		const unsigned char *d = shmkit_seg_data(s);
		if (shmkit_seg_created(s)) {
			/* The killed creation was removed and made anew: zero-filled. */
			CHECK(!done);
			CHECK(stamps_are(d, size, 0));
			creator_tot.recovered_create[b]++;
		} else {
			/* Its creation was complete: an opener never sees it half initialized. */
			CHECK(!with_init || stamps_are(d, size, plan.byte));
			creator_tot.recovered_open[b]++;
		}
		shmkit_seg_close(s);
		CHECK_OK(shmkit_seg_unlink(name, backend));
		CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, backend, &s), -ENOENT);
		creator_tot.trials[b]++;
	}
	if (fails >= MAX_FAILS)
		fprintf(stderr, "creator kill, %s: stopped after %d unusable names\n", bk_name(backend),
			fails);
}

/* =================================== mutex =================================== */

/* The protected state: a == b whenever the mutex is free and consistent; a holder
 * killed between its two increments leaves them apart for the next locker to repair. */
struct guarded {
	shmkit_mutex m;
	uint64_t a, b;
};

/* Where the holder child is, when it dies. */
enum { MX_OUT = 0, MX_LOCKING = 1, MX_HOLDING = 2, MX_UNLOCKING = 3 };

struct mutex_sh {
	_Atomic int state;
	_Atomic int holding_once;
};

enum { MK_RANDOM, MK_WAITING, MK_CONTEND, N_MK };
static const char *const mk_names[] = {"at random", "while we wait in lock", "contended"};

static struct {
	uint64_t trials, ownerdead, clean, mk[N_MK];
	struct lat lock;
} mutex_tot;

static int mutex_init_fn(void *data, size_t size, void *arg)
{
	(void)size, (void)arg;
	return shmkit_mutex_init(&((struct guarded *)data)->m);
}

/* Lock, repairing after a dead owner. Returns 1 if it had to repair. */
static int lock_repair(struct guarded *g, int64_t timeout)
{
	int r = shmkit_mutex_lock(&g->m, timeout);
	if (r == -EOWNERDEAD) {
		g->b = g->a;
		CHECK_OK(shmkit_mutex_consistent(&g->m));
		return 1;
	}
	CHECK_OK(r);
	CHECK_EQ(g->a, g->b);
	return 0;
}

static int holder_child(const char *name, struct mutex_sh *ms, int hold_forever, uint64_t seed)
{
	shmkit_seg *s;
	if (shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, 0, &s) < 0)
		return 2;
	struct guarded *g = shmkit_seg_data(s);
	uint64_t x = seed | 1;
	for (;;) {
		atomic_store(&ms->state, MX_LOCKING);
		lock_repair(g, -1);
		atomic_store(&ms->state, MX_HOLDING);
		atomic_store(&ms->holding_once, 1);
		g->a++;
		for (unsigned i = (unsigned)(t_rand(&x) % 2000); i > 0; i--)
			atomic_signal_fence(memory_order_seq_cst); /* work while holding */
		if (hold_forever)
			for (;;)
				pause();
		g->b++;
		atomic_store(&ms->state, MX_UNLOCKING);
		if (shmkit_mutex_unlock(&g->m) != 0)
			return 3;
		atomic_store(&ms->state, MX_OUT);
		for (unsigned i = (unsigned)(t_rand(&x) % 500); i > 0; i--)
			atomic_signal_fence(memory_order_seq_cst);
	}
}

static void crash_mutex(int n)
{
	const char *name = t_name("mutex");
	struct mutex_sh *ms = t_shared(sizeof *ms);
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open_init(name, SHMKIT_KIND_DATA, sizeof(struct guarded), 0,
				      SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, mutex_init_fn, NULL, &s));
	struct guarded *g = shmkit_seg_data(s);
	for (int t = 0; t < n; t++) {
		int v = (int)rnd(N_MK);
		guard("mutex holder kill, trial %d: %s", t, mk_names[v]);
		atomic_store(&ms->state, MX_OUT);
		atomic_store(&ms->holding_once, 0);
		uint64_t seed = t_rand(&rng);
		pid_t h = t_fork_raw();
		CHECK(h >= 0);
		if (h == 0)
			_exit(holder_child(name, ms, v == MK_WAITING, seed));
		int repaired = 0;
		pid_t k = -1;
		if (v == MK_RANDOM) {
			nap_ns(rdelay(2000000));
			kill(h, SIGKILL);
		} else if (v == MK_WAITING) {
			/* It holds the lock; we sleep in lock; it dies; we must get it. */
			while (atomic_load(&ms->state) != MX_HOLDING)
				nap_ns(10000);
			k = killer(h, NULL, NULL, rdelay(3000000));
			repaired = lock_repair(g, rnd(2) ? -1 : 5 * SHMKIT_SEC);
			int64_t t_kill = atomic_load(&K->t_kill);
			CHECK(repaired && t_kill != 0);
			lat_add(&mutex_tot.lock, t_now_ns() - t_kill, what);
			CHECK_OK(shmkit_mutex_unlock(&g->m));
		} else {
			k = killer(h, NULL, NULL, rdelay(3000000));
			while (!atomic_load(&K->t_kill)) {
				int64_t t0 = t_now_ns();
				repaired |= lock_repair(g, -1);
				if (atomic_load(&K->t_kill))
					lat_add(&mutex_tot.lock, t_now_ns() - t0, what);
				CHECK_OK(shmkit_mutex_unlock(&g->m));
			}
		}
		reap(k, h);
		int state = atomic_load(&ms->state);
		/* The next locker: -EOWNERDEAD if it died holding (unless already repaired),
		 * a plain lock if it died outside, either inside lock or unlock. */
		int64_t t0 = t_now_ns();
		int again = lock_repair(g, 5 * SHMKIT_SEC);
		lat_add(&mutex_tot.lock, t_now_ns() - t0, what);
		if ((state == MX_HOLDING && !repaired && !again) || (state == MX_OUT && again)) {
			fprintf(stderr, "%s: died in state %d, lock %s\n", what, state,
				again ? "said owner dead" : "was plain");
			exit(T_FAIL);
		}
		CHECK_EQ(g->a, g->b);
		CHECK_OK(shmkit_mutex_unlock(&g->m));
		/* Usable afterwards, with a try-lock too. */
		CHECK_EQ(shmkit_mutex_lock(&g->m, 0), 0);
		CHECK_OK(shmkit_mutex_unlock(&g->m));
		if (repaired || again)
			mutex_tot.ownerdead++;
		else
			mutex_tot.clean++;
		mutex_tot.trials++;
		mutex_tot.mk[v]++;
	}
	CHECK_OK(shmkit_seg_delete(s));
	shmkit_seg_close(s);
	munmap(ms, sizeof *ms);
}

/* ================================== report ================================== */

static void report(double secs)
{
	uint64_t total = blob_tot.trials + chan_tot.p_trials + chan_tot.c_trials + stream_tot.trials +
			 creator_tot.trials[0] + creator_tot.trials[1] + creator_tot.failed[0] +
			 creator_tot.failed[1] + mutex_tot.trials;
	printf("crash matrix: %llu kills in %.1f s (scale %d%s)\n", (unsigned long long)total, secs,
	       scale_mul, SANITIZED ? ", sanitizer build: a quarter" : "");
	printf("  blob writers killed: %llu (%llu writes before the kills), snapshots checked %llu, torn 0\n",
	       (unsigned long long)blob_tot.trials, (unsigned long long)blob_tot.writes_before_kill,
	       (unsigned long long)blob_tot.snapshots);
	lat_print("blob: next write after a kill", &blob_tot.recover);
	printf("  producers killed: %llu (", (unsigned long long)chan_tot.p_trials);
	for (int i = 0; i < N_PK; i++)
		printf("%s%s %llu", i ? ", " : "", pk_names[i], (unsigned long long)chan_tot.pk[i]);
	printf(";");
	for (int i = 0; i < N_PCALLS; i++)
		printf(" %s %llu", pcall_names[i], (unsigned long long)chan_tot.pcalls[i]);
	printf(")\n  consumers killed: %llu (", (unsigned long long)chan_tot.c_trials);
	for (int i = 0; i < N_CK; i++)
		printf("%s%s %llu", i ? ", " : "", ck_names[i], (unsigned long long)chan_tot.ck[i]);
	printf(";");
	for (int i = 0; i < N_CCALLS; i++)
		printf(" %s %llu", ccall_names[i], (unsigned long long)chan_tot.ccalls[i]);
	printf(")\n  channel messages checked %llu (%llu bytes), roles taken over %llu, "
	       "received again %llu (%llu bytes; at most %.1f%% of capacity at once, bound 12.5%%)\n",
	       (unsigned long long)chan_tot.msgs, (unsigned long long)chan_tot.bytes,
	       (unsigned long long)chan_tot.takeovers, (unsigned long long)chan_tot.redelivered,
	       (unsigned long long)chan_tot.redelivered_bytes, chan_tot.again_permille / 10.0);
	lat_print("chan: kill -> consumer's -EPIPE", &chan_tot.p_dead);
	lat_print("chan: kill -> producer's -EPIPE (full ring)", &chan_tot.c_dead);
	printf("  stream owners killed: %llu (fshm %llu, shmkit_stream %llu), names reclaimed %llu, "
	       "guest records checked %llu\n",
	       (unsigned long long)stream_tot.trials, (unsigned long long)stream_tot.fshm,
	       (unsigned long long)stream_tot.core, (unsigned long long)stream_tot.reclaimed,
	       (unsigned long long)stream_tot.records);
	lat_print("stream: guest calls", &stream_tot.calls);
	for (int b = 0; b < 2; b++)
		printf("  creators killed (%s): %llu recovered (%llu opened complete, %llu created anew; "
		       "%llu died in the initializer), %llu left the name unusable\n",
		       b ? "sysv" : "posix",
		       (unsigned long long)(creator_tot.trials[b]),
		       (unsigned long long)creator_tot.recovered_open[b],
		       (unsigned long long)creator_tot.recovered_create[b],
		       (unsigned long long)creator_tot.in_init[b],
		       (unsigned long long)creator_tot.failed[b]);
	lat_print("creator: create-or-open after a kill", &creator_tot.open);
	printf("  mutex holders killed: %llu (%llu -EOWNERDEAD repaired, %llu left it free; "
	       "%s %llu, %s %llu, %s %llu)\n",
	       (unsigned long long)mutex_tot.trials, (unsigned long long)mutex_tot.ownerdead,
	       (unsigned long long)mutex_tot.clean, mk_names[0], (unsigned long long)mutex_tot.mk[0],
	       mk_names[1], (unsigned long long)mutex_tot.mk[1], mk_names[2],
	       (unsigned long long)mutex_tot.mk[2]);
	lat_print("mutex: next lock after a kill", &mutex_tot.lock);
}

int main(void)
{
	const char *e = getenv("SHMKIT_CRASH_SCALE");
	if (e && atoi(e) > 0)
		scale_mul = atoi(e);
	e = getenv("SHMKIT_CRASH_SEED");
	rng = e ? strtoull(e, NULL, 0) : (uint64_t)t_now_ns() ^ (uint64_t)getpid() << 32;
	rng |= 1;
	printf("seed %llu (SHMKIT_CRASH_SEED repeats the choices)\n", (unsigned long long)rng);
	fflush(stdout);
	K = t_shared(sizeof *K);
	CR = t_shared(sizeof *CR);
	int64_t t0 = t_now_ns();

	T_RUN(crash_blob(0, trials(60)));
	T_RUN(crash_blob(SHMKIT_SEG_SYSV, trials(60)));
	T_RUN(crash_producer(0, trials(150)));
	T_RUN(crash_producer(SHMKIT_SEG_SYSV, trials(150)));
	T_RUN(crash_consumer(0, trials(150)));
	T_RUN(crash_consumer(SHMKIT_SEG_SYSV, trials(150)));
	T_RUN(crash_stream(trials(100)));
	T_RUN(crash_mutex(trials(200)));
	T_RUN(crash_creator(0, trials(100)));
	T_RUN(crash_creator(SHMKIT_SEG_SYSV, trials(100)));
	t_guard(0, "");

	report((double)(t_now_ns() - t0) / 1e9);
	if (creator_tot.failed[0] + creator_tot.failed[1]) {
		fprintf(stderr, "test_crash: FAILED: a killed creator left its name unusable\n");
		return T_FAIL;
	}
	printf("test_crash: ok\n");
	return T_PASS;
}
