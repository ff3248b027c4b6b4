/* Channels, hostile memory: corrupt rings and control blocks are reported as -EPROTO,
 * never a crash or an access outside the segment; hostile words beside a role; and the
 * fuzz target (tests/fuzz/fuzz_chan.c, linked in) replayed with seeded random inputs. */
#include "chan_common.h"
#include "fuzz/fuzz_targets.h"

static uint64_t *word_at(shmkit_chan *ch, size_t off)
{
	return (uint64_t *)((unsigned char *)shmkit_seg_data(shmkit_chan_seg(ch)) + off);
}

/* Corrupt rings: every damage is reported as -EPROTO, never a crash or an access out
 * of the segment (AddressSanitizer builds check the latter). */
static void test_corruption(void)
{
	const char *name = track("corrupt", 0);
	unsigned char buf[4096];
	const void *pb;
	size_t pl;
	for (int kind = 0; kind < 13; kind++) {
		shmkit_seg_unlink(name, 0);
		shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
		shmkit_chan *o = t_chan_open_ok(name, O, 0, 0);
		memset(buf, 1, sizeof buf);
		for (int i = 0; i < 5; i++)
			CHECK_OK(shmkit_chan_send(p, buf, 100, 0));
		unsigned char *ring = (unsigned char *)shmkit_seg_data(shmkit_chan_seg(o)) + FZ_RING_OFF;
		uint64_t *hdr0 = (uint64_t *)ring; /* first record, position 0 */
		uint64_t h = __atomic_load_n(hdr0, __ATOMIC_RELAXED);
		int at_open = 0, producer_side = 0;
		switch (kind) {
		case 0: /* length beyond max_msg, tag intact */
			__atomic_store_n(hdr0, (h & ~UINT64_C(0xffffffff)) | 3000u, __ATOMIC_RELAXED);
			break;
		case 1: /* length 0 */
			__atomic_store_n(hdr0, h & ~UINT64_C(0xffffffff), __ATOMIC_RELAXED);
			break;
		case 2: /* a stale tag where the tail says a record is committed */
			__atomic_store_n(hdr0, h ^ (UINT64_C(1) << 40), __ATOMIC_RELAXED);
			break;
		case 3: /* a pad neither to the lap's end nor short enough to align */
			__atomic_store_n(hdr0, (h & ~UINT64_C(0xffffffff)) | 0x80000000u | 304u,
					 __ATOMIC_RELAXED);
			break;
		case 12: /* an alignment pad's size, landing inside the record it replaced */
			__atomic_store_n(hdr0, (h & ~UINT64_C(0xffffffff)) | 0x80000000u | 64u,
					 __ATOMIC_RELAXED);
			break;
		case 4: /* a tail far ahead, seen at open */
			__atomic_store_n(word_at(o, FZ_OFF_TAIL), UINT64_C(1) << 40, __ATOMIC_RELAXED);
			at_open = 1;
			break;
		case 5: /* a misaligned head, seen at open */
			__atomic_store_n(word_at(o, FZ_OFF_HEAD), 3, __ATOMIC_RELAXED);
			at_open = 1;
			break;
		case 6: /* capacity not a power of two */
			*word_at(o, 8) = 4095;
			at_open = 1;
			break;
		case 7: /* capacity that does not match the segment */
			*word_at(o, 8) = 8192;
			at_open = 1;
			break;
		case 8: /* magic */
			*word_at(o, 0) ^= 1;
			at_open = 1;
			break;
		case 9: /* ring offset */
			*word_at(o, 24) = 64;
			at_open = 1;
			break;
		case 10: /* head ahead of the tail, seen by the producer */
			__atomic_store_n(word_at(o, FZ_OFF_HEAD), UINT64_C(1) << 20, __ATOMIC_RELAXED);
			producer_side = 1;
			break;
		case 11: /* a head a lap away, seen at open */
			__atomic_store_n(word_at(o, FZ_OFF_HEAD), 4096 * 3, __ATOMIC_RELAXED);
			at_open = 1;
			break;
		}
		if (producer_side) {
			int r;
			while ((r = shmkit_chan_send(p, buf, 100, 0)) == 0)
				;
			CHECK_EQ(r, -EPROTO);
			CHECK_EQ(shmkit_chan_send(p, buf, 1, 0), -EPROTO); /* poisoned */
		} else if (at_open) {
			shmkit_chan *c = (shmkit_chan *)1;
			CHECK_EQ(shmkit_chan_open(name, C, 0, 0, 0, &c), -EPROTO);
			CHECK(c == NULL);
		} else {
			shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
			ssize_t r = kind % 2 ? shmkit_chan_peek(c, &pb, &pl, 0)
					     : shmkit_chan_recv(c, buf, sizeof buf, 0);
			if (r != -EPROTO) {
				fprintf(stderr, "corruption %d: got %zd\n", kind, r);
				exit(T_FAIL);
			}
			CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, -1), -EPROTO);
			shmkit_chan_close(c);
		}
		shmkit_chan_close(o);
		shmkit_chan_close(p);
	}
	/* A corrupt header seen by a consumer that sleeps: reported, not slept on. */
	shmkit_seg_unlink(name, 0);
	shmkit_chan *p = t_chan_open_ok(name, P, 4096, C_CREATE);
	shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
	CHECK_OK(shmkit_chan_send(p, buf, 10, 0));
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 0), 10);
	__atomic_store_n(word_at(c, FZ_OFF_TAIL), 16 + 64, __ATOMIC_RELAXED);
	CHECK_EQ(shmkit_chan_recv(c, buf, sizeof buf, 100 * SHMKIT_MSEC), -EPROTO);
	shmkit_chan_close(c);
	shmkit_chan_close(p);

	/* Random garbage over the control lines and the ring: any documented result. */
	uint64_t rng = 2024;
	for (int round = 0; round < (SANITIZED ? 300 : 2000); round++) {
		shmkit_seg_unlink(name, 0);
		p = t_chan_open_ok(name, P, 4096, C_CREATE);
		c = t_chan_open_ok(name, C, 0, 0);
		for (int i = 0; i < 30; i++) {
			size_t len = 1 + t_rand(&rng) % 300;
			int r;
			while ((r = shmkit_chan_send(p, buf, len, 0)) == -EAGAIN)
				CHECK(shmkit_chan_recv(c, buf, sizeof buf, 0) > 0);
			CHECK_OK(r);
			if (i % 2)
				CHECK(shmkit_chan_recv(c, buf, sizeof buf, 0) > 0);
		}
		unsigned char *area = shmkit_seg_data(shmkit_chan_seg(c));
		int n = 1 + (int)(t_rand(&rng) % 8);
		for (int i = 0; i < n; i++) {
			uint64_t x = t_rand(&rng), v = t_rand(&rng);
			size_t off = x % 3 ? FZ_RING_OFF + (x >> 8) % 4096 / 8 * 8 : 192 + (x >> 8) % 320 / 8 * 8;
			if (x % 5 == 0) /* a well-tagged header with a random length */
				v = (UINT64_C(0x80000000) | (uint32_t)((off - FZ_RING_OFF) >> 3)) << 32 |
				    (uint32_t)v;
			if (x % 7 == 0 && off >= 64 * 4 && off < 64 * 8)
				continue; /* keep the wait-state words sane half the time */
			__atomic_store_n((uint64_t *)(area + off), v, __ATOMIC_RELAXED);
		}
		for (int k = 0; k < 40; k++) {
			ssize_t r = k % 2 ? shmkit_chan_recv(c, buf, sizeof buf, 0)
					  : shmkit_chan_peek(c, &pb, &pl, 0);
			if (k % 2 == 0 && r > 0) {
				CHECK((const unsigned char *)pb > area + FZ_RING_OFF &&
				      (const unsigned char *)pb + pl <= area + FZ_RING_OFF + 4096);
				CHECK_OK(shmkit_chan_release(c));
			}
			CHECK((r > 0 && r <= 2048) || r == -EAGAIN || r == -EPROTO || r == 0 || r == -EPIPE);
			if (r <= 0)
				break;
		}
		int r = shmkit_chan_send(p, buf, 1 + t_rand(&rng) % 2048, 0);
		CHECK(r == 0 || r == -EAGAIN || r == -EPROTO || r == -EPIPE);
		shmkit_chan_close(c);
		shmkit_chan_close(p);
		/* Reopening validates whatever was left. */
		r = shmkit_chan_open(name, C, 0, 0, 0, &c);
		CHECK(r == 0 || r == -EPROTO);
		if (r == 0)
			shmkit_chan_close(c);
	}
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* Hostile words beside the producer's role word: whatever pid and pid namespace a
 * peer writes there, a producer whose token is dead is reported dead in poll mode, and
 * no pidfd is kept or leaked. */
