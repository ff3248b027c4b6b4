/* Fuzz target: a shmkit_mutex whose 64 bytes come from the fuzzer, then a sequence of
 * lock (timeout 0 or 1 ms), unlock and consistent calls. Each call must return 0 or
 * an -errno within its bound, and never touch memory outside the 64 bytes: the mutex
 * sits against a PROT_NONE guard page (before it or after it, by input), so a stray
 * access faults. A peer that can write the segment can write these bytes, so no value
 * may crash, hang or steer the caller.
 *
 * libFuzzer:  make fuzz. Under gcc, tests/test_fuzz_lock.c replays the corpus in
 * tests/fuzz/corpus/lock and seeded random inputs.
 *
 * Input: byte 0: bit 0 starts from an initialized mutex and XORs the next 64 bytes
 * into it (mutations then stay near real states), else the 64 bytes are the mutex;
 * bit 1 puts the guard page before the mutex instead of after it; bit 2 locks it
 * before the bytes are applied (a holder whose lock a peer rewrites). Bytes 1..64:
 * the bytes. Then one byte per call: low 2 bits 0 lock(0), 1 lock(1 ms), 2 unlock,
 * 3 consistent. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "fuzz_common.h"
#include "fuzz_targets.h"

static unsigned char *fl_pages; /* guard, page, guard */
static long fl_page;

#define fl_check(cond) fuzz_check(cond)

static int fl_setup(void)
{
	fl_page = sysconf(_SC_PAGESIZE);
	fl_pages = mmap(NULL, (size_t)fl_page * 3, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fl_pages == MAP_FAILED)
		return -1;
	return mprotect(fl_pages + fl_page, (size_t)fl_page, PROT_READ | PROT_WRITE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int state;
	if (state == 0)
		state = fl_setup() == 0 ? 1 : -1;
	if (state < 0 || size == 0)
		return 0;
	unsigned flags = data[0];
	/* Against the guard page after it, or the one before it. */
	shmkit_mutex *m = (shmkit_mutex *)(void *)(fl_pages + fl_page +
						   ((flags & 2) ? 0 : (size_t)fl_page - sizeof *m));
	unsigned char bytes[sizeof *m] = {0};
	size_t n = size - 1 < sizeof bytes ? size - 1 : sizeof bytes;
	memcpy(bytes, data + 1, n);
	int held = 0;
	if (flags & 1) {
		fl_check(shmkit_mutex_init(m) == 0);
		if (flags & 4)
			held = shmkit_mutex_lock(m, 0) == 0;
		unsigned char *p = (unsigned char *)m;
		for (size_t i = 0; i < sizeof bytes; i++)
			p[i] ^= bytes[i];
	} else {
		memcpy(m, bytes, sizeof bytes);
	}
	for (size_t i = 1 + sizeof bytes; i < size && i < 1 + sizeof bytes + 16; i++) {
		int r;
		switch (data[i] & 3) {
		case 0:
		case 1:
			r = shmkit_mutex_lock(m, (data[i] & 3) ? SHMKIT_MSEC : 0);
			fl_check(r == 0 || (r < 0 && r >= -4095));
			held |= r == 0 || r == -EOWNERDEAD;
			break;
		case 2:
			r = shmkit_mutex_unlock(m);
			fl_check(r == 0 || (r < 0 && r >= -4095));
			held &= r != 0;
			break;
		default:
			r = shmkit_mutex_consistent(m);
			fl_check(r == 0 || (r < 0 && r >= -4095));
			break;
		}
	}
	/* Leave nothing held for the next input, which rewrites these bytes. */
	if (held)
		shmkit_mutex_unlock(m);
	return 0;
}
