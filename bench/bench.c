/* shmkit bench — the message channel against the machine's limits, a textbook ring
 * (bench_ring.c, the yardstick of issue 10's targets) and the kernel's IPC mechanisms
 * (context), in one run, two processes pinned to two CPUs.
 *
 * Why it is built this way:
 * - The host moves this VM's vCPUs between physical cores, so absolute times drift by a
 *   factor of up to four from one minute to the next. Every case therefore runs once per
 *   round as a short trial, in a fixed order that puts the cases a ratio compares next
 *   to each other; a ratio is taken between two trials of the same round, and the
 *   reported ratio is the median of the per-round ratios. Only ratios are claims.
 * - Every trial forks a fresh child: the parent stays on one CPU, the child pins itself
 *   to the other. Resources are created before the fork and each side opens its own end
 *   after it, so no handle is shared between the processes.
 * - Round trips: a trial has a warm-up, then an untimed phase that gives the mean (the
 *   clock is read every 64 round trips only, so timer cost flatters no ratio), then a
 *   phase that times every round trip with the TSC, which gives the percentiles.
 * - Throughput: the parent produces for the trial's length and ends the stream; the
 *   child consumes, and measures from the end of a warm-up to the end of the stream.
 * - Honesty: every mechanism moves messages of the same size one at a time, and every
 *   byte of every message goes into the transport and out of it once: the copying
 *   mechanisms (shmkit copy, textbook ring, pipe, socket) copy the sender's whole
 *   buffer in and the whole message out into the receiver's buffer; zero-copy writes
 *   every byte in place and the receiver checksums every byte in place. The copying senders' buffer holds
 *   a full payload written once, and each message stamps its sequence number into it
 *   every 64 KiB and at both ends, which the receiver checks: a lost, duplicated, stale
 *   or torn message fails the case instead of making it faster. (Rewriting and
 *   checksumming the whole buffer around each copy would be the application's work,
 *   not the transport's, and would hide the transport behind two extra passes.)
 */
#include "bench.h"

int g_pinned, g_onecpu, g_cpu[2] = {-1, -1}, g_allowed, g_nice;
struct tbench *g_topic;
struct sbench *g_scale;

/* Shared by the parent and the child of one trial (MAP_SHARED | MAP_ANONYMOUS), zeroed
 * before each fork. The limits' words each have a cache line of their own. */
struct ctl {
	alignas(64) _Atomic uint64_t ping;  /* cache-line limit: parent stores, child spins */
	alignas(64) _Atomic uint64_t pong;  /* child stores, parent spins */
	alignas(64) _Atomic uint32_t fping; /* futex limit: parent stores and wakes */
	alignas(64) _Atomic uint32_t fpong; /* child stores and wakes */
	alignas(64) unsigned char slot_ping[RTT_BYTES]; /* eventfd case: parent -> child */
	alignas(64) unsigned char slot_pong[RTT_BYTES]; /* child -> parent */
	/* Child -> parent. ready is stored (release) once the child's end is open: 1, or -1
	 * when it failed. The rest is written by the child before it exits and read by the
	 * parent after waitpid(), which orders them. */
	alignas(64) _Atomic int ready;
	int err;
	char msg[160];
	uint64_t count; /* messages received in the measured window */
	int64_t ns;	/* its length */
	uint64_t sum;	/* checksum of everything read: keeps the reads observable */
};

/* One trial's transport. Created by the parent before the fork (link_setup), then each
 * side takes its end (link_attach) and closes the rest. */
struct link {
	enum mech mech;
	size_t size;
	int two_way;
	int fds[4];  /* pipes: [0,1] parent->child, [2,3] back; socketpair: [0] parent,
			[1] child; eventfds: [0] ping, [1] pong */
	int tx, rx;  /* this side's descriptors */
	mqd_t mq[2]; /* [0] parent->child, [1] back */
	mqd_t mtx, mrx;
	char name[2][64];	  /* channel or queue names, [0] parent->child, [1] back */
	shmkit_chan *ctx, *crx;	  /* this side's channel ends */
	void *ring[2];		  /* textbook rings (MAP_SHARED), [0] parent->child, [1] back */
	size_t ring_len;	  /* bytes of each */
	struct ring_end rtx, rrx; /* this side's ring ends */
	unsigned char *slot_tx, *slot_rx;
	struct ctl *ctl;
	uint64_t sum;
};

/* What the parent's side of a round-trip trial measures. */
struct rtt_out {
	double typical; /* median over batches of the batch's mean round trip, ns */
	double mean;	/* all round trips of the batches, ns */
};

#define BATCH_NS 10000 /* a batch of round trips lasts about this long... */
#define BATCH_MAX 64   /* ...but holds at most this many */
#define BATCH_CAP ((size_t)1 << 17)

static struct ctl *g_ctl;
/* The parent's payload buffer, the histograms and the batch times, which the parent
 * writes while it measures, are kept out of the children (MADV_DONTFORK): fork()
 * makes private memory copy-on-write, and the first write to each page after every
 * fork would then cost a fault and a TLB shootdown inside the measurement. (Not
 * MAP_SHARED: a shmem-backed source buffer made every 1 MiB copy, the kernel's too,
 * about 5 % slower than the private memory the memcpy limit copies from.) */
static unsigned char *g_pbuf;
static struct hist *g_hists;
static uint64_t *g_batches;

double g_ns_per_tick = 1.0;
static pid_t g_child;	    /* the trial's child, for the watchdog */
static struct link *g_live; /* the trial in flight, for the watchdog's cleanup */
static unsigned g_serial;   /* makes names unique within the run */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* What a spinning loop does between checks. The limit must be the fastest ping-pong
 * there is, and on the Zen 5 this was written on, pausing is: a bare loop keeps
 * pulling the line back from the writer, and its round trip is 1.45 times slower
 * (p50 1200 against 820 TSC ticks, six alternating trials). With a single CPU the peer
 * cannot run while we spin, so give it the CPU. */
static inline void relax(void)
{
	if (g_onecpu)
		sched_yield();
#if defined(__x86_64__) || defined(__i386__)
	else
		_mm_pause();
#endif
}

