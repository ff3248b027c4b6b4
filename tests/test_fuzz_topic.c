/* Replays the topic fuzz target: its seed corpus (tests/fuzz/corpus/topic), then
 * seeded random inputs shaped towards the control block, the slots and the record
 * headers. tests/test_topic_corrupt.c drives the same harness through every word. */
#include "common.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

/* Patches of 1-8 bytes: half on the control block and slots (the first 1 216 bytes),
 * the rest on the ring (4096..8191 in src/topic.c's layout for these limits), in
 * either phase. */
static void shape(uint8_t *in, size_t n, uint64_t *s)
{
	size_t i = 1;
	while (i + 3 <= n) {
		uint64_t r = replay_rand(s);
		unsigned off = (r >> 20 & 1) ? (unsigned)(r % 1216u) : 4096u + (unsigned)(r % 4096u);
		if (r >> 21 & 1)
			off |= 0x8000u; /* after the subscriber opened */
		in[i] = (uint8_t)off;
		in[i + 1] = (uint8_t)(off >> 8);
		in[i + 2] = (uint8_t)(1 + (r >> 24) % 8);
		i += 3 + in[i + 2];
	}
}

int main(int argc, char **argv)
{
	/* Line-buffered: a forked child must not print again what the parent buffered. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x70b1c;
	int runs = SANITIZED ? 1000 : 4000;
	int n = replay_corpus(SHMKIT_FUZZ_CORPUS "/topic", 5);
	CHECK(n > 0);
	printf("test_fuzz_topic: %d corpus inputs; seed %#llx, %d random inputs\n", n,
	       (unsigned long long)seed, runs);
	fflush(stdout);
	replay_random(seed, runs, 1, 96, 5, shape);
	printf("test_fuzz_topic: %lu of %d runs met -EPROTO; ok\n", ft_eproto, n + runs);
	return T_PASS;
}
