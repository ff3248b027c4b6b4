/* The soak (issue 8, acceptance 6; `make soak`): 8 channel pairs and 8 blob writers
 * with 8 readers, all at once for a set time (argument: seconds, default 30), every
 * message and snapshot checked against its checksum and its number. Prints what moved
 * and exits non-zero on any error. Not run by ctest: it takes as long as it is told.
 *
 * Channels: pair i uses the POSIX backend when i is even, System V when odd, rings of
 * 4 KiB to 256 KiB, every send and receive call at random; the last two pairs sleep
 * instead of spinning. Each producer closes at the end, and its consumer must then
 * have received exactly what was sent, in order. Blobs: four (two per backend) of
 * 256 bytes to 1 MiB, each with two writers and two readers; a reader checks that every
 * snapshot is whole, that versions never go back, and that no writer's writes appear
 * out of order. */
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "common.h"

#define PAIRS 8
#define BLOBS 4
#define PER_BLOB 2 /* writers, and as many readers, per blob */

struct pair_stats {
	_Atomic uint64_t sent, sent_bytes;   /* producer: messages committed */
	_Atomic uint64_t recv, recv_bytes;   /* consumer: messages checked */
	_Atomic int producer_done;           /* sent is final */
};

struct blob_stats {
	_Atomic uint64_t writes[PER_BLOB];   /* per writer */
	_Atomic uint64_t reads, read_bytes;
};

struct soak {
	_Atomic int64_t deadline;
	_Atomic uint64_t errors;
	struct pair_stats pair[PAIRS];
	struct blob_stats blob[BLOBS];
};

static struct soak *S;

__attribute__((format(printf, 3, 4))) static void fail(const char *who, int i, const char *fmt,
							 ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "soak: %s %d: ", who, i);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	atomic_fetch_add(&S->errors, 1);
}

static int over(void)
{
	return t_now_ns() >= atomic_load(&S->deadline);
}

/* Names are made by the parent (t_name() in a child would name the child's own). */
static const char *pair_names[PAIRS], *blob_names[BLOBS];

static const char *pair_name(int i)
{
	return pair_names[i];
}

static unsigned pair_backend(int i)
{
	return i % 2 ? SHMKIT_SEG_SYSV : 0;
}

static size_t pair_capacity(int i)
{
	static const size_t caps[] = {4096, 16384, 65536, 262144};
	return caps[i % 4];
}

static int64_t pair_spin(int i)
{
	return i >= PAIRS - 2 ? 0 : -1; /* -1: the default */
}

static int producer(int i)
{
	struct pair_stats *ps = &S->pair[i];
	shmkit_chan *p;
	int r = shmkit_chan_open(pair_name(i), SHMKIT_CHAN_PRODUCER, 0, 0, pair_backend(i), &p);
	if (r < 0) {
		fail("producer", i, "open: %s", shmkit_strerror(r));
		return 1;
	}
	if (pair_spin(i) >= 0)
		shmkit_chan_set_spin(p, pair_spin(i));
	struct shmkit_chan_stats st;
	shmkit_chan_stats(p, &st);
	size_t max = st.max_msg;
	enum { VMAX = 16 };
	unsigned char *vb[VMAX];
	struct iovec iov[VMAX];
	for (int k = 0; k < VMAX; k++)
		CHECK((vb[k] = malloc(max)) != NULL);
	uint64_t rng = (uint64_t)i * 7919 + 1, seq = 0, bytes = 0;
	while (!over()) {
		uint64_t x = t_rand(&rng);
		unsigned mode = (unsigned)(x % 3);
		size_t len = t_msg_len(seq, max);
		if (mode == 0) {
			t_msg_fill(vb[0], len, seq);
			r = shmkit_chan_send(p, vb[0], len, SHMKIT_SEC);
			if (r == 0) {
				seq++;
				bytes += len;
			}
		} else if (mode == 1) {
			int n = 1 + (int)((x >> 8) % VMAX);
			for (int k = 0; k < n; k++) {
				iov[k].iov_base = vb[k];
				iov[k].iov_len = t_msg_len(seq + (uint64_t)k, max);
				t_msg_fill(vb[k], iov[k].iov_len, seq + (uint64_t)k);
			}
			r = shmkit_chan_sendv(p, iov, n, SHMKIT_SEC);
			for (int k = 0; k < r; k++)
				bytes += iov[k].iov_len;
			if (r > 0) {
				seq += (uint64_t)r;
				r = 0;
			}
		} else {
			void *q;
			r = shmkit_chan_reserve(p, len, SHMKIT_SEC, &q);
			if (r == 0) {
				t_msg_fill(q, len, seq);
				r = shmkit_chan_commit(p, len);
				if (r == 0) {
					seq++;
					bytes += len;
				}
			}
		}
		if (r == -ETIMEDOUT)
			continue; /* a slow consumer on a busy machine: not an error */
		if (r < 0) {
			fail("producer", i, "message %llu: %s", (unsigned long long)seq, shmkit_strerror(r));
			return 1;
		}
		atomic_store_explicit(&S->pair[i].sent, seq, memory_order_relaxed);
		atomic_store_explicit(&S->pair[i].sent_bytes, bytes, memory_order_relaxed);
	}
	atomic_store(&ps->sent, seq);
	atomic_store(&ps->sent_bytes, bytes);
	atomic_store(&ps->producer_done, 1);
	shmkit_chan_close(p); /* end of stream once the consumer has everything */
	return 0;
}