static inline void futex_wake1(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (void *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static inline void futex_wait1(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, (void *)w, FUTEX_WAIT, val, NULL, NULL, 0);
}

static int write_full(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* n, or 0 at end of stream before the message, or -errno (-EPIPE: ended inside it). */
static ssize_t read_full(int fd, unsigned char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return got ? -EPIPE : 0;
		got += (size_t)r;
	}
	return (ssize_t)n;
}

/* Send one message of n bytes from buf. m is a constant wherever this is inlined, so
 * the switch folds away and every mechanism pays the same (nothing). */
static inline __attribute__((always_inline)) int xsend(struct link *l, enum mech m,
						       const unsigned char *buf, size_t n)
{
	uint64_t one = 1;
	switch (m) {
	case M_PIPE:
	case M_UNIX:
		return write_full(l->tx, buf, n);
	case M_EVENTFD:
		/* No fence: write() is an opaque call the compiler cannot move the copy past,
		 * and the eventfd's lock orders it before the count the reader sees. */
		memcpy(l->slot_tx, buf, n);
		return write(l->tx, &one, sizeof one) == sizeof one ? 0 : -errno;
	case M_MQ:
		return mq_send(l->mtx, (const char *)buf, n, 0) ? -errno : 0;
	case M_CHAN:
	case M_CHAN_SLEEP:
	case M_CHAN_ZC:
	case M_CHAN_WORK:
		return shmkit_chan_send(l->ctx, buf, n, SHMKIT_FOREVER);
	case M_RING:
		return shmkit__bench_ring_send(&l->rtx, buf, n);
	default:
		return -ENOSYS;
	}
}

/* Receive one message of n bytes into buf: n, 0 at end of stream, or -errno. */
static inline __attribute__((always_inline)) ssize_t xrecv(struct link *l, enum mech m,
							   unsigned char *buf, size_t n)
{
	uint64_t v;
	ssize_t r;
	switch (m) {
	case M_PIPE:
	case M_UNIX:
		return read_full(l->rx, buf, n);
	case M_EVENTFD:
		while ((r = read(l->rx, &v, sizeof v)) < 0 && errno == EINTR)
			;
		if (r != sizeof v)
			return r < 0 ? -errno : -EPIPE;
		memcpy(buf, l->slot_rx, n); /* after read(): see xsend */
		return (ssize_t)n;
	case M_MQ:
		while ((r = mq_receive(l->mrx, (char *)buf, n, NULL)) < 0 && errno == EINTR)
			;
		return r < 0 ? -errno : r;
	case M_CHAN:
	case M_CHAN_SLEEP:
	case M_CHAN_ZC:
	case M_CHAN_WORK:
		return shmkit_chan_recv(l->crx, buf, n, SHMKIT_FOREVER);
	case M_RING:
		return shmkit__bench_ring_recv(&l->rrx, buf, n);
	default:
		return -ENOSYS;
	}
}

/* One round trip from the parent's side. */
static inline __attribute__((always_inline)) int rt_once(struct link *l, enum mech m,
							 unsigned char *buf, uint64_t seq)
{
	struct ctl *c = l->ctl;
	ssize_t r;

	if (m == M_CACHELINE) {
		/* release/acquire, as a real flag guarding data would need: pairs with the
		 * child's acquire of ping and release of pong. */
		atomic_store_explicit(&c->ping, seq, memory_order_release);
		while (atomic_load_explicit(&c->pong, memory_order_acquire) != seq)
			relax();
		return 0;
	}
	if (m == M_FUTEX) {
		uint32_t want = (uint32_t)seq, v;
		atomic_store_explicit(&c->fping, want, memory_order_release);
		futex_wake1(&c->fping);
		/* The kernel compares the word with v under its lock: a pong stored after
		 * our load makes FUTEX_WAIT return at once, so no wake is lost. */
		while ((v = atomic_load_explicit(&c->fpong, memory_order_acquire)) != want)
			futex_wait1(&c->fpong, v);
		return 0;
	}
	fill(buf, RTT_BYTES, seq);
	if ((r = xsend(l, m, buf, RTT_BYTES)) < 0)
		return (int)r;
	r = xrecv(l, m, buf, RTT_BYTES);
	if (r != RTT_BYTES)
		return r < 0 ? (int)r : -EPIPE;
	return check(buf, RTT_BYTES, seq, &l->sum) ? 0 : -EBADMSG;
}

/* The parent's side of a round-trip trial: warm-up, mean, distribution, stop. */
static inline __attribute__((always_inline)) int
rtt_run(struct link *l, enum mech m, int64_t trial_ns, struct rtt_out *out, struct hist *h)
{
	alignas(64) unsigned char buf[RTT_BYTES];
	uint64_t seq = 0, n = 0, nb = 0, batch, end, a, b;
	int64_t t0, t1;
	int r;

	/* Warm-up, which also sizes the batches. */
	end = tick() + ticks_for(trial_ns / 10);
	t0 = now_ns();
	do {
		if ((r = rt_once(l, m, buf, ++seq)))
			return r;
		n++;
	} while (tick() < end);
	t1 = now_ns();
	batch = (uint64_t)((double)BATCH_NS * (double)n / (double)(t1 - t0 + 1));
	batch = batch < 1 ? 1 : batch > BATCH_MAX ? BATCH_MAX : batch;

	/* Batches of round trips with no timer inside: the median batch gives the
	 * typical round trip (a preempted batch is an outlier), the total the mean. */
	end = tick() + ticks_for(trial_ns * 45 / 100);
	n = 0;
	t0 = now_ns();
	do {
		a = tick();
		for (uint64_t j = 0; j < batch; j++)
			if ((r = rt_once(l, m, buf, ++seq)))
				return r;
		b = tick();
		if (nb < BATCH_CAP)
			g_batches[nb++] = b - a;
		n += batch;
	} while (b < end);
	t1 = now_ns();
	out->mean = (double)(t1 - t0) / (double)n;
	qsort(g_batches, nb, sizeof *g_batches, cmp_u64);
	out->typical = (double)g_batches[nb / 2] * g_ns_per_tick / (double)batch;

	end = tick() + ticks_for(trial_ns * 45 / 100);
	do {
		a = tick();
		if ((r = rt_once(l, m, buf, ++seq)))
			return r;
		b = tick();
		h_add(h, (uint64_t)((double)(b - a) * g_ns_per_tick + 0.5));
	} while (b < end);

	return rt_once(l, m, buf, STOP);
}

/* The child's side of a round-trip trial: echo until STOP. */
static inline __attribute__((always_inline)) int rtt_echo(struct link *l, enum mech m)
{
	alignas(64) unsigned char buf[RTT_BYTES];
	struct ctl *c = l->ctl;
	uint64_t last = 0, seq;
	ssize_t r;

	for (;;) {
		if (m == M_CACHELINE) {
			/* acquire pairs with the parent's release of ping */
			while ((seq = atomic_load_explicit(&c->ping, memory_order_acquire)) == last)
				relax();
			atomic_store_explicit(&c->pong, seq, memory_order_release);
		} else if (m == M_FUTEX) {
			uint32_t v;
			while ((v = atomic_load_explicit(&c->fping, memory_order_acquire)) ==
			       (uint32_t)last)
				futex_wait1(&c->fping, v);
			atomic_store_explicit(&c->fpong, v, memory_order_release);
			futex_wake1(&c->fpong);
			seq = v == (uint32_t)STOP ? STOP : v;
		} else {
			r = xrecv(l, m, buf, RTT_BYTES);
			if (r != RTT_BYTES)
				return r < 0 ? (int)r : -EPIPE;
			memcpy(&seq, buf, sizeof seq);
			if (!check(buf, RTT_BYTES, seq, &l->sum))
				return -EBADMSG;
			fill(buf, RTT_BYTES, seq);
			if ((r = xsend(l, m, buf, RTT_BYTES)) < 0)
				return (int)r;
		}
		if (seq == STOP)
			return 0;
		if (seq != last + 1)
			return -EBADMSG;
		last = seq;
	}
}

static inline __attribute__((always_inline)) int produce(struct link *l, enum mech m,
							 unsigned char *buf, size_t n, uint64_t seq)
{
	if (m == M_CHAN_ZC) {
		void *p;
		int r = shmkit_chan_reserve(l->ctx, n, SHMKIT_FOREVER, &p);
		if (r)
			return r;
		fill(p, n, seq);
		return shmkit_chan_commit(l->ctx, n);
	}
	if (m == M_CHAN_WORK) {
		/* zero-copy's payload work, with a copy: write every byte, then send */
		fill(buf, n, seq);
		return xsend(l, m, buf, n);
	}
	stamp(buf, n, seq);
	return xsend(l, m, buf, n);
}

/* 1: a message, checked; 0: end of stream; -errno. */
static inline __attribute__((always_inline)) int consume(struct link *l, enum mech m,
							 unsigned char *buf, size_t n, uint64_t seq)
{
	ssize_t r;
	if (m == M_CHAN_ZC) {
		const void *p;
		size_t len;
		r = shmkit_chan_peek(l->crx, &p, &len, SHMKIT_FOREVER);
		if (r <= 0)
			return (int)r;
		if (len != n || !check(p, n, seq, &l->sum))
			return -EBADMSG;
		r = shmkit_chan_release(l->crx);
		return r ? (int)r : 1;
	}
	r = xrecv(l, m, buf, n);
	if (r <= 0)
		return (int)r;
	if (m == M_CHAN_WORK) /* zero-copy's payload work, after the copy out */
		return (size_t)r == n && check(buf, n, seq, &l->sum) ? 1 : -EBADMSG;
	if ((size_t)r != n || !check_stamps(buf, n, seq, &l->sum))
		return -EBADMSG;
	return 1;
}

/* Messages between two clock reads: the clock stays under 1 % of a 64 B message. */
static uint64_t clock_every(size_t n)
{
	return n >= 4096 ? 1 : 4096 / n;
}

static int end_stream(struct link *l)
{
	int r = 0;
	switch (l->mech) {
	case M_PIPE:
		r = close(l->tx) ? -errno : 0;
		l->fds[1] = l->tx = -1;
		break;
	case M_UNIX:
		r = shutdown(l->tx, SHUT_WR) ? -errno : 0;
		break;
	case M_CHAN:
	case M_CHAN_ZC:
	case M_CHAN_WORK:
		r = shmkit_chan_close(l->ctx);
		l->ctx = NULL;
		break;
	case M_RING:
		shmkit__bench_ring_close(&l->rtx);
		break;
	default:
		r = -ENOSYS;
	}
	return r;
}

/* The parent's side of a throughput trial: produce for trial_ns, then end the stream. */
static inline __attribute__((always_inline)) int tput_run(struct link *l, enum mech m,
							  unsigned char *buf, int64_t trial_ns)
{
	size_t n = l->size;
	uint64_t seq, every = clock_every(n), end = tick() + ticks_for(trial_ns);
	int r;

	if (m != M_CHAN_ZC)
		fill(buf, n, 0); /* the payload; stamp() marks each message in it */
	for (seq = 1;; seq++) {
		if ((r = produce(l, m, buf, n, seq)))
			return r;
		/* at least 16 messages, so that the slowest case still has a window */
		if (!(seq & (every - 1)) && seq >= 16 && tick() >= end)
			break;
	}
	return end_stream(l);
}

/* The child's side: consume to the end of the stream; the measured window starts once
 * an eighth of the trial has passed since the first message. */
static inline __attribute__((always_inline)) int tput_drain(struct link *l, enum mech m,
							    unsigned char *buf, int64_t trial_ns)
{
	size_t n = l->size;
	uint64_t every = clock_every(n), count = 0, c_w = 0;
	int64_t t_start = now_ns(), t_first = 0, t_w = 0, t, warm = trial_ns / 8;
	int r, warmed = 0;

	for (;;) {
		r = consume(l, m, buf, n, count + 1);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		if (++count == 1) {
			t_first = now_ns();
		} else if (!warmed && !(count & (every - 1)) && (t = now_ns()) - t_first >= warm) {
			warmed = 1;
			t_w = t;
			c_w = count;
		}
	}
	t = now_ns();
	if (!count)
		return -ENODATA;
	/* Large messages at a slow rate leave few after the warm-up: then measure from the
	 * start, which includes the producer's first message. */
	if (!warmed || count - c_w < 8) {
		t_w = t_start;
		c_w = 0;
	}
	l->ctl->count = count - c_w;
	l->ctl->ns = t - t_w;
	return 0;
}

/* Instantiate the loops once per mechanism, with the mechanism a constant. */
static int rtt_parent(struct link *l, int64_t trial_ns, struct rtt_out *mean, struct hist *h)
{
	switch (l->mech) {
	case M_CACHELINE:
		return rtt_run(l, M_CACHELINE, trial_ns, mean, h);
	case M_FUTEX:
		return rtt_run(l, M_FUTEX, trial_ns, mean, h);
	case M_PIPE:
		return rtt_run(l, M_PIPE, trial_ns, mean, h);
	case M_UNIX:
		return rtt_run(l, M_UNIX, trial_ns, mean, h);
	case M_EVENTFD:
		return rtt_run(l, M_EVENTFD, trial_ns, mean, h);
	case M_MQ:
		return rtt_run(l, M_MQ, trial_ns, mean, h);
	case M_CHAN:
	case M_CHAN_SLEEP:
		return rtt_run(l, M_CHAN, trial_ns, mean, h);
	case M_RING:
		return rtt_run(l, M_RING, trial_ns, mean, h);
	default:
		return -ENOSYS;
	}
}

/* A ring has no liveness: a child that stops with an error closes both directions, so
 * that the parent's waits end (-EPIPE, end of stream) instead of spinning until the
 * watchdog. Returns r. */
static int ring_gave_up(struct link *l, int r)
{
	if (r) {
		shmkit__bench_ring_close(&l->rrx);
		if (l->two_way)
			shmkit__bench_ring_close(&l->rtx);
	}
	return r;
}

static int rtt_child(struct link *l)
{
	switch (l->mech) {
	case M_CACHELINE:
		return rtt_echo(l, M_CACHELINE);
	case M_FUTEX:
		return rtt_echo(l, M_FUTEX);
	case M_PIPE:
		return rtt_echo(l, M_PIPE);
	case M_UNIX:
		return rtt_echo(l, M_UNIX);
	case M_EVENTFD:
		return rtt_echo(l, M_EVENTFD);
	case M_MQ:
		return rtt_echo(l, M_MQ);
	case M_CHAN:
	case M_CHAN_SLEEP:
		return rtt_echo(l, M_CHAN);
	case M_RING:
		return ring_gave_up(l, rtt_echo(l, M_RING));
	default:
		return -ENOSYS;
	}
}

static int tput_parent(struct link *l, unsigned char *buf, int64_t trial_ns)
{
	switch (l->mech) {
	case M_PIPE:
		return tput_run(l, M_PIPE, buf, trial_ns);
	case M_UNIX:
		return tput_run(l, M_UNIX, buf, trial_ns);
	case M_CHAN:
		return tput_run(l, M_CHAN, buf, trial_ns);
	case M_CHAN_ZC:
		return tput_run(l, M_CHAN_ZC, buf, trial_ns);
	case M_CHAN_WORK:
		return tput_run(l, M_CHAN_WORK, buf, trial_ns);
	case M_RING:
		return tput_run(l, M_RING, buf, trial_ns);
	default:
		return -ENOSYS;
	}
}

static int tput_child(struct link *l, unsigned char *buf, int64_t trial_ns)
{
	switch (l->mech) {
	case M_PIPE:
		return tput_drain(l, M_PIPE, buf, trial_ns);
	case M_UNIX:
		return tput_drain(l, M_UNIX, buf, trial_ns);
	case M_CHAN:
		return tput_drain(l, M_CHAN, buf, trial_ns);
	case M_CHAN_ZC:
		return tput_drain(l, M_CHAN_ZC, buf, trial_ns);
	case M_CHAN_WORK:
		return tput_drain(l, M_CHAN_WORK, buf, trial_ns);
	case M_RING:
		return ring_gave_up(l, tput_drain(l, M_RING, buf, trial_ns));
	default:
		return -ENOSYS;
	}
}

/* Fault a mapping in before the clock starts, without changing a byte. */
static void prefault(void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
	size_t len = n + ((uintptr_t)p - a);
	if (madvise((void *)a, len, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < len; off += 4096)
		(void)*(const volatile unsigned char *)(a + off); /* a read, not a sync */
}

static size_t chan_capacity(const struct link *l)
{
	size_t cap = CHAN_CAP_MIN;
	if (!l->two_way)
		while (cap < 4 * l->size)
			cap *= 2;
	else
		cap = CHAN_CAP_RTT;
	return cap;
}

/* Create the segment with no role, so that neither process inherits a channel end. */
static int chan_create(const char *name, size_t cap)
{
	shmkit_chan *ch;
	int r = shmkit_chan_open(name, SHMKIT_CHAN_OBSERVER, cap, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &ch);
	if (r)
		return r;
	return shmkit_chan_close(ch);
}

static int chan_attach(const struct link *l, const char *name, unsigned role, shmkit_chan **out)
{
	int r = shmkit_chan_open(name, role, 0, 0, 0, out);
	shmkit_seg *seg;
	if (r)
		return r;
	if (l->mech == M_CHAN_SLEEP)
		shmkit_chan_set_spin(*out, 0);
	seg = shmkit_chan_seg(*out);
	prefault(shmkit_seg_data(seg), shmkit_seg_size(seg));
	return 0;
}

/* Parent, before the fork. Returns 0, or -errno with why filled in. */
static int link_setup(struct link *l, char *why, size_t whylen)
{
	int r = 0;
	for (int i = 0; i < 4; i++)
		l->fds[i] = -1;
	l->tx = l->rx = -1;
	l->mq[0] = l->mq[1] = l->mtx = l->mrx = (mqd_t)-1;
	for (int i = 0; i < 1 + l->two_way; i++)
		snprintf(l->name[i], sizeof l->name[i], "/shmkit-bench-%d-%u", (int)getpid(),
			 ++g_serial);

	switch (l->mech) {
	case M_PIPE:
		if (pipe(l->fds) || (l->two_way && pipe(l->fds + 2)))
			r = -errno;
		break;
	case M_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, l->fds))
			r = -errno;
		break;
	case M_EVENTFD:
		if ((l->fds[0] = eventfd(0, 0)) < 0 || (l->fds[1] = eventfd(0, 0)) < 0)
			r = -errno;
		break;
	case M_MQ: {
		struct mq_attr a = {.mq_maxmsg = 8, .mq_msgsize = (long)l->size};
		for (int i = 0; i < 2 && !r; i++) {
			l->mq[i] = mq_open(l->name[i], O_RDWR | O_CREAT | O_EXCL, 0600, &a);
			if (l->mq[i] == (mqd_t)-1) {
				r = -errno;
				l->name[i][0] = '\0';
			}
		}
		if (r)
			snprintf(why, whylen, "mq_open: %s", strerror(-r));
		return r;
	}
	case M_RING: {
		/* The channel's ring bytes, in whole-message slots (a power of two of them). */
		size_t cap = chan_capacity(l), slot = (l->size + 63) & ~(size_t)63;
		uint64_t nslots = 1;
		while ((nslots * 2) * slot <= cap)
			nslots *= 2;
		l->ring_len = shmkit__bench_ring_size(l->size, nslots);
		for (int i = 0; i < 1 + l->two_way && !r; i++) {
			void *p = mmap(NULL, l->ring_len, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				r = -errno;
				break;
			}
			l->ring[i] = p;
			shmkit__bench_ring_init(p, l->size, nslots);
		}
		if (r)
			snprintf(why, whylen, "mmap: %s", strerror(-r));
		return r;
	}
	case M_CHAN:
	case M_CHAN_SLEEP:
	case M_CHAN_ZC:
	case M_CHAN_WORK:
		for (int i = 0; i < 1 + l->two_way && !r; i++)
			if ((r = chan_create(l->name[i], chan_capacity(l))))
				l->name[i][0] = '\0';
		if (r)
			snprintf(why, whylen, "shmkit_chan_open: %s", shmkit_strerror(r));
		return r;
	default:
		break;
	}
	if (r)
		snprintf(why, whylen, "%s", strerror(-r));
	return r;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* After the fork: take this side's end (side 0 parent, 1 child), close the rest. */
static int link_attach(struct link *l, int side)
{
	switch (l->mech) {
	case M_PIPE:
		if (side == 0) {
			l->tx = l->fds[1];
			l->rx = l->fds[2];
			close_fd(&l->fds[0]);
			close_fd(&l->fds[3]);
		} else {
			l->tx = l->fds[3];
			l->rx = l->fds[0];
			close_fd(&l->fds[1]);
			close_fd(&l->fds[2]);
		}
		return 0;
	case M_UNIX:
		l->tx = l->rx = l->fds[side];
		close_fd(&l->fds[!side]);
		return 0;
	case M_EVENTFD:
		l->tx = l->fds[side];
		l->rx = l->fds[!side];
		l->slot_tx = side ? l->ctl->slot_pong : l->ctl->slot_ping;
		l->slot_rx = side ? l->ctl->slot_ping : l->ctl->slot_pong;
		return 0;
	case M_MQ:
		l->mtx = l->mq[side];
		l->mrx = l->mq[!side];
		return 0;
	case M_RING: {
		/* side 0 produces into ring 0 and consumes ring 1; side 1 the reverse */
		struct ring_end *ends[2] = {&l->rtx, &l->rrx};
		int r = 0;
		for (int i = 0; i < 1 + l->two_way && !r; i++) {
			prefault(l->ring[i], l->ring_len); /* as chan_attach does */
			r = shmkit__bench_ring_attach(ends[i ^ side], l->ring[i], l->ring_len);
		}
		return r;
	}
	case M_CHAN:
	case M_CHAN_SLEEP:
	case M_CHAN_ZC:
	case M_CHAN_WORK: {
		int r;
		if (side == 0) {
			r = chan_attach(l, l->name[0], SHMKIT_CHAN_PRODUCER, &l->ctx);
			if (!r && l->two_way)
				r = chan_attach(l, l->name[1], SHMKIT_CHAN_CONSUMER, &l->crx);
		} else {
			r = chan_attach(l, l->name[0], SHMKIT_CHAN_CONSUMER, &l->crx);
			if (!r && l->two_way)
				r = chan_attach(l, l->name[1], SHMKIT_CHAN_PRODUCER, &l->ctx);
		}
		return r;
	}
	default:
		return 0;
	}
}

/* Parent, after the child was reaped: add the channels' counters to res. */
static void chan_count(const struct link *l, struct result *res)
{
	for (int i = 0; i < 1 + l->two_way; i++) {
		struct shmkit_chan_stats st;
		shmkit_chan *o;
		if (!l->name[i][0] ||
		    shmkit_chan_open(l->name[i], SHMKIT_CHAN_OBSERVER, 0, 0, 0, &o))
			continue;
		if (shmkit_chan_stats(o, &st) == 0) {
			res->msgs += st.msgs_recv;
			res->c_sleeps += st.consumer_sleeps;
			res->p_sleeps += st.producer_sleeps;
			res->wakes += st.wakes;
		}
		shmkit_chan_close(o);
	}
}

/* Parent, after the child was reaped. */
static void link_teardown(struct link *l)
{
	for (int i = 0; i < 4; i++)
		close_fd(&l->fds[i]);
	for (int i = 0; i < 2; i++) {
		if (l->mq[i] != (mqd_t)-1)
			mq_close(l->mq[i]);
		if (l->mech == M_MQ && l->name[i][0])
			mq_unlink(l->name[i]);
	}
	shmkit_chan_close(l->ctx);
	shmkit_chan_close(l->crx);
	for (int i = 0; i < 2; i++)
		if (l->ring[i])
			munmap(l->ring[i], l->ring_len);
	if (mech_is_chan(l->mech))
		for (int i = 0; i < 1 + l->two_way; i++)
			if (l->name[i][0])
				shmkit_seg_unlink(l->name[i], 0);
}

/* SIGALRM (a hung trial), SIGINT, SIGTERM, SIGHUP: kill the child, remove the trial's
 * named objects, leave. Only async-signal-safe calls (unlink-based removals). */
static void on_signal(int sig)
{
	static const char msg[] = "shmkit bench: trial timed out or interrupted; cleaned up\n";
	ssize_t w;
	if (g_child > 0)
		kill(g_child, SIGKILL);
	if (g_live)
		for (int i = 0; i < 2; i++) {
			if (!g_live->name[i][0])
				continue;
			if (g_live->mech == M_MQ)
				mq_unlink(g_live->name[i]);
			else if (mech_is_chan(g_live->mech))
				shm_unlink(g_live->name[i]);
		}
	w = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)w;
	_exit(sig == SIGALRM ? SHMKIT_EXIT_FAIL : 128 + sig);
}

