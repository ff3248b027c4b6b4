/* The struct write_struct and read_struct share (seed 001). */
#ifndef EXAMPLE_RECORD_H
#define EXAMPLE_RECORD_H

#include <stdio.h>

struct record {
	int id;
	double value;
	char text[64];
};

static inline void record_print(const struct record *r)
{
	printf("id=%d value=%.2f text=%s\n", r->id, r->value, r->text);
}

#endif
