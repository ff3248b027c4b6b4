/* Fuzz target: hostile bytes over a topic's control block, its publisher and
 * subscriber slots and its ring, then a subscriber's path (open, receive, peek,
 * release, descriptor, counters, the subscriber list) and a publisher's (open,
 * publish, loan/commit, publishv), every call with timeout 0 or 1 ms. Every call must
 * return a documented value, a message or a loan must lie inside the segment and fit
 * the topic's largest message, a poisoned handle stays poisoned, and nothing hangs;
 * a violation aborts.
 *
 * libFuzzer:  make fuzz  (or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *       -Ibuild/include -Isrc tests/fuzz/fuzz_topic.c src/(all).c -o fuzz_topic)
 * Under gcc, tests/test_fuzz_topic.c replays the corpus in tests/fuzz/corpus/topic and
 * seeded random inputs, and tests/test_topic_corrupt.c drives the same code through
 * every word (both link this file and see it through fuzz_targets.h).
 *
 * Input: byte 0 selects operations (bit 6: the reliable topic instead of the lossy
 * one; bit 7: the publisher's path too; bits 0-1: how the subscriber reads); then
 * patches of [u16 offset][u8 n][n bytes], applied to the topic's data area at offset %
 * area size. Offsets with bit 15 set are applied after the subscriber opened, the
 * others before. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "fuzz_common.h"
#include "fuzz_targets.h"

#define FT_AREA_MAX 65536u

/* Two topics, [0] lossy and [1] reliable, each with its snapshot. */
char ft_name[2][64];
unsigned char *ft_snapshot[2];
size_t ft_area[2];
shmkit_seg *ft_seg[2]; /* plain views of the segments, to patch them */
int ft_state;          /* 0: not set up, 1: ready, -1: setup failed */
unsigned long ft_eproto; /* runs in which some call answered -EPROTO */
static int ft_saw_eproto;

void ft_cleanup(void)
{
	for (int i = 0; i < 2; i++)
		if (ft_seg[i]) {
			shmkit_seg_close(ft_seg[i]);
			ft_seg[i] = NULL;
			shmkit_seg_unlink(ft_name[i], 0);
		}
	shmkit_live_sweep();
}

/* A process that takes a role and dies holding it (and, as a publisher, a loan it
 * never committed): the slots of dead holders are part of the state. */
static void ft_dead_holder(const char *name, unsigned role)
{
	pid_t pid = fork();
	if (pid == 0) {
		shmkit_topic *t;
		if (shmkit_topic_open(name, role, 0, 0, 0, &t) == 0 && role == SHMKIT_TOPIC_PUBLISHER) {
			void *b;
			if (shmkit_topic_loan(t, 300, 0, &b) == 0)
				memset(b, 0xee, 300);
		}
		_exit(0);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0)
			;
}

/* A realistic starting point: several laps, messages of many sizes (a wrap pad
 * among them), a subscriber that read part of them and one that read nothing, a
 * withdrawn loan, and dead holders of a publisher slot (with a pending claim) and of
 * a subscriber slot; then every live handle closed. */