static void test_hostile_who(void)
{
	const char *name = track("who", 0);
	shmkit_chan *o = t_chan_open_ok(name, O, 4096, C_CREATE);
	struct stat st;
	CHECK(stat("/proc/self/ns/pid", &st) == 0);
	/* Live processes of our namespace (pidfd_open succeeds), no process, and nonsense. */
	const struct {
		int32_t pid;
		int our_ns;
	} cases[] = {{1, 1}, {getpid(), 1}, {0, 1}, {-1, 1}, {INT32_MAX, 1}, {1, 0}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t garbage = UINT64_C(0x5eed000000000000) | i; /* names no token */
		*word_at(o, FZ_OFF_P_OWNER) = garbage;
		*word_at(o, FZ_OFF_P_WHO) = garbage; /* tok: "these fields are the holder's" */
		*word_at(o, FZ_OFF_P_WHO + 8) = cases[i].our_ns ? (uint64_t)st.st_ino : 12345; /* ns */
		memcpy(word_at(o, FZ_OFF_P_WHO + 16), &cases[i].pid, sizeof cases[i].pid);
		int fds0 = t_count_fds();
		shmkit_chan *c = t_chan_open_ok(name, C, 0, 0);
		CHECK(shmkit_chan_fd(c) >= 0);
		CHECK_EQ(t_count_pidfds(), 0);
		CHECK(poll_in(shmkit_chan_fd(c), 1000)); /* dead at once: readable */
		char b[8];
		CHECK_EQ(shmkit_chan_recv(c, b, sizeof b, 0), -EPIPE);
		CHECK_EQ(t_count_pidfds(), 0);
		shmkit_chan_close(c);
		CHECK_EQ(t_count_fds(), fds0);
	}
	shmkit_chan_close(o);
	CHECK_OK(shmkit_seg_unlink(name, 0));
}