static int consumer(int i)
{
	struct pair_stats *ps = &S->pair[i];
	shmkit_chan *c;
	int r = shmkit_chan_open(pair_name(i), SHMKIT_CHAN_CONSUMER, 0, 0, pair_backend(i), &c);
	if (r < 0) {
		fail("consumer", i, "open: %s", shmkit_strerror(r));
		return 1;
	}
	if (pair_spin(i) >= 0)
		shmkit_chan_set_spin(c, pair_spin(i));
	struct shmkit_chan_stats st;
	shmkit_chan_stats(c, &st);
	size_t max = st.max_msg;
	unsigned char *buf = malloc(max);
	CHECK(buf != NULL);
	uint64_t rng = (uint64_t)i * 104729 + 1, seq = 0, bytes = 0;
	for (;;) {
		const unsigned char *m = buf;
		size_t len = 0;
		ssize_t n;
		int peek = t_rand(&rng) % 2;
		if (peek) {
			const void *b;
			n = shmkit_chan_peek(c, &b, &len, 5 * SHMKIT_SEC);
			m = b;
		} else {
			n = shmkit_chan_recv(c, buf, max, 5 * SHMKIT_SEC);
			len = n > 0 ? (size_t)n : 0;
		}
		if (n == -ETIMEDOUT && !over())
			continue;
		if (n == 0)
			break; /* end of stream */
		if (n < 0) {
			fail("consumer", i, "message %llu: %s", (unsigned long long)seq,
			     shmkit_strerror((int)n));
			return 1;
		}
		if (!t_msg_check(m, len, seq, max)) {
			fail("consumer", i, "message %llu is wrong (%zu bytes)", (unsigned long long)seq,
			     len);
			return 1;
		}
		if (peek && shmkit_chan_release(c) != 0) {
			fail("consumer", i, "release of message %llu failed", (unsigned long long)seq);
			return 1;
		}
		seq++;
		bytes += len;
		atomic_store_explicit(&ps->recv, seq, memory_order_relaxed);
		atomic_store_explicit(&ps->recv_bytes, bytes, memory_order_relaxed);
	}
	if (!atomic_load(&ps->producer_done) || atomic_load(&ps->sent) != seq) {
		fail("consumer", i, "end of stream after %llu messages; %llu sent",
		     (unsigned long long)seq, (unsigned long long)atomic_load(&ps->sent));
		return 1;
	}
	shmkit_chan_close(c);
	return 0;
}

static const char *blob_name(int j)
{
	return blob_names[j];
}

static unsigned blob_backend(int j)
{
	return j % 2 ? SHMKIT_SEG_SYSV : 0;
}

static size_t blob_words(int j)
{
	static const size_t words[] = {32, 8192, 131072, 1024}; /* 256 B to 1 MiB */
	return words[j % 4];
}

