/* Segments: arguments, both backends, exact modes, delete, validation of corrupt and
 * foreign headers, racing creators, abandoned creations, leaks, permissions, ENOSPC. */
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "common.h"
#include "internal.h"

static const unsigned backends[2] = {0, SHMKIT_SEG_SYSV};

static const char *bname(unsigned b, const char *tag)
{
	(void)b; /* one name form serves both backends */
	return t_name(tag);
}

static void test_bad_arguments(void)
{
	shmkit_seg *s = (shmkit_seg *)1;
	char longname[400];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	const unsigned C = SHMKIT_SEG_CREATE;
	const struct {
		const char *name;
		unsigned kind;
		size_t size;
		unsigned mode, flags;
		int err;
	} rows[] = {
		{NULL, SHMKIT_KIND_DATA, 10, 0, C, -EINVAL},
		{"", SHMKIT_KIND_DATA, 10, 0, C, -EINVAL},
		{"/", SHMKIT_KIND_DATA, 10, 0, C, -EINVAL},
		{"/a/b", SHMKIT_KIND_DATA, 10, 0, C, -EINVAL},
		{"/..", SHMKIT_KIND_DATA, 10, 0, C, -EINVAL},
		{longname, SHMKIT_KIND_DATA, 10, 0, C, -ENAMETOOLONG},
		{longname, SHMKIT_KIND_DATA, 10, 0, C | SHMKIT_SEG_SYSV, -ENAMETOOLONG},
		{"", SHMKIT_KIND_DATA, 10, 0, C | SHMKIT_SEG_SYSV, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, 10, 0, 1u << 20, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, 10, 0, SHMKIT_SEG_EXCL, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, 10, 0, C | SHMKIT_SEG_RDONLY, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, 0, 0, C, -EINVAL},
		{"/x", SHMKIT_KIND_ANY, 10, 0, C, -EINVAL},
		{"/x", 99, 10, 0, C, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, 10, 01000, C, -EINVAL},
		{"/x", SHMKIT_KIND_BLOB, 10, 0, C | SHMKIT_SEG_RAW, -EINVAL},
		{"/x", SHMKIT_KIND_DATA, (size_t)1 << 50, 0, C, -EINVAL},
		{"0x1234", SHMKIT_KIND_DATA, 10, 0, C | SHMKIT_SEG_SYSV, -EINVAL},
		{"0x0", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW, -EINVAL},
		{"0x123456789", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW, -EINVAL},
		{"0xZZ", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW, -EINVAL},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		s = (shmkit_seg *)1;
		int r = shmkit_seg_open(rows[i].name, rows[i].kind, rows[i].size, rows[i].mode,
					rows[i].flags, &s);
		if (r != rows[i].err) {
			fprintf(stderr, "row %zu: got %d (%s), want %d\n", i, r, shmkit_strerror(r),
				rows[i].err);
			exit(T_FAIL);
		}
		CHECK(s == NULL);
	}
	CHECK_EQ(shmkit_seg_open("/x", SHMKIT_KIND_DATA, 10, 0, 0, NULL), -EINVAL);
	CHECK_EQ(shmkit_seg_unlink(NULL, 0), -EINVAL);
	CHECK_EQ(shmkit_seg_unlink("/x", SHMKIT_SEG_CREATE), -EINVAL);
	CHECK_EQ(shmkit_seg_delete(NULL), -EINVAL);
	CHECK_EQ(shmkit_seg_check(NULL), -EINVAL);
	CHECK_EQ(shmkit_seg_stat(NULL, NULL), -EINVAL);
	CHECK_EQ(shmkit_seg_close(NULL), 0);
	CHECK(shmkit_seg_data(NULL) == NULL);
	CHECK_EQ(shmkit_seg_size(NULL), 0);
	CHECK(strlen(shmkit_strerror(-EPROTO)) > 0);
	CHECK(strlen(shmkit_strerror(-123456)) > 0);
	CHECK_EQ(shmkit_version(), SHMKIT_VERSION);
}

