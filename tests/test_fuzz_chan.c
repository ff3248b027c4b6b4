/* Replays the channel fuzz target's seed corpus (tests/test_chan_corrupt.c replays seeded
 * random inputs). */
#include "common.h"
#include "fuzz/fuzz_targets.h"
#include "fuzz/replay.h"

int main(void)
{
	int n = replay_corpus(SHMKIT_FUZZ_CORPUS "/chan", 5);
	CHECK(n > 0);
	printf("test_fuzz_chan: %d corpus inputs: ok\n", n);
	return T_PASS;
}