/* The fuzz target, replayed with seeded random inputs: patches aimed at the control
 * lines and at record headers, with well-formed tags half the time. */
static void test_fuzz_replay(int n)
{
	uint64_t rng = 0xf00d;
	uint8_t in[512];
	for (int i = 0; i < n; i++) {
		size_t len = 1;
		in[0] = (uint8_t)t_rand(&rng);
		int patches = 1 + (int)(t_rand(&rng) % 6);
		for (int k = 0; k < patches && len + 3 + 16 <= sizeof in; k++) {
			uint64_t x = t_rand(&rng);
			unsigned off;
			if (x % 4 == 0)
				off = (unsigned)((x >> 8) % FZ_AREA);
			else if (x % 4 == 1)
				off = 64 + (unsigned)((x >> 8) % 448) / 8 * 8;
			else
				off = FZ_RING_OFF + (unsigned)((x >> 8) % FZ_CAP) / 8 * 8;
			if (x & (1u << 30))
				off |= 0x8000u;
			size_t m = x & (1u << 31) ? 8 : 1 + (size_t)((x >> 40) % 16);
			in[len] = (uint8_t)off;
			in[len + 1] = (uint8_t)(off >> 8);
			in[len + 2] = (uint8_t)m;
			uint64_t v = t_rand(&rng);
			if (m == 8 && (off & 0x7fffu) >= FZ_RING_OFF && (x >> 33) % 2) {
				/* A header with the right tag for some position near the snapshot's. */
				uint64_t tail = 0;
				memcpy(&tail, fz_snapshot + FZ_OFF_TAIL, 8);
				uint64_t pos = (tail & ~(uint64_t)(FZ_CAP - 1)) + ((off & 0x7fffu) - FZ_RING_OFF);
				if ((x >> 34) % 2)
					pos -= FZ_CAP;
				uint32_t l = (x >> 35) % 3 == 0 ? (uint32_t)v : (uint32_t)(v % 2100);
				v = (uint64_t)(0x80000000u | (uint32_t)(pos >> 3)) << 32 | l;
			}
			for (size_t b = 0; b < m; b++)
				in[len + 3 + b] = (uint8_t)(v >> (8 * (b % 8)));
			len += 3 + m;
		}
		LLVMFuzzerTestOneInput(in, len);
		if (fz_state < 0) {
			fprintf(stderr, "fuzz setup failed\n");
			exit(T_FAIL);
		}
	}
	fz_cleanup();
}

int main(void)
{
	chan_test_init();
	test_corruption();
	test_fuzz_replay(SANITIZED ? 1000 : 5000);
	test_hostile_who();
	return T_PASS;
}