static void test_basic(unsigned b)
{
	const char *name = bname(b, "basic");
	shmkit_seg *s, *o;
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o), -ENOENT);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 1000, 0640, b | SHMKIT_SEG_CREATE, &s));
	CHECK_EQ(shmkit_seg_created(s), 1);
	CHECK_EQ(shmkit_seg_size(s), 1000);
	unsigned char *d = shmkit_seg_data(s);
	CHECK(((uintptr_t)d & 4095) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(d[i], 0);
	memcpy(d, "hello", 6);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 1000, 0, b | SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &o),
		 -EEXIST);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 999, 0, b, &o), -EINVAL);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_BLOB, 0, 0, b, &o), -EPROTO);

	/* Another process sees the data; create-or-open finds the existing one. */
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_seg *c;
		if (shmkit_seg_open(name, SHMKIT_KIND_DATA, 1000, 0, b | SHMKIT_SEG_CREATE, &c) < 0)
			_exit(2);
		if (shmkit_seg_created(c) || strcmp(shmkit_seg_data(c), "hello"))
			_exit(3);
		memcpy(shmkit_seg_data(c), "world", 6);
		shmkit_seg_close(c);
		_exit(0);
	}
	CHECK_EQ(t_wait(pid), 0);
	CHECK(!strcmp((char *)d, "world"));

	/* Read-only open sees the data. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RDONLY, &o));
	CHECK(!strcmp(shmkit_seg_data(o), "world"));
	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_stat(o, &in));
	CHECK_EQ(in.sysv, b ? 1 : 0);
	CHECK_EQ(in.kind, SHMKIT_KIND_DATA);
	CHECK_EQ(in.state, SHMKIT_STATE_READY);
	CHECK_EQ(in.data_size, 1000);
	CHECK_EQ(in.total_size, 1000 + SHMKIT_DATA_OFF);
	CHECK_EQ(in.creator_pid, getpid());
	CHECK_EQ(in.creator_alive, 1);
	CHECK_EQ(in.mode, 0640);
	CHECK(in.ctime_ns > 0);
	if (b) {
		CHECK(in.shmid >= 0);
		CHECK(in.key != 0);
		CHECK_EQ(shmkit_seg_fd(o), -ENOTSUP);
	} else {
		CHECK(shmkit_seg_fd(o) >= 0);
	}
	CHECK(!strcmp(in.name, name));
	shmkit_seg_close(o);

	/* Delete: other handles see -EIDRM; a new create is fresh and zeroed. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o));
	CHECK_EQ(shmkit_seg_check(o), 0);
	CHECK_OK(shmkit_seg_delete(s));
	CHECK_EQ(shmkit_seg_check(o), -EIDRM);
	CHECK_EQ(shmkit_seg_check(s), -EIDRM);
	shmkit_seg *n;
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &n), -ENOENT);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 1000, 0, b | SHMKIT_SEG_CREATE, &n));
	CHECK_EQ(shmkit_seg_created(n), 1);
	CHECK_EQ(((char *)shmkit_seg_data(n))[0], 0);
	CHECK_EQ(shmkit_seg_check(n), 0);
	/* A stale handle's delete must not remove the new segment. */
	CHECK_OK(shmkit_seg_delete(o));
	shmkit_seg *again;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &again));
	shmkit_seg_close(again);
	CHECK_EQ(shmkit_seg_check(n), 0);
	shmkit_seg_close(o);
	shmkit_seg_close(s);
	CHECK_OK(shmkit_seg_unlink(name, b));
	CHECK_EQ(shmkit_seg_check(n), -EIDRM);
	CHECK_EQ(shmkit_seg_unlink(name, b), -ENOENT);
	shmkit_seg_close(n);
}

