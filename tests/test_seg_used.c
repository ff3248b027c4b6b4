/* A data segment's used length (shmkit_seg_used(), shmkit_seg_set_used()): the whole
 * area until one is recorded; recorded by one process, seen by another; 0 is a length,
 * not "never"; refused where it cannot be kept (raw segments, other kinds, read-only
 * handles, deleted segments, beyond the area); a hostile header word is clamped to the
 * area, never trusted. */
#include "common.h"
#include "internal.h"

static void test_used(unsigned sysv)
{
	const char *name = t_name(sysv ? "used-sysv" : "used");
	unsigned f = sysv ? SHMKIT_SEG_SYSV : 0;
	shmkit_seg *s, *o, *ro;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | f, &s));
	CHECK_EQ(shmkit_seg_used(s), 4096); /* never recorded: all of it */
	memcpy(shmkit_seg_data(s), "hello", 5);
	CHECK_OK(shmkit_seg_set_used(s, 5));
	CHECK_EQ(shmkit_seg_used(s), 5);
	/* Another handle (and process) sees it. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, f, &o));
	CHECK_EQ(shmkit_seg_used(o), 5);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		shmkit_seg *c;
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, f, &c));
		CHECK_EQ(shmkit_seg_used(c), 5);
		CHECK(memcmp(shmkit_seg_data(c), "hello", 5) == 0);
		CHECK_OK(shmkit_seg_set_used(c, 0));
		shmkit_seg_close(c);
		_exit(T_PASS);
	}
	CHECK_EQ(t_wait(pid), 0);
	CHECK_EQ(shmkit_seg_used(s), 0); /* 0 bytes, not "never" */
	CHECK_OK(shmkit_seg_set_used(s, 4096));
	CHECK_EQ(shmkit_seg_used(s), 4096);
	/* Refusals. */
	CHECK_EQ(shmkit_seg_set_used(s, 4097), -EINVAL);
	CHECK_EQ(shmkit_seg_set_used(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_seg_used(NULL), 0);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, SHMKIT_SEG_RDONLY | f, &ro));
	CHECK_EQ(shmkit_seg_set_used(ro, 1), -EACCES);
	CHECK_EQ(shmkit_seg_used(ro), 4096);
	/* Hostile words: too large is the whole area; without the "recorded" bit, never. */
	struct shmkit__hdr *h = shmkit__seg_hdr(s);
	atomic_store(&h->used, SHMKIT__USED_SET | (UINT64_C(1) << 40));
	CHECK_EQ(shmkit_seg_used(o), 4096);
	atomic_store(&h->used, UINT64_MAX);
	CHECK_EQ(shmkit_seg_used(o), 4096);
	atomic_store(&h->used, 17); /* no SET bit */
	CHECK_EQ(shmkit_seg_used(o), 4096);
	atomic_store(&h->used, SHMKIT__USED_SET | 17);
	CHECK_EQ(shmkit_seg_used(ro), 17);
	/* Deleted: nothing more is recorded. */
	CHECK_OK(shmkit_seg_delete(s));
	CHECK_EQ(shmkit_seg_set_used(o, 3), -EIDRM);
	shmkit_seg_close(ro);
	shmkit_seg_close(o);
	shmkit_seg_close(s);
}

/* Kinds with their own structure, and raw segments, keep no used length. */
static void test_other_kinds(void)
{
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(t_name("blobkind"), SHMKIT_KIND_BLOB, 8192, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &s));
	CHECK_EQ(shmkit_seg_set_used(s, 1), -EINVAL);
	CHECK_EQ(shmkit_seg_used(s), 8192);
	shmkit_seg_close(s);
	CHECK_OK(shmkit_seg_open(t_name("raw"), SHMKIT_KIND_DATA, 4096, 0600,
				 SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_SEG_RAW, &s));
	CHECK_EQ(shmkit_seg_set_used(s, 1), -EINVAL);
	CHECK_EQ(shmkit_seg_used(s), 4096);
	shmkit_seg_close(s);
}

int main(void)
{
	T_RUN(test_used(0));
	T_RUN(test_used(SHMKIT_SEG_SYSV));
	T_RUN(test_other_kinds());
	return T_PASS;
}