static const int handled_signals[] = {SIGALRM, SIGINT, SIGTERM, SIGHUP};

static void set_handlers(int on)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on ? on_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++)
		sigaction(handled_signals[i], &sa, NULL);
}

static int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) ? -errno : 0;
}

static void child_fail(struct ctl *c, const char *what, int err)
{
	c->err = err;
	snprintf(c->msg, sizeof c->msg, "child: %s: %s", what, shmkit_strerror(err));
}

static _Noreturn void child_main(struct link *l, const struct bcase *bc, int64_t trial_ns,
				 pid_t parent)
{
	struct ctl *c = l->ctl;
	unsigned char *buf = NULL;
	int r;

	g_child = 0;
	g_live = NULL;
	set_handlers(0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(SHMKIT_EXIT_FAIL);
	if (g_pinned && (r = pin(g_cpu[1]))) {
		child_fail(c, "sched_setaffinity", r);
		goto fail;
	}
	if (bc->kind == K_TPUT && !(buf = aligned_alloc(64, (l->size + 63) & ~(size_t)63))) {
		child_fail(c, "aligned_alloc", -ENOMEM);
		goto fail;
	}
	if (buf)
		memset(buf, 0, l->size);
	if ((r = link_attach(l, 1))) {
		child_fail(c, "open", r);
		goto fail;
	}
	/* release: the parent's acquire of ready sees the child's end open */
	atomic_store_explicit(&c->ready, 1, memory_order_release);
	r = bc->kind == K_RTT ? rtt_child(l) : tput_child(l, buf, trial_ns);
	if (r) {
		child_fail(c, bc->kind == K_RTT ? "echo" : "receive", r);
		_exit(SHMKIT_EXIT_FAIL);
	}
	c->sum += l->sum;
	_exit(SHMKIT_EXIT_OK);
fail:
	atomic_store_explicit(&c->ready, -1, memory_order_release);
	_exit(SHMKIT_EXIT_FAIL);
}

static int wait_ready(struct ctl *c)
{
	int v;
	/* acquire pairs with the child's release of ready */
	while (!(v = atomic_load_explicit(&c->ready, memory_order_acquire)))
		sched_yield();
	return v > 0 ? 0 : -1;
}

static int bw_memcpy(int64_t trial_ns, double *bytes_per_s)
{
	size_t n = MIB;
	unsigned char *src = aligned_alloc(64, n), *dst = aligned_alloc(64, n);
	uint64_t k, end;
	int64_t t0, t1;

	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	memset(src, 1, n);
	memset(dst, 2, n);
	end = tick() + ticks_for(trial_ns / 10);
	do {
		memcpy(dst, src, n);
		__asm__ __volatile__("" : : "r"(dst) : "memory"); /* keep every copy */
	} while (tick() < end);
	end = tick() + ticks_for(trial_ns * 9 / 10);
	t0 = now_ns();
	for (k = 1;; k++) {
		memcpy(dst, src, n);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		if (tick() >= end)
			break;
	}
	t1 = now_ns();
	*bytes_per_s = (double)k * (double)n / ((double)(t1 - t0) * 1e-9);
	free(src);
	free(dst);
	return 0;
}

/* Zeroed MAP_SHARED memory, or NULL. */
static void *shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Zeroed private memory that children do not inherit, or NULL. */
static void *parent_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, n, MADV_DONTFORK)) {
		munmap(p, n);
		return NULL;
	}
	return p;
}