static void test_exact_mode(unsigned b)
{
	const char *name = bname(b, "mode");
	mode_t old = umask(077);
	shmkit_seg *s;
	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 10, 0644, b | SHMKIT_SEG_CREATE, &s));
	umask(old);
	CHECK_OK(shmkit_seg_stat(s, &in));
	CHECK_EQ(in.mode, 0644);
	if (!b) {
		struct stat st;
		CHECK(fstat(shmkit_seg_fd(s), &st) == 0);
		CHECK_EQ(st.st_mode & 0777, 0644);
	}
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
	/* Default mode is 0600. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 10, 0, b | SHMKIT_SEG_CREATE, &s));
	CHECK_OK(shmkit_seg_stat(s, &in));
	CHECK_EQ(in.mode, 0600);
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
}

/* Writes a segment's header through a raw mapping, as a hostile process could. */
static void corrupt(unsigned b, const char *name, void (*fn)(struct shmkit__hdr *))
{
	shmkit_seg *raw;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &raw));
	fn(shmkit_seg_data(raw));
	shmkit_seg_close(raw);
}

static void bad_magic(struct shmkit__hdr *h) { h->magic ^= 1; }
static void bad_layout(struct shmkit__hdr *h) { h->layout++; }
static void bad_total(struct shmkit__hdr *h) { h->total_size += 4096; }
static void bad_data_size(struct shmkit__hdr *h) { h->data_size = UINT64_MAX - 10; }
static void bad_data_off(struct shmkit__hdr *h) { h->data_off = h->total_size + 64; }
static void bad_off_align(struct shmkit__hdr *h) { h->data_off = 4097; }
static void bad_kind(struct shmkit__hdr *h) { h->kind = 77; }
static void bad_name(struct shmkit__hdr *h) { memset(h->name, 'x', sizeof h->name); }
static void bad_state(struct shmkit__hdr *h) { atomic_store(&h->state, 9); }
static void other_name(struct shmkit__hdr *h) { h->name[1] ^= 0x20; }

static void test_corrupt(unsigned b)
{
	struct {
		void (*fn)(struct shmkit__hdr *);
		int err;
	} rows[] = {
		{bad_magic, -EPROTO},     {bad_layout, -EPROTO},    {bad_total, -EPROTO},
		{bad_data_size, -EPROTO}, {bad_data_off, -EPROTO},  {bad_off_align, -EPROTO},
		{bad_kind, -EPROTO},      {bad_name, -EPROTO},      {bad_state, -EPROTO},
		{other_name, b ? -EADDRINUSE : -EPROTO},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *name = bname(b, "corrupt");
		shmkit_seg *s, *o;
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &s));
		corrupt(b, name, rows[i].fn);
		int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o);
		if (r != rows[i].err) {
			fprintf(stderr, "corrupt row %zu backend %u: got %d, want %d\n", i, b, r, rows[i].err);
			exit(T_FAIL);
		}
		/* create-or-open must refuse it the same way, never share it. */
		r = shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &o);
		CHECK_EQ(r, rows[i].err);
		shmkit_seg_close(s);
		/* unlink removes even a corrupt one, except a name that is not ours. */
		r = shmkit_seg_unlink(name, b);
		if (rows[i].err == -EADDRINUSE) {
			CHECK_EQ(r, -EADDRINUSE);
			CHECK_OK(shmkit_seg_unlink(name, b | SHMKIT_SEG_RAW));
		} else {
			CHECK_EQ(r, 0);
		}
		CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &o), -ENOENT);
	}
}

