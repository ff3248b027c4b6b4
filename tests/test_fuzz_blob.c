/* Replays the blob fuzz target: its seed corpus, then seeded random inputs. */
#include "common.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

/* Well-formed patches, half of them on the control block, where the checks are. */
static void shape(uint8_t *in, size_t n, uint64_t *s)
{
	size_t i = 1;
	while (i + 3 <= n) {
		uint64_t r = replay_rand(s);
		unsigned off = (unsigned)(r % FB_AREA);
		if (r >> 20 & 1)
			off %= 128;
		if (r >> 21 & 1)
			off |= 0x8000u; /* after the handles opened */
		in[i] = (uint8_t)off;
		in[i + 1] = (uint8_t)(off >> 8);
		in[i + 2] = (uint8_t)(1 + (r >> 24) % 8);
		i += 3 + in[i + 2];
	}
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0xb10b;
	int runs = SANITIZED ? 1000 : 4000;
	int n = replay_corpus(SHMKIT_FUZZ_CORPUS "/blob", 5);
	CHECK(n > 0);
	printf("test_fuzz_blob: %d corpus inputs; seed %#llx, %d random inputs\n", n,
	       (unsigned long long)seed, runs);
	fflush(stdout);
	replay_random(seed, runs, 1, 96, 5, shape);
	printf("test_fuzz_blob: ok\n");
	return T_PASS;
}
