/* What the fuzz targets share: the check that names a broken promise, and how an input
 * overwrites a segment's bytes. Included by each target (libFuzzer and gcc replays). */
#ifndef SHMKIT_FUZZ_COMMON_H
#define SHMKIT_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A violated promise: say which, then abort (libFuzzer keeps the input). */
#define fuzz_check(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);           \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Apply an input's patches to area (area_size bytes). After its first byte an input is
 * records: a 16-bit little-endian word (bit 15: the phase the patch belongs to, the
 * rest an offset taken modulo area_size), a length byte, and that many bytes, written
 * at the offset (clipped to the area). Only the records of this phase are applied. */
static inline void fuzz_patch(unsigned char *area, size_t area_size, const uint8_t *data,
			      size_t size, int phase)
{
	size_t i = 1;
	while (i + 3 <= size) {
		unsigned off = (unsigned)data[i] | (unsigned)data[i + 1] << 8;
		size_t n = data[i + 2];
		i += 3;
		if (n > size - i)
			n = size - i;
		if ((int)(off >> 15) == phase) {
			size_t at = (off & 0x7fffu) % area_size;
			size_t m = n < area_size - at ? n : area_size - at;
			memcpy(area + at, data + i, m);
		}
		i += n;
	}
}

#endif