/* Objects shmkit did not make: random bytes, a truncated one, a too-small one. */
static void test_foreign_posix(void)
{
	const char *name = t_name("foreign");
	shmkit_seg *s, *o;
	uint64_t seed = 12345;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 8192, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &s));
	unsigned char *d = shmkit_seg_data(s);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 8192; i++)
			d[i] = (unsigned char)t_rand(&seed);
		int r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &o);
		CHECK(r == -EPROTO || r == -EADDRINUSE);
	}
	shmkit_seg_close(s);
	shmkit_seg_unlink(name, SHMKIT_SEG_RAW);

	/* Too small to hold a header. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &s));
	memset(shmkit_seg_data(s), 0xff, 100);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &o), -EPROTO);
	shmkit_seg_close(s);
	shmkit_seg_unlink(name, SHMKIT_SEG_RAW);

	/* A shmkit segment truncated behind our back. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100000, 0, SHMKIT_SEG_CREATE, &s));
	CHECK(ftruncate(shmkit_seg_fd(s), 8192) == 0);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &o), -EPROTO);
	shmkit_seg_close(s);
	shmkit_seg_unlink(name, 0);

	/* A zero-filled foreign object looks like a creator that never finished: the wait
	 * is bounded, and the answer is a refusal. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 8192, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &s));
	int64_t t0 = shmkit__now_ns();
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &o), -EPROTO);
	CHECK(shmkit__now_ns() - t0 < 10 * SHMKIT_SEC);
	shmkit_seg_close(s);
	shmkit_seg_unlink(name, SHMKIT_SEG_RAW);
}

/* A creator that died between creating the object and publishing it: its token (no
 * such token file exists for a random id) proves it dead, a plain open says the
 * segment is not there, and create-or-open clears the name and creates anew. */
static void test_abandoned(unsigned b)
{
	const char *name = bname(b, "abandoned");
	shmkit_seg *s, *o;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &s));
	struct shmkit__hdr *h = shmkit__seg_hdr(s);
	atomic_store(&h->state, SHMKIT_STATE_INIT);
	h->creator_token = UINT64_C(0x0123456789abcdef);
	shmkit_seg_close(s);
	int64_t t0 = t_now_ns();
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o), -ENOENT);
	/* Absent to open, but its name is still taken: unlink removes it. */
	CHECK_OK(shmkit_seg_unlink(name, b));
	CHECK_EQ(shmkit_seg_unlink(name, b | SHMKIT_SEG_RAW), -ENOENT);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &s));
	atomic_store(&shmkit__seg_hdr(s)->state, SHMKIT_STATE_INIT);
	shmkit__seg_hdr(s)->creator_token = UINT64_C(0x0123456789abcdef);
	shmkit_seg_close(s);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &o));
	CHECK(t_now_ns() - t0 < SHMKIT_SEC); /* told by the kernel, not by waiting */
	CHECK_EQ(shmkit_seg_created(o), 1);
	shmkit_seg_delete(o);
	shmkit_seg_close(o);
}

/* An empty POSIX object (made by shm_open and never sized) can be removed by name. */
static void test_unlink_empty(void)
{
	const char *name = t_name("empty");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	shmkit_seg *o;
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, 0, &o), -EPROTO);
	CHECK_OK(shmkit_seg_unlink(name, SHMKIT_SEG_RAW));
	CHECK_EQ(shmkit_seg_unlink(name, 0), -ENOENT);
}

/* shmkit_seg_unlink_fd(): the name goes, the segment is marked deleted through the
 * descriptor; and under a write lease (as shmkit gc holds one), an opener that races
 * with the removal waits, then finds the segment gone instead of using it. */
static void test_unlink_fd(void)
{
	const char *name = t_name("unlinkfd");
	char path[SHMKIT_NAME_MAX + 16];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	shmkit_seg *s, *o;
	CHECK_EQ(shmkit_seg_unlink_fd(-1, name), -EINVAL);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, SHMKIT_SEG_CREATE, &s));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(shmkit_seg_unlink_fd(fd, "/other-name-never-made"), -ENOENT);
	CHECK_OK(shmkit_seg_unlink_fd(fd, name));
	CHECK(access(path, F_OK) < 0);
	CHECK_EQ(shmkit_seg_check(s), -EIDRM);
	close(fd);
	shmkit_seg_close(s);

	/* The race, made certain: the lease is held while the child opens. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, SHMKIT_SEG_CREATE, &s));
	shmkit_seg_close(s);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	signal(SIGIO, SIG_IGN); /* the lease-break notice */
	CHECK(fcntl(fd, F_SETLEASE, F_WRLCK) == 0);
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, 0, &o);
		_exit(r == -ENOENT ? 0 : 1);
	}
	/* The child is held in open() by our lease: the kernel reports the lease being
	 * broken (downgraded from F_WRLCK) once it tries. */
	for (int i = 0; fcntl(fd, F_GETLEASE) == F_WRLCK; i++) {
		CHECK(i < 2000);
		t_nap_ms(1);
	}
	CHECK_OK(shmkit_seg_unlink_fd(fd, name));
	CHECK(fcntl(fd, F_SETLEASE, F_UNLCK) == 0);
	close(fd);
	CHECK_EQ(t_wait(pid), 0);
	signal(SIGIO, SIG_DFL);
}

