/* Fuzz target: segment header validation (and the blob control block above it).
 *
 * Input bytes are laid over a valid blob segment's first page as (offset, value)
 * edits, so mutations reach the deep checks instead of dying at the magic. Opening
 * must then either fail cleanly or give a handle whose whole data area is readable
 * and whose blob reads stay in bounds. Build with clang -fsanitize=fuzzer for
 * libFuzzer; tests/test_fuzz_seg.c replays random inputs under gcc. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "fuzz_targets.h"
#include "internal.h"

/* Where the data area's checksum goes, so that its reads are not optimized away. */
static volatile unsigned char fuzz_seg_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char name[64];
	static unsigned char snapshot[SHMKIT_DATA_OFF + 512];
	static shmkit_seg *raw;
	static size_t total;
	if (!raw) {
		snprintf(name, sizeof name, "/shmkit-fuzz-%d", (int)getpid());
		/* Made by a child that exits: a header edited back to "initializing" then
		 * names a dead creator, and opens give up at once instead of waiting 2 s. */
		pid_t pid = fork();
		if (pid == 0) {
			shmkit_blob *b;
			int r = shmkit_blob_open(name, 200, 0, SHMKIT_SEG_CREATE, &b);
			shmkit_blob_close(b);
			_exit(r < 0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			return 0;
		if (shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_RAW, &raw) < 0)
			return 0;
		total = shmkit_seg_size(raw);
		memcpy(snapshot, shmkit_seg_data(raw), sizeof snapshot < total ? sizeof snapshot : total);
	}
	unsigned char *mem = shmkit_seg_data(raw);
	size_t span = sizeof snapshot < total ? sizeof snapshot : total;
	memcpy(mem, snapshot, span);
	/* Each 3 input bytes: a 16-bit offset into the header page and control block,
	 * and a byte to store there. */
	for (size_t i = 0; i + 2 < size; i += 3) {
		size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8) % span;
		mem[off] = data[i + 2];
	}
	shmkit_seg *s;
	if (shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &s) == 0) {
		/* Every byte of the size the open reported must be mapped: read them all,
		 * and store the sum where the compiler must assume it is read. */
		unsigned char sum = 0;
		const unsigned char *d = shmkit_seg_data(s);
		for (size_t i = 0; i < shmkit_seg_size(s); i++)
			sum += d[i];
		fuzz_seg_sink = sum;
		shmkit_seg_close(s);
	}
	shmkit_blob *b;
	if (shmkit_blob_open(name, 0, 0, SHMKIT_SEG_RDONLY, &b) == 0) {
		unsigned char buf[512];
		shmkit_blob_read(b, buf, sizeof buf, NULL);
		shmkit_blob_close(b);
	}
	return 0;
}

/* Removes the fuzz segment; the replay calls it at exit. */
void fuzz_seg_cleanup(void)
{
	char n[64];
	snprintf(n, sizeof n, "/shmkit-fuzz-%d", (int)getpid());
	shmkit_seg_unlink(n, SHMKIT_SEG_RAW);
}
