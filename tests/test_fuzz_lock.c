/* Replays the lock fuzz target: its seed corpus, then seeded random inputs. */
#include "common.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

/* Mostly near real states: XOR into an initialized mutex, few bits set. */
static void shape(uint8_t *in, size_t n, uint64_t *s)
{
	uint64_t r = replay_rand(s);
	if (r & 3)
		in[0] |= 1;
	for (size_t i = 1; i < n && i <= 64; i++)
		if ((r >> 8 & 7) != 0 && replay_rand(s) % 8 != 0)
			in[i] = 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x10c4;
	int runs = SANITIZED ? 1000 : 4000;
	int n = replay_corpus(SHMKIT_FUZZ_CORPUS "/lock", 5);
	CHECK(n > 0);
	printf("test_fuzz_lock: %d corpus inputs; seed %#llx, %d random inputs\n", n,
	       (unsigned long long)seed, runs);
	fflush(stdout);
	replay_random(seed, runs, 1 + 64 + 1, 1 + 64 + 16, 5, shape);
	printf("test_fuzz_lock: ok\n");
	return T_PASS;
}