static int ft_setup_one(int k)
{
	struct shmkit_topic_opts o;
	shmkit_topic *p = NULL, *s1 = NULL, *s2 = NULL;
	static unsigned char buf[FT_MAX];
	int r;
	snprintf(ft_name[k], sizeof ft_name[k], "/shmkit-fuzz-topic%d-%d", k, (int)getpid());
	shmkit_seg_unlink(ft_name[k], 0);
	memset(&o, 0, sizeof o);
	o.capacity = FT_CAP;
	o.flags = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | (k ? SHMKIT_TOPIC_RELIABLE : 0);
	o.max_subscribers = FT_SUBS;
	o.max_publishers = FT_PUBS;
	r = shmkit_topic_open_opts(ft_name[k], SHMKIT_TOPIC_PUBLISHER, &o, &p);
	if (r == 0)
		r = shmkit_topic_open(ft_name[k], SHMKIT_TOPIC_SUBSCRIBER, 0, 0, 0, &s1);
	if (r == 0)
		r = shmkit_topic_open(ft_name[k], SHMKIT_TOPIC_SUBSCRIBER, 0, 0, 0, &s2);
	for (unsigned i = 0; r == 0 && i < 70; i++) {
		size_t len = 1 + (i * 397u) % 700u;
		memset(buf, (int)(i + 1), len);
		if (i % 5 == 4) {
			void *b;
			r = shmkit_topic_loan(p, len, 0, &b);
			if (r == 0) {
				memcpy(b, buf, len);
				r = shmkit_topic_commit(p, len);
			}
		} else {
			r = shmkit_topic_publish(p, buf, len, 0);
		}
		if (r == -EAGAIN) {
			/* Reliable and full: the subscribers read, and try again. */
			while (shmkit_topic_receive(s1, buf, sizeof buf, 0) > 0)
				;
			while (shmkit_topic_receive(s2, buf, sizeof buf, 0) > 0)
				;
			r = shmkit_topic_publish(p, buf, len, 0);
		}
		if (r == 0 && i % 3 == 0)
			shmkit_topic_receive(s1, buf, sizeof buf, 0);
	}
	if (r == 0) {
		void *b;
		if (shmkit_topic_loan(p, 200, 0, &b) == 0)
			memset(b, 0x5a, 200); /* withdrawn by close */
	}
	shmkit_topic_close(s1);
	if (r == 0) {
		ft_dead_holder(ft_name[k], SHMKIT_TOPIC_SUBSCRIBER);
		ft_dead_holder(ft_name[k], SHMKIT_TOPIC_PUBLISHER);
	}
	shmkit_topic_close(s2);
	shmkit_topic_close(p);
	if (r < 0 || shmkit_seg_open(ft_name[k], SHMKIT_KIND_TOPIC, 0, 0, 0, &ft_seg[k]) < 0)
		return -1;
	ft_area[k] = shmkit_seg_size(ft_seg[k]);
	if (ft_area[k] > FT_AREA_MAX)
		return -1;
	ft_snapshot[k] = malloc(ft_area[k]);
	if (!ft_snapshot[k])
		return -1;
	memcpy(ft_snapshot[k], shmkit_seg_data(ft_seg[k]), ft_area[k]);
	return 0;
}

static int ft_setup(void)
{
	atexit(ft_cleanup);
	for (int k = 0; k < 2; k++)
		if (ft_setup_one(k) < 0) {
			fprintf(stderr, "fuzz_topic: setup of topic %d failed\n", k);
			return -1;
		}
	return 0;
}

/* A subscriber's calls; ops bits 0-1 choose receive, peek, a small buffer, or a 1 ms
 * timeout. */
static void ft_subscriber(shmkit_topic *s, unsigned ops)
{
	static unsigned char buf[FT_CAP];
	const unsigned char *base = shmkit_seg_data(shmkit_topic_seg(s));
	size_t seg_size = shmkit_seg_size(shmkit_topic_seg(s));
	int poisoned = 0;
	for (unsigned i = 0; i < 48; i++) {
		unsigned op = (ops >> (i % 4 * 2)) & 3u;
		ssize_t r;
		if (op == 1) {
			const void *b;
			size_t len;
			r = shmkit_topic_peek(s, &b, &len, 0);
			if (r > 0) {
				const unsigned char *pb = b;
				fuzz_check((size_t)r == len && len <= FT_MAX);
				fuzz_check(pb >= base && pb + len <= base + seg_size);
				memcpy(buf, pb, len);
				int rel = shmkit_topic_release(s);
				fuzz_check(rel == 0 || rel == -ESTALE || rel == -EPROTO);
			} else {
				fuzz_check(shmkit_topic_release(s) == -EINVAL || r == -EPROTO);
			}
		} else {
			size_t cap = op == 2 ? 16 : sizeof buf;
			r = shmkit_topic_receive(s, buf, cap, op == 3 ? SHMKIT_MSEC : 0);
			if (r == -EMSGSIZE) {
				fuzz_check(op == 2);
				continue;
			}
			fuzz_check(r <= (ssize_t)cap && r <= (ssize_t)FT_MAX);
		}
		fuzz_check(r > 0 || r == 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -EOVERFLOW ||
			   r == -EPIPE || r == -EPROTO);
		if (r == -ETIMEDOUT)
			fuzz_check(op == 3);
		if (r == -EPROTO) {
			poisoned = 1;
			ft_saw_eproto = 1;
			break;
		}
		if (r == 0 || r == -EPIPE || r == -EAGAIN || r == -ETIMEDOUT)
			break;
	}
	if (poisoned) {
		/* Once corrupt, the handle stays poisoned. */
		fuzz_check(shmkit_topic_receive(s, buf, sizeof buf, 0) == -EPROTO);
		const void *b;
		size_t len;
		fuzz_check(shmkit_topic_peek(s, &b, &len, 0) == -EPROTO);
	}
	struct shmkit_topic_stats st;
	int r = shmkit_topic_stats(s, &st);
	fuzz_check(r == 0 || r == -EPROTO);
	if (r == 0)
		fuzz_check(st.capacity == FT_CAP && st.max_msg == FT_MAX);
	struct shmkit_topic_sub_info info[FT_SUBS + 2];
	r = shmkit_topic_subscribers(s, info, FT_SUBS + 2);
	fuzz_check(r == -EPROTO || (r >= 0 && r <= (int)FT_SUBS));
	(void)shmkit_topic_lost(s);
}

