/* Fuzz target: hostile bytes over a blob's control block (its writers' lock too) and
 * slots, then the reader's path (open read-only, read, version) and the writer's (open,
 * write, read back). Every call must return an error or valid data, within its bound:
 * a read gives min(cap, size) bytes of a snapshot that some writer wrote whole, or an
 * error; nothing is written past the buffer it was given. A violation aborts.
 *
 * libFuzzer:  make fuzz  (or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *       -Ibuild/include -Isrc tests/fuzz/fuzz_blob.c src/(all).c -o fuzz_blob)
 * Under gcc, tests/test_fuzz_blob.c replays the corpus in tests/fuzz/corpus/blob and
 * seeded random inputs.
 *
 * Input: byte 0 selects operations; then patches of [u16 offset][u8 n][n bytes],
 * applied to the blob's data area (control block, then the two slots) at offset %
 * area size. Offsets with bit 15 set are applied after the handles opened (a victim
 * that validated the block before it changed), the others before. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "fuzz_common.h"
#include "fuzz_targets.h" /* FB_AREA */

#define FB_SIZE 200u                   /* snapshot bytes */

static char fb_name[64];
static unsigned char fb_snapshot[FB_AREA];
static unsigned char fb_pat[3][FB_SIZE]; /* the snapshots ever written */
static shmkit_seg *fb_seg;              /* a plain view of the segment, to patch it */
static int fb_state;                    /* 0: not set up, 1: ready, -1: setup failed */

static void fb_cleanup(void)
{
	if (fb_seg) {
		shmkit_seg_close(fb_seg);
		fb_seg = NULL;
		shmkit_seg_unlink(fb_name, 0);
	}
}

/* Two writes, so both slots hold a whole snapshot (pattern 0 older, 1 current). */
static int fb_setup(void)
{
	shmkit_blob *b;
	for (unsigned i = 0; i < FB_SIZE; i++)
		for (unsigned k = 0; k < 3; k++)
			fb_pat[k][i] = (unsigned char)(0x31 * (k + 1) + i * (2 * k + 3));
	snprintf(fb_name, sizeof fb_name, "/shmkit-fuzz-blob-%d", (int)getpid());
	shmkit_seg_unlink(fb_name, 0);
	if (shmkit_blob_open(fb_name, FB_SIZE, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &b) < 0)
		return -1;
	int r = shmkit_blob_write(b, fb_pat[0], FB_SIZE);
	if (r == 0)
		r = shmkit_blob_write(b, fb_pat[1], FB_SIZE);
	shmkit_blob_close(b);
	if (r < 0 || shmkit_seg_open(fb_name, SHMKIT_KIND_BLOB, 0, 0, 0, &fb_seg) < 0 ||
	    shmkit_seg_size(fb_seg) != FB_AREA) {
		fb_cleanup();
		shmkit_seg_unlink(fb_name, 0);
		return -1;
	}
	memcpy(fb_snapshot, shmkit_seg_data(fb_seg), FB_AREA);
	atexit(fb_cleanup);
	return 0;
}

static void fb_patch(const uint8_t *data, size_t size, int phase)
{
	fuzz_patch(shmkit_seg_data(fb_seg), FB_AREA, data, size, phase);
}

#define fb_check(cond) fuzz_check(cond)

static int fb_is_err(long long r)
{
	return r < 0 && r >= -4095;
}

/* @slots_patched: the input wrote into the slots, so their bytes are anyone's. */
static void fb_read(const shmkit_blob *b, int slots_patched)
{
	unsigned char buf[FB_SIZE + 32];
	uint64_t ver;
	memset(buf, 0x5a, sizeof buf);
	/* The size a handle takes at open is the control block's, which a peer may have
	 * rewritten within the slot stride: a read gives min(cap, that size) bytes. */
	size_t want = shmkit_blob_size(b) < FB_SIZE ? shmkit_blob_size(b) : FB_SIZE;
	ssize_t r = shmkit_blob_read(b, buf, FB_SIZE, &ver);
	for (size_t i = want; i < sizeof buf; i++)
		fb_check(buf[i] == 0x5a);
	fb_check(r == (ssize_t)want || fb_is_err(r));
	if (r > 0 && !slots_patched)
		fb_check(!memcmp(buf, fb_pat[0], (size_t)r) || !memcmp(buf, fb_pat[1], (size_t)r) ||
			 !memcmp(buf, fb_pat[2], (size_t)r));
	int64_t v = shmkit_blob_version(b);
	fb_check(v >= 0 || fb_is_err(v));
	/* A short read copies a prefix: never more than asked. */
	memset(buf, 0x5a, sizeof buf);
	r = shmkit_blob_read(b, buf, 7, NULL);
	fb_check(r == (want < 7 ? (ssize_t)want : 7) || fb_is_err(r));
	for (size_t i = 7; i < sizeof buf; i++)
		fb_check(buf[i] == 0x5a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fb_state == 0)
		fb_state = fb_setup() == 0 ? 1 : -1;
	if (fb_state < 0 || size == 0)
		return 0;
	unsigned ops = data[0];
	memcpy(shmkit_seg_data(fb_seg), fb_snapshot, FB_AREA);
	fb_patch(data, size, 0);
	/* Did any patch reach the slots (offsets FB_SLOT_OFF and up)? Then contents are
	 * free. */
	int slots = 0;
	for (size_t i = 1; i + 3 <= size;) {
		unsigned off = ((unsigned)data[i] | (unsigned)data[i + 1] << 8) & 0x7fffu;
		size_t n = data[i + 2];
		i += 3;
		n = n > size - i ? size - i : n;
		if ((off % FB_AREA) + n > FB_SLOT_OFF)
			slots = 1;
		i += n;
	}
	shmkit_blob *ro = NULL, *rw = NULL;
	int r = shmkit_blob_open(fb_name, 0, 0, SHMKIT_SEG_RDONLY, &ro);
	fb_check(r == 0 || r == -EPROTO);
	if (ops & 1) {
		r = shmkit_blob_open(fb_name, 0, 0, 0, &rw);
		fb_check(r == 0 || r == -EPROTO);
	}
	fb_patch(data, size, 1);
	if (ro)
		fb_read(ro, slots);
	if (rw) {
		/* Writes go through the lock: it must be taken, recovered or refused. */
		for (unsigned k = 0; k < 1 + (ops >> 1 & 3); k++) {
			r = shmkit_blob_write(rw, fb_pat[2], (ops & 0x10) ? FB_SIZE : 13);
			fb_check(r == 0 || fb_is_err(r));
			fb_read(rw, 1); /* a 13-byte write mixes patterns legitimately */
		}
	}
	if (ro && (ops & 0x20))
		fb_read(ro, 1);
	shmkit_blob_close(rw);
	shmkit_blob_close(ro);
	return 0;
}