/* Issue 8, item 5: creators SIGKILLed at random instants of creation (a large segment,
 * so that reserving its memory takes a while) never leave a name that later opens
 * cannot use: every create-or-open after the kill succeeds at once. */
static void test_killed_creator(unsigned b)
{
	const char *name = bname(b, "killed");
	const size_t size = (size_t)32 << 20;
	const int trials = SANITIZED ? 15 : 60;
	int left = 0;
	for (int i = 0; i < trials; i++) {
		pid_t pid = t_fork_raw();
		if (pid == 0) {
			shmkit_seg *c;
			shmkit_seg_open(name, SHMKIT_KIND_DATA, size, 0, b | SHMKIT_SEG_CREATE, &c);
			_exit(0);
		}
		struct timespec ts = {0, (long)(rand() % 8000) * 1000};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		shmkit_seg *o;
		int64_t t0 = t_now_ns();
		int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, size, 0, b | SHMKIT_SEG_CREATE, &o);
		if (r < 0) {
			fprintf(stderr, "trial %d: create-or-open after a killed creator: %s\n", i,
				shmkit_strerror(r));
			left++;
			shmkit_seg_unlink(name, b | SHMKIT_SEG_RAW);
			continue;
		}
		CHECK(t_now_ns() - t0 < SHMKIT_SEC);
		CHECK_OK(shmkit_seg_delete(o));
		shmkit_seg_close(o);
	}
	CHECK_EQ(left, 0);
}

/* Issue 8, item 4: a peer that may write a segment rewrites the creator's token in
 * its header (to name nobody, or a dead process): a creator that lives on, having
 * closed the segment, must never be reported dead, or gc would remove its data. */
static void test_forged_creator(unsigned b)
{
	const char *name = bname(b, "forged");
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_seg *c;
		char x = 0;
		if (shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &c) < 0)
			_exit(1);
		shmkit_seg_close(c);
		(void)!write(pfd[1], &x, 1);
		for (;;)
			pause();
	}
	char x;
	CHECK(read(pfd[0], &x, 1) == 1);
	shmkit_seg *s;
	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &s));
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	CHECK_EQ(in.creator_alive, 1);
	const uint64_t forged[] = {0, 1, UINT64_C(0x0123456789abcdef)};
	for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
		shmkit__seg_hdr(s)->creator_token = forged[i];
		CHECK_OK(shmkit_seg_inspect(name, b, &in));
		CHECK(in.creator_alive != 0);
	}
	kill(pid, SIGKILL);
	CHECK_EQ(t_wait(pid), 128 + SIGKILL);
	close(pfd[0]);
	close(pfd[1]);
	/* Dead now: POSIX says so through the creator's binding, whatever the header
	 * says; System V from the token (still forged) and the kernel's creator pid. */
	CHECK_OK(shmkit_seg_inspect(name, b, &in));
	if (!b)
		CHECK_EQ(in.creator_alive, 0);
	else
		CHECK(in.creator_alive != 1);
	CHECK_OK(shmkit_seg_delete(s));
	shmkit_seg_close(s);
}

/* Issue 8, item 1: a peer that overwrites the name's terminating NUL (and keeps
 * rewriting it) never makes shmkit_seg_stat() or shmkit_seg_inspect() write past
 * struct shmkit_seg_info. */