static void shared_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

/* Run one case once. Returns 0 with val set, 1 if the case is unavailable here, or -1
 * if it failed; why says what happened. */
static int run_case(const struct bcase *bc, struct result *res, int64_t trial_ns, int round)
{
	struct link l;
	struct ctl *c = g_ctl;
	unsigned char *buf = NULL;
	struct rtt_out rt = {NAN, NAN};
	pid_t pid, self = getpid();
	int r, st;

	if (bc->kind == K_BW) {
		if ((r = bw_memcpy(trial_ns, &res->val[round])) < 0)
			snprintf(res->why, sizeof res->why, "memcpy: %s", strerror(-r));
		return r < 0 ? -1 : 0;
	}

	memset(&l, 0, sizeof l);
	memset(c, 0, sizeof *c);
	l.mech = bc->mech;
	l.size = bc->size;
	l.two_way = bc->kind == K_RTT;
	l.ctl = c;
	if ((r = link_setup(&l, res->why, sizeof res->why))) {
		link_teardown(&l);
		/* Missing kernel support (ENOSYS) or a forbidden queue: unavailable here. */
		return r == -ENOSYS || r == -EACCES || r == -EPERM ? 1 : -1;
	}
	if (bc->kind == K_TPUT)
		buf = g_pbuf;

	g_live = &l;
	fflush(stdout);
	fflush(stderr);
	alarm(TRIAL_TIMEOUT_S);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		alarm(0);
		g_live = NULL;
		link_teardown(&l);
		snprintf(res->why, sizeof res->why, "fork: %s", strerror(-r));
		return -1;
	}
	if (pid == 0)
		child_main(&l, bc, trial_ns, self);
	g_child = pid;

	r = link_attach(&l, 0);
	if (r)
		snprintf(res->why, sizeof res->why, "parent: open: %s", shmkit_strerror(r));
	else if (wait_ready(c))
		r = -1;
	else if (bc->kind == K_RTT)
		r = rtt_parent(&l, trial_ns, &rt, res->hist);
	else
		r = tput_parent(&l, buf, trial_ns);
	if (r < -1)
		snprintf(res->why, sizeof res->why, "parent: %s", shmkit_strerror(r));
	if (r)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	alarm(0);
	g_child = 0;
	g_live = NULL;
	if (mech_is_chan(l.mech))
		chan_count(&l, res);
	link_teardown(&l);

	if (!r && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		r = -1;
	if (r) {
		/* the child's own account is the first cause when there is one */
		if (c->msg[0])
			snprintf(res->why, sizeof res->why, "%s", c->msg);
		else if (!res->why[0])
			snprintf(res->why, sizeof res->why, "child exited with status %d", st);
		return -1;
	}
	if (bc->kind == K_RTT) {
		res->val[round] = rt.typical;
		res->mean[round] = rt.mean;
	} else {
		if (c->ns <= 0 || !c->count) {
			snprintf(res->why, sizeof res->why, "no message was measured");
			return -1;
		}
		res->val[round] = (double)c->count * (double)l.size / ((double)c->ns * 1e-9);
	}
	return 0;
}

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: shmkit bench [--json] [--quick] [--rounds N] [--trial-ms N] [--only TEXT]\n"
		"                    [--no-nice] [--topic | --no-topic | --scale | --bridge]\n"
		"                    [--no-install] [--svg FILE]\n\n"
		"Measure shmkit's message channel against the machine's limits (cache-line\n"
		"ping-pong, futex wake, memcpy), a textbook shared-memory ring (fixed slots\n"
		"sized to the message, spinning: the yardstick) and the kernel's IPC (pipe,\n"
		"UNIX socket, eventfd, POSIX message queue, for context), two processes\n"
		"pinned to two CPUs; then topics against the channel, ZeroMQ PUB/SUB and\n"
		"UNIX datagram sockets (fan-out); then channels at scale (1 000 in one epoll\n"
		"set, 10 000 open ends).\n\n"
		"  --json        machine-readable output on stdout\n"
		"  --quick       %d rounds of %d ms trials (a few seconds; for tests)\n"
		"  --rounds N    rounds of interleaved trials (default %d)\n"
		"  --trial-ms N  length of one trial (default %d)\n"
		"  --only TEXT   run only the cases whose id contains TEXT (e.g. tput.chan_copy)\n"
		"  --no-nice     keep the priority (by default the benchmark runs at nice %d\n"
		"                when permitted, to keep other processes out of its figures)\n"
		"  --topic       only the topic section (its case ids start with topic.)\n"
		"  --no-topic    only the channel section\n"
		"  --scale       only the scale section (case ids start with scale.): wake-up\n"
		"                latency through 1 000 channels in one epoll set against 1, idle\n"
		"                CPU, opening 10 000 ends; it is part of the default full run\n"
		"                too (about 10 s on a quiet machine)\n"
		"  --bridge      only the NATS bridge (issue 12): a topic carried from host A\n"
		"                to host B by two `shmkit bridge` processes over two clustered\n"
		"                nats-servers on loopback, against plain nats.c; %d rounds of\n"
		"                %d ms trials by default (needs nats-server on PATH and a build\n"
		"                with libnats)\n"
		"  --no-install  when libzmq.so.5 is missing, skip ZeroMQ (by default root\n"
		"                installs Debian's libzmq3-dev with apt-get first)\n"
		"  --svg FILE    also draw the run as a self-contained SVG chart in FILE (round\n"
		"                trips, throughput per size, limits as lines, targets, topics)\n\n"
		"Exit status: 0 the benchmark ran (thresholds missed included), 1 a case failed\n"
		"or the chart could not be written, 2 usage.\n",
		ROUNDS_QUICK, TRIAL_MS_QUICK, ROUNDS_DEFAULT, TRIAL_MS_DEFAULT, BENCH_NICE,
		ROUNDS_BRIDGE, TRIAL_MS_BRIDGE);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;
	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct cfg *cfg)
{
	int rounds = 0, trial = 0, i;
	memset(cfg, 0, sizeof *cfg);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			bench_usage(stdout);
			return 1;
		} else if (!strcmp(a, "--json")) {
			cfg->json = 1;
		} else if (!strcmp(a, "--quick")) {
			cfg->quick = 1;
		} else if (!strcmp(a, "--no-nice")) {
			cfg->no_nice = 1;
		} else if (!strcmp(a, "--topic") || !strcmp(a, "--no-topic")) {
			cfg->topic = a[2] == 't' ? 1 : -1;
		} else if (!strcmp(a, "--scale")) {
			cfg->scale = 1;
		} else if (!strcmp(a, "--bridge")) {
			cfg->bridge = 1;
		} else if (!strcmp(a, "--no-install")) {
			cfg->no_install = 1;
		} else if (!strcmp(a, "--svg")) {
			if (i + 1 >= argc || !argv[i + 1][0])
				goto bad;
			cfg->svg = argv[++i];
		} else if (!strncmp(a, "--svg=", 6)) {
			if (!a[6])
				goto bad;
			cfg->svg = a + 6;
		} else if (!strcmp(a, "--only")) {
			if (i + 1 >= argc || !argv[i + 1][0])
				goto bad;
			cfg->only = argv[++i];
		} else if (!strcmp(a, "--rounds") || !strcmp(a, "--trial-ms")) {
			int *dst = a[2] == 'r' ? &rounds : &trial;
			if (parse_int(i + 1 < argc ? argv[i + 1] : NULL, 1,
				      a[2] == 'r' ? 10000 : 60000, dst))
				goto bad;
			i++;
		} else if (!strncmp(a, "--rounds=", 9)) {
			if (parse_int(a + 9, 1, 10000, &rounds))
				goto bad;
		} else if (!strncmp(a, "--trial-ms=", 11)) {
			if (parse_int(a + 11, 1, 60000, &trial))
				goto bad;
		} else {
			goto bad;
		}
	}
	if (!!cfg->scale + !!cfg->topic + cfg->bridge > 1) {
		fprintf(stderr, "shmkit bench: --scale, --topic/--no-topic, --bridge: choose one\n");
		bench_usage(stderr);
		return -1;
	}
	if (cfg->bridge && (cfg->json || cfg->svg)) {
		fprintf(stderr, "shmkit bench: --bridge prints a table only (no --json, --svg)\n");
		bench_usage(stderr);
		return -1;
	}
	cfg->rounds = rounds ? rounds
		      : cfg->quick ? ROUNDS_QUICK
		      : cfg->bridge ? ROUNDS_BRIDGE : ROUNDS_DEFAULT;
	cfg->trial_ms = trial ? trial
			: cfg->bridge ? (cfg->quick ? TRIAL_MS_BRIDGE_QUICK : TRIAL_MS_BRIDGE)
			: cfg->quick ? TRIAL_MS_QUICK : TRIAL_MS_DEFAULT;
	return 0;
