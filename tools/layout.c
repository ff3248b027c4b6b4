/* shmkit(1) — what the tool says when a segment is refused with -EPROTO because it was
 * made by a shmkit of another segment layout (shmkit(7), COMPATIBILITY): both layouts,
 * the segment's and this library's, instead of "Protocol error". */
#define _POSIX_C_SOURCE 200809L /* NAME_MAX in <limits.h>, which cmd.h uses */
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include "cmd.h"
#include <shmkit/shmkit.h>

static const char *kind_word(unsigned kind)
{
	switch (kind) {
	case SHMKIT_KIND_BLOB:
		return "blob";
	case SHMKIT_KIND_CHAN:
		return "channel";
	case SHMKIT_KIND_TOPIC:
		return "topic";
	default:
		return "segment";
	}
}

const char *shmkit__strerror_at(int err, const char *name, unsigned flags, char *buf,
				size_t len)
{
	struct shmkit_seg_info in;
	if (err != -EPROTO || shmkit_seg_inspect(name, flags & SHMKIT_SEG_SYSV, &in) < 0)
		return shmkit_strerror(err);
	/* The header's word first: a header of another layout tells nothing else. */
	uint32_t ours = shmkit_seg_layout(SHMKIT_KIND_ANY);
	if (in.layout && in.layout != ours) {
		snprintf(buf, len, "segment header layout 0x%08x, this library reads layout 0x%08x",
			 (unsigned)in.layout, (unsigned)ours);
		return buf;
	}
	/* A kind's word is only meaningful once its creator finished writing it. */
	ours = shmkit_seg_layout(in.kind);
	if (in.state == SHMKIT_STATE_READY && ours && in.kind_layout != ours) {
		snprintf(buf, len, "%s layout %u, this library reads layout %u", kind_word(in.kind),
			 (unsigned)in.kind_layout, (unsigned)ours);
		return buf;
	}
	return shmkit_strerror(err);
}