static void test_unterminated_name(unsigned b)
{
	const char *name = bname(b, "noterm");
	shmkit_seg *s;
	struct {
		struct shmkit_seg_info in;
		unsigned char canary[8192];
	} out;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 100, 0, b | SHMKIT_SEG_CREATE, &s));
	struct shmkit__hdr *h = shmkit__seg_hdr(s);
	/* The whole rest of the header page, name included, without a single zero. */
	memset(h->name, 'A', SHMKIT_DATA_OFF - offsetof(struct shmkit__hdr, name));
	memset(out.canary, 0x5c, sizeof out.canary);
	CHECK_OK(shmkit_seg_stat(s, &out.in));
	CHECK(strlen(out.in.name) <= SHMKIT_NAME_MAX);
	for (size_t i = 0; i < sizeof out.canary; i++)
		CHECK_EQ(out.canary[i], 0x5c);
	int r = shmkit_seg_inspect(name, b, &out.in);
	CHECK(r == 0);
	CHECK(strlen(out.in.name) <= SHMKIT_NAME_MAX);
	for (size_t i = 0; i < sizeof out.canary; i++)
		CHECK_EQ(out.canary[i], 0x5c);
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
}

/* Many processes race to create-or-open one name: one creates, all share it. */
static void test_race(unsigned b)
{
	enum { PROCS = 12, ROUNDS = 20 };
	struct shared {
		atomic_int go;
		atomic_int created;
		int64_t ctime[PROCS];
		int ok[PROCS];
	} *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	for (int round = 0; round < ROUNDS; round++) {
		const char *name = bname(b, "race");
		memset(sh, 0, sizeof *sh);
		pid_t pids[PROCS];
		for (int i = 0; i < PROCS; i++) {
			pids[i] = t_fork_raw();
			if (pids[i] == 0) {
				shmkit_seg *s;
				struct shmkit_seg_info in;
				while (!atomic_load(&sh->go))
					;
				int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, 4096, 0,
							b | SHMKIT_SEG_CREATE, &s);
				if (r < 0 || shmkit_seg_stat(s, &in) < 0)
					_exit(2);
				if (shmkit_seg_created(s))
					atomic_fetch_add(&sh->created, 1);
				sh->ctime[i] = in.ctime_ns;
				sh->ok[i] = in.state == SHMKIT_STATE_READY;
				shmkit_seg_close(s);
				_exit(0);
			}
		}
		atomic_store(&sh->go, 1);
		for (int i = 0; i < PROCS; i++)
			CHECK_EQ(t_wait(pids[i]), 0);
		CHECK_EQ(atomic_load(&sh->created), 1);
		for (int i = 0; i < PROCS; i++) {
			CHECK_EQ(sh->ok[i], 1);
			CHECK_EQ(sh->ctime[i], sh->ctime[0]);
		}
		CHECK_OK(shmkit_seg_unlink(name, b));
	}
	munmap(sh, sizeof *sh);
}

static void test_raw(unsigned b)
{
	const char *name = bname(b, "raw");
	shmkit_seg *s, *o;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 5000, 0, b | SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &s));
	CHECK_EQ(shmkit_seg_size(s), 5000);
	memcpy(shmkit_seg_data(s), "raw!", 5);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &o));
	CHECK(shmkit_seg_size(o) >= 5000);
	CHECK(!strcmp(shmkit_seg_data(o), "raw!"));
	struct shmkit_seg_info in;
	CHECK_OK(shmkit_seg_stat(o, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_RAW);
	shmkit_seg_close(o);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 1 << 20, 0, b | SHMKIT_SEG_RAW, &o), -EINVAL);
	/* Not a shmkit segment: refused without RAW. */
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b, &o), -EPROTO);
	if (b) {
		/* Reached by its literal key, as for segments other programs made. */
		char keyname[32];
		CHECK_OK(shmkit_seg_stat(s, &in));
		snprintf(keyname, sizeof keyname, "0x%x", (unsigned)in.key);
		CHECK_OK(shmkit_seg_open(keyname, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &o));
		CHECK(!strcmp(shmkit_seg_data(o), "raw!"));
		shmkit_seg_close(o);
	}
	shmkit_seg_close(s);
	/* unlink without RAW removes a foreign object too. */
	CHECK_OK(shmkit_seg_unlink(name, b));
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, b | SHMKIT_SEG_RAW, &o), -ENOENT);
}