bad:
	fprintf(stderr, "shmkit bench: bad argument '%s'\n", argv[i]);
	bench_usage(stderr);
	return -1;
}

int shmkit_cmd_bench(int argc, char **argv)
{
	struct cfg cfg;
	struct machine m;
	struct result res[NCASES];
	cpu_set_t saved;
	struct rusage ru;
	FILE *svg = NULL;
	int64_t trial_ns;
	int failed = 0, have_saved, progress, r, old_nice;

	r = parse_args(argc, argv, &cfg);
	if (r)
		return r > 0 ? SHMKIT_EXIT_OK : SHMKIT_EXIT_USAGE;
	if (cfg.bridge) {
#ifdef SHMKIT_HAVE_BRIDGE
		return shmkit__bench_bridge_run(&cfg);
#else
		printf("shmkit bench --bridge: skipped: this shmkit was built without libnats "
		       "(apt-get install libnats-dev, then rebuild)\n");
		return SHMKIT_EXIT_OK;
#endif
	}
	/* Opened before the run, so that a chart that cannot be written is known before
	 * minutes of measuring; close-on-exec keeps it from apt-get (bench_topic.c). */
	if (cfg.svg && !(svg = fopen(cfg.svg, "we"))) {
		fprintf(stderr, "shmkit bench: --svg %s: %s\n", cfg.svg, strerror(errno));
		return SHMKIT_EXIT_FAIL;
	}
	trial_ns = (int64_t)cfg.trial_ms * 1000000;
	shmkit__bench_describe_machine(&m);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		m.nivcsw = -ru.ru_nivcsw;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		m.nivcsw -= ru.ru_nivcsw;

	memset(res, 0, sizeof res);
	g_ctl = shared_alloc(sizeof *g_ctl);
	g_hists = parent_alloc(NCASES * sizeof *g_hists);
	g_pbuf = parent_alloc(MIB);
	g_batches = parent_alloc(BATCH_CAP * sizeof *g_batches);
	for (size_t i = 0; i < NCASES; i++) {
		if (cfg.only && !strstr(cases[i].id, cfg.only)) {
			res[i].state = ST_SKIPPED;
			snprintf(res[i].why, sizeof res[i].why, "not selected (--only %s)",
				 cfg.only);
		}
		res[i].val = malloc(sizeof(double) * (size_t)cfg.rounds);
		res[i].hist = g_hists ? &g_hists[i] : NULL;
		res[i].mean = malloc(sizeof(double) * (size_t)cfg.rounds);
		if (!res[i].val || !res[i].mean || !res[i].hist || !g_ctl || !g_pbuf ||
		    !g_batches) {
			fprintf(stderr, "shmkit bench: out of memory\n");
			failed = 1;
			goto out;
		}
		for (int k = 0; k < cfg.rounds; k++)
			res[i].val[k] = res[i].mean[k] = NAN;
	}

	/* The first two CPUs we may use: parent on one, child on the other. */
	have_saved = sched_getaffinity(0, sizeof saved, &saved) == 0;
	g_allowed = have_saved ? CPU_COUNT(&saved) : 1;
	for (int i = 0, n = 0; have_saved && i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &saved))
			g_cpu[n++] = i;
	g_pinned = g_allowed >= 2 && pin(g_cpu[0]) == 0;
	g_onecpu = g_allowed < 2;
	if (!g_pinned)
		g_cpu[0] = g_cpu[1] = -1;
	if (!g_pinned)
		fprintf(stderr, "shmkit bench: only one CPU available: running unpinned\n");

	/* Other processes on the machine time-slice with the spinning cases and delay the
	 * wake-ups of the sleeping ones; a high priority (inherited by the children, the
	 * same for every case) keeps most of that out. */
	errno = 0;
	old_nice = getpriority(PRIO_PROCESS, 0);
	if (!cfg.no_nice && errno == 0 && setpriority(PRIO_PROCESS, 0, BENCH_NICE) == 0)
		g_nice = BENCH_NICE;
	else
		g_nice = errno == 0 ? old_nice : 0;

	signal(SIGPIPE, SIG_IGN);
	set_handlers(1);
	calibrate(cfg.quick ? 5 : 20);

	progress = isatty(STDERR_FILENO);
	for (int round = 0; round < cfg.rounds && cfg.topic <= 0 && !cfg.scale; round++) {
		if (progress)
			fprintf(stderr, "\rshmkit bench: round %d/%d ", round + 1, cfg.rounds);
		for (size_t i = 0; i < NCASES; i++) {
			if (res[i].state != ST_OK)
				continue; /* failed or unavailable once: not retried */
			r = run_case(&cases[i], &res[i], trial_ns, round);
			if (r > 0)
				res[i].state = ST_UNAVAILABLE;
			else if (r < 0)
				res[i].state = ST_FAILED;
		}
	}
	if (progress)
		fprintf(stderr, "\r%40s\r", "");
	if (cfg.topic >= 0 && !cfg.scale) {
		struct tb_cfg tc = {.rounds = cfg.rounds, .trial_ms = cfg.trial_ms,
				    .quick = cfg.quick, .no_install = cfg.no_install,
				    .nice = g_nice, .only = cfg.only, .pinned = g_pinned,
				    .cpu = g_cpu[0], .machine = m.cpu, .kernel = m.kernel,
				    .nproc = m.nproc};
		if (have_saved)
			tc.allowed = saved;
		else
			CPU_ZERO(&tc.allowed);
		failed |= shmkit__bench_topic_run(&tc, &g_topic) != 0;
	}
	if (cfg.scale || cfg.topic == 0) {
		struct sc_cfg sc = {.rounds = cfg.rounds, .trial_ms = cfg.trial_ms,
				    .quick = cfg.quick, .nice = g_nice, .only = cfg.only,
				    .pinned = g_pinned, .cpu = {g_cpu[0], g_cpu[1]},
				    .machine = m.cpu, .kernel = m.kernel, .nproc = m.nproc};
		failed |= shmkit__bench_scale_run(&sc, &g_scale) != 0;
	}

	set_handlers(0);
	if (g_nice != old_nice)
		setpriority(PRIO_PROCESS, 0, old_nice);
	m.load_after = shmkit__bench_loadavg();
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		m.nivcsw += ru.ru_nivcsw;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		m.nivcsw += ru.ru_nivcsw;
	if (have_saved)
		sched_setaffinity(0, sizeof saved, &saved);
	for (size_t i = 0; i < NCASES; i++)
		failed |= res[i].state == ST_FAILED && cfg.topic <= 0 && !cfg.scale;
	if (cfg.scale)
		shmkit__bench_scale_print(stdout, g_scale, cfg.json, 1);
	else if (cfg.topic > 0)
		shmkit__bench_topic_print(stdout, g_topic, cfg.json, 1);
	else if (cfg.json)
		/* with the topic and scale sections inside */
		shmkit__bench_print_json(stdout, &m, &cfg, res);
	else
		shmkit__bench_print_table(stdout, &m, &cfg, res);
	if (cfg.topic == 0 && !cfg.scale && !cfg.json) {
		shmkit__bench_topic_print(stdout, g_topic, 0, 0);
		shmkit__bench_scale_print(stdout, g_scale, 0, 0);
	}
	fflush(stdout);
	if (svg) {
		r = shmkit__bench_write_svg(svg, &m, &cfg, res, g_topic);
		if (fclose(svg) && !r)
			r = -errno;
		svg = NULL;
		if (r) {
			fprintf(stderr, "shmkit bench: --svg %s: %s\n", cfg.svg, strerror(-r));
			failed = 1;
		}
	}
	for (size_t i = 0; i < NCASES; i++)
		if (res[i].state == ST_FAILED)
			fprintf(stderr, "shmkit bench: %s failed: %s\n", cases[i].id, res[i].why);
out:
	if (svg)
		fclose(svg);
	for (size_t i = 0; i < NCASES; i++) {
		free(res[i].val);
		free(res[i].mean);
	}
	shared_free(g_ctl, sizeof *g_ctl);
	shared_free(g_hists, NCASES * sizeof *g_hists);
	shared_free(g_pbuf, MIB);
	shared_free(g_batches, BATCH_CAP * sizeof *g_batches);
	g_ctl = NULL;
	g_hists = NULL;
	g_pbuf = NULL;
	shmkit__bench_topic_free(g_topic);
	g_topic = NULL;
	shmkit__bench_scale_free(g_scale);
	g_scale = NULL;
	return failed ? SHMKIT_EXIT_FAIL : SHMKIT_EXIT_OK;
}