/* Writer w of blob j: tag = w+1 in the top 8 bits, its write count below. */
static int writer(int j, int w)
{
	shmkit_blob *b;
	size_t words = blob_words(j);
	uint64_t *buf = malloc(words * 8);
	int r = buf ? shmkit_blob_open(blob_name(j), 0, 0, blob_backend(j), &b) : -ENOMEM;
	if (r < 0) {
		fail("blob writer", j, "open: %s", shmkit_strerror(r));
		return 1;
	}
	uint64_t n = 0;
	while (!over()) {
		t_snap_fill(buf, words, (uint64_t)(w + 1) << 56 | ++n);
		r = shmkit_blob_write(b, buf, words * 8);
		if (r < 0) {
			fail("blob writer", j, "write %llu: %s", (unsigned long long)n, shmkit_strerror(r));
			return 1;
		}
		atomic_store_explicit(&S->blob[j].writes[w], n, memory_order_relaxed);
	}
	shmkit_blob_close(b);
	free(buf);
	return 0;
}

static int reader(int j)
{
	shmkit_blob *b;
	size_t words = blob_words(j);
	uint64_t *buf = malloc(words * 8), last_v = 0, last_n[PER_BLOB] = {0}, reads = 0;
	int r = buf ? shmkit_blob_open(blob_name(j), 0, 0, blob_backend(j) | SHMKIT_SEG_RDONLY, &b)
		    : -ENOMEM;
	if (r < 0) {
		fail("blob reader", j, "open: %s", shmkit_strerror(r));
		return 1;
	}
	while (!over()) {
		uint64_t v;
		ssize_t got = shmkit_blob_read(b, buf, words * 8, &v);
		if (got != (ssize_t)(words * 8)) {
			fail("blob reader", j, "read returned %zd", got);
			return 1;
		}
		uint64_t tag = t_snap_tag(buf, words);
		if (tag == UINT64_MAX) {
			fail("blob reader", j, "torn snapshot at version %llu", (unsigned long long)v);
			return 1;
		}
		if (v < last_v) {
			fail("blob reader", j, "version went back: %llu after %llu",
			     (unsigned long long)v, (unsigned long long)last_v);
			return 1;
		}
		last_v = v;
		if (tag != 0) {
			unsigned w = (unsigned)(tag >> 56) - 1;
			uint64_t n = tag & ((UINT64_C(1) << 56) - 1);
			if (w >= PER_BLOB || n < last_n[w]) {
				fail("blob reader", j, "writer %u's write %llu out of order", w,
				     (unsigned long long)n);
				return 1;
			}
			last_n[w] = n;
		} else if (v != 0) {
			fail("blob reader", j, "zero snapshot at version %llu", (unsigned long long)v);
			return 1;
		}
		reads++;
		atomic_store_explicit(&S->blob[j].reads, reads, memory_order_relaxed);
		atomic_store_explicit(&S->blob[j].read_bytes, reads * words * 8, memory_order_relaxed);
	}
	shmkit_blob_close(b);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 30;
	if (secs <= 0) {
		fprintf(stderr, "usage: %s [seconds]\n", argv[0]);
		return 2;
	}
	S = t_shared(sizeof *S);
	for (int i = 0; i < PAIRS; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "soak-chan-%d", i);
		pair_names[i] = t_name(tag);
	}
	for (int j = 0; j < BLOBS; j++) {
		char tag[32];
		snprintf(tag, sizeof tag, "soak-blob-%d", j);
		blob_names[j] = t_name(tag);
	}
	shmkit_chan *chans[PAIRS];
	shmkit_blob *blobs[BLOBS];
	for (int i = 0; i < PAIRS; i++)
		CHECK_OK(shmkit_chan_open(pair_name(i), SHMKIT_CHAN_OBSERVER, pair_capacity(i), 0,
					  pair_backend(i) | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL,
					  &chans[i]));
	for (int j = 0; j < BLOBS; j++)
		CHECK_OK(shmkit_blob_open(blob_name(j), blob_words(j) * 8, 0,
					  blob_backend(j) | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL,
					  &blobs[j]));
	printf("soak: %d s, %d channel pairs, %d blob writers and %d readers\n", secs, PAIRS,
	       BLOBS * PER_BLOB, BLOBS * PER_BLOB);
	fflush(stdout);
	int64_t t0 = t_now_ns();
	atomic_store(&S->deadline, t0 + (int64_t)secs * SHMKIT_SEC);
	pid_t kids[2 * PAIRS + 2 * BLOBS * PER_BLOB];
	int nk = 0;
	for (int i = 0; i < PAIRS; i++) {
		CHECK((kids[nk++] = t_fork_raw()) >= 0);
		if (kids[nk - 1] == 0)
			_exit(consumer(i));
		CHECK((kids[nk++] = t_fork_raw()) >= 0);
		if (kids[nk - 1] == 0)
			_exit(producer(i));
	}
	for (int j = 0; j < BLOBS; j++)
		for (int w = 0; w < PER_BLOB; w++) {
			CHECK((kids[nk++] = t_fork_raw()) >= 0);
			if (kids[nk - 1] == 0)
				_exit(writer(j, w));
			CHECK((kids[nk++] = t_fork_raw()) >= 0);
			if (kids[nk - 1] == 0)
				_exit(reader(j));
		}
	t_guard((unsigned)secs + 60, "soak: a child never finished");
	int failed = 0;
	for (int k = 0; k < nk; k++)
		if (t_wait(kids[k]) != 0)
			failed++;
	t_guard(0, "");
	double dt = (double)(t_now_ns() - t0) / 1e9;

	uint64_t msgs = 0, bytes = 0, writes = 0, reads = 0, rbytes = 0;
	for (int i = 0; i < PAIRS; i++) {
		struct shmkit_chan_stats st;
		CHECK_OK(shmkit_chan_stats(chans[i], &st));
		struct pair_stats *ps = &S->pair[i];
		printf("  chan %d (%s, %3zu KiB ring): %10llu messages, %12llu bytes, "
		       "%llu + %llu sleeps%s\n", i, pair_backend(i) ? "sysv " : "posix",
		       pair_capacity(i) >> 10, (unsigned long long)atomic_load(&ps->recv),
		       (unsigned long long)atomic_load(&ps->recv_bytes),
		       (unsigned long long)st.producer_sleeps, (unsigned long long)st.consumer_sleeps,
		       pair_spin(i) == 0 ? " (sleep mode)" : "");
		msgs += atomic_load(&ps->recv);
		bytes += atomic_load(&ps->recv_bytes);
		shmkit_seg_delete(shmkit_chan_seg(chans[i]));
		shmkit_chan_close(chans[i]);
	}
	for (int j = 0; j < BLOBS; j++) {
		struct blob_stats *bs = &S->blob[j];
		uint64_t w = 0;
		for (int k = 0; k < PER_BLOB; k++)
			w += atomic_load(&bs->writes[k]);
		int64_t v = shmkit_blob_version(blobs[j]);
		if (v < 0 || (uint64_t)v != w)
			fail("blob", j, "version %lld after %llu writes", (long long)v,
			     (unsigned long long)w);
		printf("  blob %d (%s, %7zu bytes): %10llu writes, %10llu reads checked\n", j,
		       blob_backend(j) ? "sysv " : "posix", blob_words(j) * 8,
		       (unsigned long long)w, (unsigned long long)atomic_load(&bs->reads));
		writes += w;
		reads += atomic_load(&bs->reads);
		rbytes += atomic_load(&bs->read_bytes);
		shmkit_blob_delete(blobs[j]);
		shmkit_blob_close(blobs[j]);
	}
	uint64_t errors = atomic_load(&S->errors);
	printf("soak: %.1f s: %llu messages (%.2f M/s), %llu bytes (%.1f MB/s) checked; "
	       "%llu snapshots written, %llu read and checked (%.1f MB/s); "
	       "%llu errors, %d failed processes\n",
	       dt, (unsigned long long)msgs, (double)msgs / dt / 1e6, (unsigned long long)bytes,
	       (double)bytes / dt / 1e6, (unsigned long long)writes, (unsigned long long)reads,
	       (double)rbytes / dt / 1e6, (unsigned long long)errors, failed);
	return errors || failed ? T_FAIL : T_PASS;
}
