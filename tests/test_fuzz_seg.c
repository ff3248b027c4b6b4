/* Replays the header fuzz target with seeded random inputs, so every build runs it. */
#include "common.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x5eed;
	int runs = 10000;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	runs = 3000;
#endif
	uint8_t in[96];
	atexit(fuzz_seg_cleanup);
	int corpus = replay_corpus(SHMKIT_FUZZ_CORPUS "/seg", 5);
	CHECK(corpus > 0);
	printf("test_fuzz_seg: %d corpus inputs\n", corpus);
	printf("test_fuzz_seg: seed %#llx, %d inputs\n", (unsigned long long)seed, runs);
	for (int i = 0; i < runs; i++) {
		size_t n = 3 * (1 + t_rand(&seed) % 32);
		for (size_t j = 0; j < n; j++)
			in[j] = (uint8_t)t_rand(&seed);
		/* Half the edits land in the header's first 128 bytes, where the checks are. */
		for (size_t j = 0; j < n; j += 3)
			if (t_rand(&seed) & 1)
				in[j + 1] = 0, in[j] %= 128;
		LLVMFuzzerTestOneInput(in, n);
	}
	printf("test_fuzz_seg: ok\n");
	return T_PASS;
}
