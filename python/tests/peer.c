/* The C side of the Python package's tests: a process that uses the library directly,
 * so that what Python sends is checked by C and the other way round.
 *
 *   peer chan-send NAME COUNT SEED   producer of an existing channel: COUNT messages,
 *                                    then close (end-of-stream)
 *   peer chan-recv NAME COUNT        consumer of an existing channel: COUNT messages,
 *                                    each checked, then end-of-stream
 *   peer chan-die NAME COUNT         producer: COUNT messages, then SIGKILL itself
 *   peer topic-pub NAME COUNT SEED   publisher of an existing topic: COUNT messages
 *   peer topic-sub NAME COUNT        subscriber: says "ready" on stdout once subscribed,
 *                                    then checks COUNT messages and end-of-stream
 *   peer seg-sum NAME                prints the data area's size and CRC-32
 *   peer seg-fill NAME SEED          fills the data area (byte i = i * 31 + SEED)
 *   peer blob-read NAME              prints the blob's version and its text
 *
 * A message is: u32 sequence number, u32 length, u32 CRC-32 (zlib's) of the bytes
 * after these 12, then pseudo-random bytes; its length runs from 12 to 3000 bytes.
 * Exit 0 when everything checked out, 1 with a line on stderr otherwise. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmkit/shmkit.h>

#define WAIT (20 * SHMKIT_SEC) /* any single wait: far beyond what a test needs */
#define MAXLEN 3000

static uint32_t crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return c ^ 0xffffffffu;
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: enough to vary lengths and bytes. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Message number seq into buf; returns its length. */
static size_t make_msg(unsigned char *buf, uint32_t seq, uint64_t *rng)
{
	size_t len = 12 + (size_t)(rng_next(rng) % (MAXLEN - 12 + 1));
	for (size_t i = 12; i < len; i++)
		buf[i] = (unsigned char)rng_next(rng);
	put32(buf, seq);
	put32(buf + 4, (uint32_t)len);
	put32(buf + 8, crc32(buf + 12, len - 12));
	return len;
}

static int check_msg(const unsigned char *buf, ssize_t len, uint32_t seq)
{
	if (len < 12 || (size_t)len > MAXLEN) {
		fprintf(stderr, "peer: message %u has length %zd\n", seq, len);
		return -1;
	}
	if (get32(buf) != seq || get32(buf + 4) != (uint32_t)len ||
	    get32(buf + 8) != crc32(buf + 12, (size_t)len - 12)) {
		fprintf(stderr, "peer: message %u: got seq %u, len %u/%zd, bad checksum or order\n",
			seq, get32(buf), get32(buf + 4), len);
		return -1;
	}
	return 0;
}

static int fail(const char *what, long r)
{
	fprintf(stderr, "peer: %s: %s\n", what, shmkit_strerror((int)r));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: peer MODE NAME [COUNT [SEED]]\n");
		return 2;
	}
	const char *mode = argv[1], *name = argv[2];
	unsigned long count = argc > 3 ? strtoul(argv[3], NULL, 0) : 0;
	uint64_t rng = (argc > 4 ? strtoull(argv[4], NULL, 0) : 1) | 1;
	unsigned char buf[MAXLEN];
	long r;

	if (!strcmp(mode, "chan-send") || !strcmp(mode, "chan-die")) {
		shmkit_chan *ch;
		if ((r = shmkit_chan_open(name, SHMKIT_CHAN_PRODUCER, 0, 0, 0, &ch)) < 0)
			return fail("open", r);
		for (uint32_t i = 0; i < count; i++) {
			size_t len = make_msg(buf, i, &rng);
			if ((r = shmkit_chan_send(ch, buf, len, WAIT)) < 0)
				return fail("send", r);
		}
		if (!strcmp(mode, "chan-die"))
			raise(SIGKILL);
		shmkit_chan_close(ch);
		return 0;
	}
	if (!strcmp(mode, "chan-recv")) {
		shmkit_chan *ch;
		if ((r = shmkit_chan_open(name, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &ch)) < 0)
			return fail("open", r);
		for (uint32_t i = 0; i < count; i++) {
			if ((r = shmkit_chan_recv(ch, buf, sizeof buf, WAIT)) <= 0)
				return fail("recv", r ? r : -EPIPE);
			if (check_msg(buf, r, i) < 0)
				return 1;
		}
		if ((r = shmkit_chan_recv(ch, buf, sizeof buf, WAIT)) != 0)
			return fail("recv (end-of-stream expected)", r > 0 ? -EPROTO : r);
		shmkit_chan_close(ch);
		printf("peer: ok %lu\n", count);
		return 0;
	}
	if (!strcmp(mode, "topic-pub")) {
		shmkit_topic *t;
		if ((r = shmkit_topic_open(name, SHMKIT_TOPIC_PUBLISHER, 0, 0, 0, &t)) < 0)
			return fail("open", r);
		for (uint32_t i = 0; i < count; i++) {
			size_t len = make_msg(buf, i, &rng);
			if ((r = shmkit_topic_publish(t, buf, len, WAIT)) < 0)
				return fail("publish", r);
		}
		shmkit_topic_close(t);
		return 0;
	}
	if (!strcmp(mode, "topic-sub")) {
		shmkit_topic *t;
		if ((r = shmkit_topic_open(name, SHMKIT_TOPIC_SUBSCRIBER, 0, 0, 0, &t)) < 0)
			return fail("open", r);
		printf("ready\n");
		fflush(stdout);
		for (uint32_t i = 0; i < count; i++) {
			if ((r = shmkit_topic_receive(t, buf, sizeof buf, WAIT)) <= 0)
				return fail("receive", r ? r : -EPIPE);
			if (check_msg(buf, r, i) < 0)
				return 1;
		}
		if ((r = shmkit_topic_receive(t, buf, sizeof buf, WAIT)) != 0)
			return fail("receive (end-of-stream expected)", r > 0 ? -EPROTO : r);
		shmkit_topic_close(t);
		printf("peer: ok %lu\n", count);
		return 0;
	}
	if (!strcmp(mode, "seg-sum") || !strcmp(mode, "seg-fill")) {
		shmkit_seg *s;
		if ((r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &s)) < 0)
			return fail("open", r);
		unsigned char *d = shmkit_seg_data(s);
		size_t n = shmkit_seg_size(s);
		if (!strcmp(mode, "seg-fill"))
			for (size_t i = 0; i < n; i++)
				d[i] = (unsigned char)(i * 31 + count); /* COUNT is the SEED here */
		printf("%zu %u\n", n, crc32(d, n));
		shmkit_seg_close(s);
		return 0;
	}
	if (!strcmp(mode, "blob-read")) {
		shmkit_blob *b;
		uint64_t v;
		char text[4097];
		if ((r = shmkit_blob_open(name, 0, 0, SHMKIT_SEG_RDONLY, &b)) < 0)
			return fail("open", r);
		ssize_t n = shmkit_blob_read(b, text, sizeof text - 1, &v);
		if (n < 0)
			return fail("read", n);
		text[n] = '\0';
		printf("%llu %s\n", (unsigned long long)v, text);
		shmkit_blob_close(b);
		return 0;
	}
	fprintf(stderr, "peer: unknown mode %s\n", mode);
	return 2;
}