static void test_leaks(unsigned b)
{
	const char *name = bname(b, "leak");
	shmkit_seg *s, *o;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 64, 0, b | SHMKIT_SEG_CREATE, &s));
	int fds = t_count_fds(), maps = t_count_maps();
	for (int i = 0; i < 3000; i++) {
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o));
		shmkit_seg_close(o);
		/* Failing opens release what they took too. */
		CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_BLOB, 0, 0, b, &o), -EPROTO);
	}
	CHECK_EQ(t_count_fds(), fds);
	CHECK(t_count_maps() <= maps); /* VMAs may merge, never grow */
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
	fds = t_count_fds();
	for (int i = 0; i < 1000; i++) {
		CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 64, 0, b | SHMKIT_SEG_CREATE, &s));
		CHECK_OK(shmkit_seg_delete(s));
		shmkit_seg_close(s);
	}
	CHECK_EQ(t_count_fds(), fds);
	CHECK(t_count_maps() <= maps); /* VMAs may merge, never grow */
}

/* Tests run as root, which bypasses permission checks: refuse as "nobody". */
static void test_permissions(unsigned b)
{
	const char *name = bname(b, "perm");
	shmkit_seg *s;
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 64, 0600, b | SHMKIT_SEG_CREATE, &s));
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		shmkit_seg *o;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(77);
		int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b, &o);
		int r2 = shmkit_seg_open(name, SHMKIT_KIND_DATA, 0, 0, b | SHMKIT_SEG_RDONLY, &o);
		_exit(r == -EACCES && r2 == -EACCES ? 0 : 1);
	}
	int st = t_wait(pid);
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
	if (st == 77) {
		fprintf(stderr, "permissions: cannot drop privileges, not checked\n");
		return;
	}
	CHECK_EQ(st, 0);
}

/* A full /dev/shm: ENOSPC at creation, not SIGBUS later. A private mount namespace
 * with a 1 MiB tmpfs over /dev/shm stands in for Docker's small one. */
static void test_enospc(void)
{
	pid_t pid = t_fork_raw();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") < 0)
			_exit(77);
		shmkit_seg *s;
		int r = shmkit_seg_open("/enospc", SHMKIT_KIND_DATA, 8 << 20, 0, SHMKIT_SEG_CREATE, &s);
		if (r != -ENOSPC)
			_exit(1);
		/* Nothing is left behind by the failed creation. */
		if (shmkit_seg_open("/enospc", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_RAW, &s) != -ENOENT)
			_exit(2);
		_exit(0);
	}
	int st = t_wait(pid);
	if (st == 77) {
		fprintf(stderr, "enospc: no private mount namespace here, not checked\n");
		return;
	}
	CHECK_EQ(st, 0);
}