static void ft_publisher(int k, unsigned ops)
{
	static unsigned char buf[FT_MAX];
	shmkit_topic *p;
	int r = shmkit_topic_open(ft_name[k], SHMKIT_TOPIC_PUBLISHER, 0, 0, 0, &p);
	fuzz_check(r == 0 || r == -EPROTO || r == -EUSERS);
	ft_saw_eproto |= r == -EPROTO;
	if (r < 0)
		return;
	const unsigned char *base = shmkit_seg_data(shmkit_topic_seg(p));
	size_t seg_size = shmkit_seg_size(shmkit_topic_seg(p));
	memset(buf, 0x3c, sizeof buf);
	for (unsigned i = 0; i < 12; i++) {
		size_t len = 1 + (i * 131u + ops) % FT_MAX;
		unsigned op = (i + ops) % 3;
		int64_t to = (ops >> 2) & 1 ? SHMKIT_MSEC : 0;
		if (op == 0) {
			r = shmkit_topic_publish(p, buf, len, to);
		} else if (op == 1) {
			void *b;
			r = shmkit_topic_loan(p, len, to, &b);
			if (r == 0) {
				unsigned char *q = b;
				fuzz_check(q >= base && q + len <= base + seg_size);
				memset(q, (int)i, len);
				fuzz_check(shmkit_topic_commit(p, len) == 0);
			}
		} else {
			struct iovec iov[3] = {{buf, len}, {buf, 1}, {buf, FT_MAX}};
			r = shmkit_topic_publishv(p, iov, 3, to);
			fuzz_check(r < 0 || (r >= 1 && r <= 3));
			if (r > 0)
				r = 0;
		}
		fuzz_check(r == 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO);
		if (r == -EPROTO) {
			ft_saw_eproto = 1;
			fuzz_check(shmkit_topic_publish(p, buf, 1, 0) == -EPROTO);
			break;
		}
		if (r < 0)
			break;
	}
	struct shmkit_topic_stats st;
	r = shmkit_topic_stats(p, &st);
	fuzz_check(r == 0 || r == -EPROTO);
	fuzz_check(shmkit_topic_close(p) == 0);
}

/* Restore topic @k, apply phase-0 patches, run the calls (phase-1 patches once the
 * subscriber opened). */
static void ft_run(int k, unsigned ops, const uint8_t *data, size_t size)
{
	unsigned char *area = shmkit_seg_data(ft_seg[k]);
	memcpy(area, ft_snapshot[k], ft_area[k]);
	fuzz_patch(area, ft_area[k], data, size, 0);
	shmkit_topic *s;
	unsigned flags = (ops >> 5) & 1 ? SHMKIT_TOPIC_OLDEST : 0;
	ft_saw_eproto = 0;
	int r = shmkit_topic_open(ft_name[k], SHMKIT_TOPIC_SUBSCRIBER, 0, 0, flags, &s);
	fuzz_check(r == 0 || r == -EPROTO || r == -EUSERS);
	ft_saw_eproto |= r == -EPROTO;
	if (r == 0) {
		fuzz_patch(area, ft_area[k], data, size, 1);
		if ((ops >> 4) & 1) {
			int fd = shmkit_topic_fd(s);
			fuzz_check(fd >= 0 || fd == -EUSERS || fd == -EPROTO);
		}
		ft_subscriber(s, ops | (unsigned)size << 8);
		if (ops & 0x80)
			ft_publisher(k, ops);
		fuzz_check(shmkit_topic_close(s) == 0);
	} else if (ops & 0x80) {
		ft_publisher(k, ops);
	}
	ft_eproto += (unsigned long)ft_saw_eproto;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ft_state == 0)
		ft_state = ft_setup() == 0 ? 1 : -1;
	if (ft_state < 0 || size == 0)
		return 0;
	unsigned ops = data[0];
	ft_run((ops >> 6) & 1, ops, data, size);
	return 0;
}