/* inspect: describes without waiting, for ours, foreign ones and System V ids. */
static void test_inspect(void)
{
	struct shmkit_seg_info in;
	shmkit_seg *s, *f;
	const char *name = t_name("inspect"), *fname = t_name("inspect-foreign");
	CHECK_EQ(shmkit_seg_inspect(name, 0, NULL), -EINVAL);
	CHECK_EQ(shmkit_seg_inspect(name, SHMKIT_SEG_RAW, &in), -EINVAL);
	CHECK_EQ(shmkit_seg_inspect(name, 0, &in), -ENOENT);
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 300, 0640, SHMKIT_SEG_CREATE, &s));
	CHECK_OK(shmkit_seg_inspect(name, 0, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_DATA);
	CHECK_EQ(in.data_size, 300);
	CHECK_EQ(in.creator_pid, getpid());
	CHECK_EQ(in.mode, 0640);
	CHECK_EQ(in.nattch, -1);
	/* Still being created: reported, not waited for. */
	atomic_store(&shmkit__seg_hdr(s)->state, SHMKIT_STATE_INIT);
	int64_t t0 = shmkit__now_ns();
	CHECK_OK(shmkit_seg_inspect(name, 0, &in));
	CHECK(shmkit__now_ns() - t0 < SHMKIT_SEC);
	CHECK_EQ(in.state, SHMKIT_STATE_INIT);
	CHECK_OK(shmkit_seg_delete(s));
	shmkit_seg_close(s);
	CHECK_OK(shmkit_seg_open(fname, SHMKIT_KIND_DATA, 8192, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &f));
	CHECK_OK(shmkit_seg_inspect(fname, 0, &in));
	CHECK_EQ(in.kind, SHMKIT_KIND_RAW);
	CHECK_EQ(in.total_size, 8192);
	shmkit_seg_close(f);
	CHECK_OK(shmkit_seg_unlink(fname, SHMKIT_SEG_RAW));
	/* System V: by name and by id; the header's name is reported. */
	CHECK_OK(shmkit_seg_open(name, SHMKIT_KIND_DATA, 300, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV, &s));
	struct shmkit_seg_info by_name;
	CHECK_OK(shmkit_seg_inspect(name, SHMKIT_SEG_SYSV, &by_name));
	CHECK_EQ(by_name.nattch, 1);
	char id[32];
	snprintf(id, sizeof id, "id:%d", by_name.shmid);
	CHECK_OK(shmkit_seg_inspect(id, SHMKIT_SEG_SYSV, &in));
	CHECK_EQ(in.shmid, by_name.shmid);
	CHECK_EQ(in.key, by_name.key);
	CHECK_EQ(in.kind, SHMKIT_KIND_DATA);
	CHECK(!strcmp(in.name, name));
	CHECK_EQ(shmkit_seg_open(id, SHMKIT_KIND_DATA, 10, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_CREATE | SHMKIT_SEG_RAW, &f),
		 -EINVAL);
	CHECK_EQ(shmkit_seg_inspect("id:x", SHMKIT_SEG_SYSV, &in), -EINVAL);
	shmkit_seg_close(s);
	CHECK_OK(shmkit_seg_unlink(id, SHMKIT_SEG_SYSV));
	CHECK_EQ(shmkit_seg_inspect(id, SHMKIT_SEG_SYSV, &in), -ENOENT);
}

static int init_calls;
static int init_fill(void *data, size_t size, void *arg)
{
	init_calls++;
	memset(data, *(const int *)arg, size);
	return 0;
}
static int init_fail(void *data, size_t size, void *arg)
{
	(void)data, (void)size, (void)arg;
	return -ENOTSUP;
}

/* The creator's initializer runs once, before anyone can open the segment. */
static void test_open_init(void)
{
	const char *name = t_name("init");
	int byte = 0x5a;
	shmkit_seg *s, *o;
	CHECK_EQ(shmkit_seg_open_init(name, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE, init_fail, NULL, &s),
		 -ENOTSUP);
	CHECK_EQ(shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_RAW, &o), -ENOENT);
	CHECK_OK(shmkit_seg_open_init(name, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE, init_fill, &byte, &s));
	CHECK_OK(shmkit_seg_open_init(name, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE, init_fill, &byte, &o));
	CHECK_EQ(init_calls, 1);
	CHECK_EQ(((unsigned char *)shmkit_seg_data(o))[63], 0x5a);
	shmkit_seg_close(o);
	shmkit_seg_delete(s);
	shmkit_seg_close(s);
}

int main(void)
{
	test_open_init();
	test_unlink_empty();
	test_unlink_fd();
	test_inspect();
	test_bad_arguments();
	test_foreign_posix();
	test_enospc();
	for (int i = 0; i < 2; i++) {
		unsigned b = backends[i];
		test_basic(b);
		test_exact_mode(b);
		test_corrupt(b);
		test_abandoned(b);
		test_killed_creator(b);
		test_unterminated_name(b);
		test_forged_creator(b);
		test_race(b);
		test_raw(b);
		test_leaks(b);
		test_permissions(b);
	}
	printf("test_seg: ok\n");
	return T_PASS;
}
