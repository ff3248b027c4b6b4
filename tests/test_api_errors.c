/* One table of invalid calls across the whole public API, each with the exact error
 * its header and man page promise. Every row runs in a forked child, so a call that
 * crashes fails its own row and the others still run; the table prints every
 * mismatch, then fails.
 *
 * Core calls return -errno; the seed compat calls (shmem_*, fshm_*) return NULL or -1
 * with errno, which their rows turn into -errno after checking the NULL / -1. */
#include "common.h"

#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

/* Fixtures made by the parent before the table runs; every child inherits them. */
static const char *n_data, *n_blob, *n_chan, *n_sysv, *n_stream, *n_missing;
static char shmem_path[128];
static shmkit_seg *data_seg, *sysv_seg;
static char long_name[400];

/* Handles a row's helpers opened, closed by the child before it exits (so that
 * memcheck, following children, finds no leak). */
static shmkit_chan *row_chans[8];
static shmkit_blob *row_blobs[8];
static shmem_t *row_shmems[4];
static int n_row_chans, n_row_blobs, n_row_shmems;

static void close_row_handles(void)
{
	/* Producers first: a consumer's close may wake them, harmless either way. */
	while (n_row_chans > 0)
		shmkit_chan_close(row_chans[--n_row_chans]);
	while (n_row_blobs > 0)
		shmkit_blob_close(row_blobs[--n_row_blobs]);
	while (n_row_shmems > 0)
		shmem_close(&row_shmems[--n_row_shmems]);
}

#define NOCRASH LLONG_MIN /* expectation: the call returns (whatever it returns) */

struct row {
	const char *call;      /* the call as a person would write it */
	long long expect;      /* -errno, a value, or NOCRASH */
	long long (*fn)(void); /* runs in a child */
};

/* ---- seg ---- */

static long long seg_null_out(void)
{
	return shmkit_seg_open(n_data, SHMKIT_KIND_ANY, 0, 0, 0, NULL);
}

/* Opens with these arguments; the handle must be NULL on failure. */
static long long seg_try(const char *name, unsigned kind, size_t size, unsigned mode,
			 unsigned flags)
{
	shmkit_seg *s = (shmkit_seg *)&s;
	int r = shmkit_seg_open(name, kind, size, mode, flags, &s);
	if (r < 0 && s != NULL)
		return 1000; /* *out not NULL on failure */
	shmkit_seg_close(s);
	return r;
}

static long long seg_null_name(void) { return seg_try(NULL, SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_bad_flag(void) { return seg_try(n_data, SHMKIT_KIND_ANY, 0, 0, 1u << 20); }
static long long seg_bad_mode(void)
{
	return seg_try(t_name("mode"), SHMKIT_KIND_DATA, 64, 01777, SHMKIT_SEG_CREATE);
}
static long long seg_excl_alone(void) { return seg_try(n_data, SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_EXCL); }
static long long seg_rdonly_create(void)
{
	return seg_try(t_name("rc"), SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_RDONLY | SHMKIT_SEG_CREATE);
}
static long long seg_bad_kind(void) { return seg_try(n_data, 99, 0, 0, 0); }
static long long seg_create_any(void)
{
	return seg_try(t_name("any"), SHMKIT_KIND_ANY, 64, 0, SHMKIT_SEG_CREATE);
}
static long long seg_create_0(void) { return seg_try(t_name("z"), SHMKIT_KIND_DATA, 0, 0, SHMKIT_SEG_CREATE); }
static long long seg_huge(void)
{
	return seg_try(t_name("huge"), SHMKIT_KIND_DATA, (size_t)1 << 50, 0, SHMKIT_SEG_CREATE);
}
static long long seg_empty_name(void) { return seg_try("", SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_slash_name(void) { return seg_try("/a/b", SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_dot_name(void) { return seg_try("/..", SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_long_name(void) { return seg_try(long_name, SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_missing(void) { return seg_try(n_missing, SHMKIT_KIND_ANY, 0, 0, 0); }
static long long seg_excl_exists(void)
{
	return seg_try(n_data, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL);
}
static long long seg_wrong_kind(void) { return seg_try(n_data, SHMKIT_KIND_BLOB, 0, 0, 0); }
static long long seg_wrong_size(void) { return seg_try(n_data, SHMKIT_KIND_DATA, 65, 0, 0); }
static long long seg_raw_kind(void) { return seg_try(n_data, SHMKIT_KIND_BLOB, 0, 0, SHMKIT_SEG_RAW); }
static long long seg_sysv_empty(void) { return seg_try("", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV); }
static long long seg_sysv_key0(void) { return seg_try("0x0", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW); }
static long long seg_sysv_badid(void) { return seg_try("id:x", SHMKIT_KIND_ANY, 0, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW); }
static long long seg_sysv_create_key(void)
{
	return seg_try("0x5eed1e55", SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_CREATE);
}
static long long seg_inspect_null(void) { return shmkit_seg_inspect(n_data, 0, NULL); }
static long long seg_inspect_flag(void)
{
	struct shmkit_seg_info i;
	return shmkit_seg_inspect(n_data, SHMKIT_SEG_RAW, &i);
}
static long long seg_inspect_missing(void)
{
	struct shmkit_seg_info i;
	return shmkit_seg_inspect(n_missing, 0, &i);
}
static long long seg_stat_null(void)
{
	struct shmkit_seg_info i;
	return shmkit_seg_stat(NULL, &i);
}
static long long seg_stat_null_info(void) { return shmkit_seg_stat(data_seg, NULL); }
static long long seg_delete_null(void) { return shmkit_seg_delete(NULL); }
static long long seg_unlink_null(void) { return shmkit_seg_unlink(NULL, 0); }
static long long seg_unlink_flag(void) { return shmkit_seg_unlink(n_data, SHMKIT_SEG_CREATE); }
static long long seg_unlink_missing(void) { return shmkit_seg_unlink(n_missing, 0); }
static long long seg_check_null(void) { return shmkit_seg_check(NULL); }
static long long seg_fd_null(void) { return shmkit_seg_fd(NULL); }
static long long seg_fd_sysv(void) { return shmkit_seg_fd(sysv_seg); }
static long long seg_close_null(void) { return shmkit_seg_close(NULL); }
static long long seg_data_null(void) { return shmkit_seg_data(NULL) != NULL; }
static long long seg_size_null(void) { return (long long)shmkit_seg_size(NULL); }
static long long seg_created_null(void) { return shmkit_seg_created(NULL); }

/* ---- sync ---- */

static long long mutex_init_null(void) { return shmkit_mutex_init(NULL); }
static long long mutex_lock_null(void) { return shmkit_mutex_lock(NULL, 0); }
static long long mutex_consistent_null(void) { return shmkit_mutex_consistent(NULL); }
static long long mutex_unlock_null(void) { return shmkit_mutex_unlock(NULL); }

/* A mutex in shared memory, initialized by this child. */
static shmkit_mutex *fresh_mutex(void)
{
	shmkit_mutex *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			       -1, 0);
	if (m == MAP_FAILED || shmkit_mutex_init(m) != 0)
		exit(T_FAIL);
	return m;
}

static long long mutex_relock(void)
{
	shmkit_mutex *m = fresh_mutex();
	if (shmkit_mutex_lock(m, 0) != 0)
		return 1000;
	return shmkit_mutex_lock(m, 0);
}
static long long mutex_unlock_free(void) { return shmkit_mutex_unlock(fresh_mutex()); }
static long long mutex_consistent_ok(void)
{
	shmkit_mutex *m = fresh_mutex();
	if (shmkit_mutex_lock(m, 0) != 0)
		return 1000;
	return shmkit_mutex_consistent(m);
}

/* Another thread of this process takes the lock and keeps it (a thread that exited
 * holding it would make the lock "owner died" instead). */
static sem_t held, never;

static void *hold(void *arg)
{
	if (shmkit_mutex_lock(arg, 0) != 0)
		exit(T_FAIL);
	sem_post(&held);
	while (sem_wait(&never) != 0)
		;
	return NULL;
}

static shmkit_mutex *mutex_held_elsewhere(void)
{
	shmkit_mutex *m = fresh_mutex();
	pthread_t th;
	if (sem_init(&held, 0, 0) || sem_init(&never, 0, 0) || pthread_create(&th, NULL, hold, m))
		exit(T_FAIL);
	while (sem_wait(&held) != 0)
		;
	return m;
}

static long long mutex_busy(void) { return shmkit_mutex_lock(mutex_held_elsewhere(), 0); }
static long long mutex_timeout(void)
{
	return shmkit_mutex_lock(mutex_held_elsewhere(), 5 * SHMKIT_MSEC);
}
static long long mutex_unlock_other(void) { return shmkit_mutex_unlock(mutex_held_elsewhere()); }

static long long event_init_null(void)
{
	shmkit_event_init(NULL);
	return 0;
}
static long long event_prepare_null(void) { return shmkit_event_prepare(NULL); }
static long long event_wait_null(void) { return shmkit_event_wait(NULL, 0, 0); }
static long long event_signal_null(void) { return shmkit_event_signal(NULL, 0); }
static long long event_wait_now(void)
{
	shmkit_event ev;
	shmkit_event_init(&ev);
	return shmkit_event_wait(&ev, shmkit_event_prepare(&ev), 0);
}
static long long event_wait_timeout(void)
{
	shmkit_event ev;
	shmkit_event_init(&ev);
	return shmkit_event_wait(&ev, shmkit_event_prepare(&ev), SHMKIT_MSEC);
}

/* ---- blob ---- */

static long long blob_try(const char *name, size_t size, unsigned flags)
{
	shmkit_blob *b = (shmkit_blob *)&b;
	int r = shmkit_blob_open(name, size, 0, flags, &b);
	if (r < 0 && b != NULL)
		return 1000;
	shmkit_blob_close(b);
	return r;
}

static shmkit_blob *blob(unsigned flags)
{
	shmkit_blob *b;
	if (shmkit_blob_open(n_blob, 0, 0, flags, &b) != 0)
		exit(T_FAIL);
	return row_blobs[n_row_blobs++] = b;
}

static long long blob_null_out(void) { return shmkit_blob_open(n_blob, 0, 0, 0, NULL); }
static long long blob_raw(void) { return blob_try(n_blob, 0, SHMKIT_SEG_RAW); }
static long long blob_huge(void) { return blob_try(t_name("bh"), (size_t)1 << 45, SHMKIT_SEG_CREATE); }
static long long blob_create_0(void) { return blob_try(t_name("b0"), 0, SHMKIT_SEG_CREATE); }
static long long blob_not_blob(void) { return blob_try(n_chan, 0, 0); }
static long long blob_wrong_size(void) { return blob_try(n_blob, 100, 0); }
static long long blob_missing(void) { return blob_try(n_missing, 0, 0); }
static long long blob_write_null(void) { return shmkit_blob_write(NULL, "x", 1); }
static long long blob_write_nullbuf(void) { return shmkit_blob_write(blob(0), NULL, 5); }
static long long blob_write_big(void)
{
	static char buf[201];
	return shmkit_blob_write(blob(0), buf, sizeof buf);
}
static long long blob_write_ro(void) { return shmkit_blob_write(blob(SHMKIT_SEG_RDONLY), "x", 1); }
static long long blob_read_null(void)
{
	char buf[8];
	return shmkit_blob_read(NULL, buf, sizeof buf, NULL);
}
static long long blob_read_nullbuf(void) { return shmkit_blob_read(blob(0), NULL, 5, NULL); }
static long long blob_version_null(void) { return shmkit_blob_version(NULL); }
static long long blob_delete_null(void) { return shmkit_blob_delete(NULL); }
static long long blob_close_null(void) { return shmkit_blob_close(NULL); }
static long long blob_size_null(void) { return (long long)shmkit_blob_size(NULL); }
static long long blob_seg_null(void) { return shmkit_blob_seg(NULL) != NULL; }

/* A blob of our own, then deleted through another handle. */
static shmkit_blob *deleted_blob(void)
{
	shmkit_blob *a, *b;
	const char *n = t_name("bdel");
	if (shmkit_blob_open(n, 16, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &a) != 0 ||
	    shmkit_blob_open(n, 16, 0, 0, &b) != 0 || shmkit_blob_delete(a) != 0)
		exit(T_FAIL);
	row_blobs[n_row_blobs++] = a;
	return row_blobs[n_row_blobs++] = b;
}
static long long blob_read_deleted(void)
{
	char buf[16];
	return shmkit_blob_read(deleted_blob(), buf, sizeof buf, NULL);
}
static long long blob_write_deleted(void) { return shmkit_blob_write(deleted_blob(), "x", 1); }
static long long blob_version_deleted(void) { return shmkit_blob_version(deleted_blob()); }

/* ---- chan ---- */

static long long chan_try(const char *name, unsigned role, size_t cap, unsigned flags)
{
	shmkit_chan *c = (shmkit_chan *)&c;
	int r = shmkit_chan_open(name, role, cap, 0, flags, &c);
	if (r < 0 && c != NULL)
		return 1000;
	shmkit_chan_close(c);
	return r;
}

/* An end of a 4 KiB channel of this child's own, so rows never share ring state. */
static shmkit_chan *chan(unsigned role)
{
	shmkit_chan *c;
	if (shmkit_chan_open(t_name("c"), role, 4096, 0, SHMKIT_SEG_CREATE, &c) != 0)
		exit(T_FAIL);
	return row_chans[n_row_chans++] = c;
}

static long long chan_null_out(void) { return shmkit_chan_open(n_chan, SHMKIT_CHAN_CONSUMER, 0, 0, 0, NULL); }
static long long chan_bad_role(void) { return chan_try(n_chan, 3, 0, 0); }
static long long chan_rdonly(void) { return chan_try(n_chan, SHMKIT_CHAN_CONSUMER, 0, SHMKIT_SEG_RDONLY); }
static long long chan_raw(void) { return chan_try(n_chan, SHMKIT_CHAN_CONSUMER, 0, SHMKIT_SEG_RAW); }
static long long chan_huge(void)
{
	return chan_try(t_name("ch"), SHMKIT_CHAN_PRODUCER, ((size_t)1 << 30) + 1, SHMKIT_SEG_CREATE);
}
static long long chan_wrong_cap(void) { return chan_try(n_chan, SHMKIT_CHAN_CONSUMER, 8192, 0); }
static long long chan_not_chan(void) { return chan_try(n_blob, SHMKIT_CHAN_CONSUMER, 0, 0); }
static long long chan_busy(void)
{
	chan(SHMKIT_CHAN_PRODUCER);
	return chan_try(t_name("c"), SHMKIT_CHAN_PRODUCER, 0, 0);
}
static long long chan_send_null(void) { return shmkit_chan_send(NULL, "x", 1, 0); }
static long long chan_send_consumer(void) { return shmkit_chan_send(chan(SHMKIT_CHAN_CONSUMER), "x", 1, 0); }
static long long chan_send_0(void) { return shmkit_chan_send(chan(SHMKIT_CHAN_PRODUCER), "x", 0, 0); }
static long long chan_send_nullbuf(void) { return shmkit_chan_send(chan(SHMKIT_CHAN_PRODUCER), NULL, 1, 0); }
static long long chan_send_big(void)
{
	static char buf[2049];
	return shmkit_chan_send(chan(SHMKIT_CHAN_PRODUCER), buf, sizeof buf, 0);
}
/* A producer facing a full ring while its consumer lives (this child holds it). */
static long long chan_send_full(int64_t timeout)
{
	static char buf[1000];
	shmkit_chan *c = chan(SHMKIT_CHAN_CONSUMER), *p = chan(SHMKIT_CHAN_PRODUCER);
	(void)c;
	int r;
	for (int i = 0; i < 16 && (r = shmkit_chan_send(p, buf, sizeof buf, 0)) == 0; i++)
		;
	return r == 0 ? 1000 : shmkit_chan_send(p, buf, sizeof buf, timeout);
}
static long long chan_send_full_now(void) { return chan_send_full(0); }
static long long chan_send_full_wait(void) { return chan_send_full(SHMKIT_MSEC); }
static long long chan_sendv_0(void)
{
	struct iovec v = {"x", 1};
	return shmkit_chan_sendv(chan(SHMKIT_CHAN_PRODUCER), &v, 0, 0);
}
static long long chan_sendv_null(void) { return shmkit_chan_sendv(chan(SHMKIT_CHAN_PRODUCER), NULL, 1, 0); }
static long long chan_sendv_empty(void)
{
	struct iovec v[2] = {{"x", 1}, {"y", 0}};
	return shmkit_chan_sendv(chan(SHMKIT_CHAN_PRODUCER), v, 2, 0);
}
static long long chan_sendv_big(void)
{
	static char buf[2049];
	struct iovec v[2] = {{"x", 1}, {buf, sizeof buf}};
	return shmkit_chan_sendv(chan(SHMKIT_CHAN_PRODUCER), v, 2, 0);
}
static long long chan_recv_null(void)
{
	char buf[8];
	return shmkit_chan_recv(NULL, buf, sizeof buf, 0);
}
static long long chan_recv_producer(void)
{
	char buf[8];
	return shmkit_chan_recv(chan(SHMKIT_CHAN_PRODUCER), buf, sizeof buf, 0);
}
static long long chan_recv_nullbuf(void) { return shmkit_chan_recv(chan(SHMKIT_CHAN_CONSUMER), NULL, 8, 0); }
/* The fixture channel is empty and its producer closed: end-of-stream, so these
 * need a live producer (this child) to see an empty ring. */
static long long chan_recv_empty(int64_t timeout)
{
	char buf[8];
	shmkit_chan *c = chan(SHMKIT_CHAN_CONSUMER);
	chan(SHMKIT_CHAN_PRODUCER);
	return shmkit_chan_recv(c, buf, sizeof buf, timeout);
}
static long long chan_recv_empty_now(void) { return chan_recv_empty(0); }
static long long chan_recv_empty_wait(void) { return chan_recv_empty(SHMKIT_MSEC); }
static long long chan_recv_small(void)
{
	char buf[8];
	shmkit_chan *c = chan(SHMKIT_CHAN_CONSUMER), *p = chan(SHMKIT_CHAN_PRODUCER);
	if (shmkit_chan_send(p, "0123456789", 10, 0) != 0)
		return 1000;
	return shmkit_chan_recv(c, buf, sizeof buf, 0);
}
static long long chan_peek_nullbuf(void)
{
	size_t len;
	return shmkit_chan_peek(chan(SHMKIT_CHAN_CONSUMER), NULL, &len, 0);
}
static long long chan_peek_nulllen(void)
{
	const void *b;
	return shmkit_chan_peek(chan(SHMKIT_CHAN_CONSUMER), &b, NULL, 0);
}
static long long chan_release_none(void) { return shmkit_chan_release(chan(SHMKIT_CHAN_CONSUMER)); }
static long long chan_reserve_0(void)
{
	void *p;
	return shmkit_chan_reserve(chan(SHMKIT_CHAN_PRODUCER), 0, 0, &p);
}
static long long chan_reserve_nullbuf(void) { return shmkit_chan_reserve(chan(SHMKIT_CHAN_PRODUCER), 8, 0, NULL); }
static long long chan_reserve_big(void)
{
	void *p;
	return shmkit_chan_reserve(chan(SHMKIT_CHAN_PRODUCER), 2049, 0, &p);
}
static long long chan_commit_none(void) { return shmkit_chan_commit(chan(SHMKIT_CHAN_PRODUCER), 8); }
static long long chan_commit_more(void)
{
	void *q;
	shmkit_chan *p = chan(SHMKIT_CHAN_PRODUCER);
	if (shmkit_chan_reserve(p, 8, 0, &q) != 0)
		return 1000;
	return shmkit_chan_commit(p, 9);
}
static long long chan_fd_observer(void) { return shmkit_chan_fd(chan(SHMKIT_CHAN_OBSERVER)); }
static long long chan_spin_null(void) { return shmkit_chan_set_spin(NULL, 0); }
static long long chan_stats_null(void)
{
	struct shmkit_chan_stats st;
	return shmkit_chan_stats(NULL, &st);
}
static long long chan_stats_nullst(void) { return shmkit_chan_stats(chan(SHMKIT_CHAN_OBSERVER), NULL); }
static long long chan_close_null(void) { return shmkit_chan_close(NULL); }
static long long chan_seg_null(void) { return shmkit_chan_seg(NULL) != NULL; }
static long long chan_recv_deleted(void)
{
	char buf[8];
	shmkit_chan *c, *p;
	const char *n = t_name("cdel");
	if (shmkit_chan_open(n, SHMKIT_CHAN_PRODUCER, 4096, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, &p))
		return 1000;
	row_chans[n_row_chans++] = p;
	if (shmkit_chan_open(n, SHMKIT_CHAN_CONSUMER, 0, 0, 0, &c))
		return 1000;
	row_chans[n_row_chans++] = c;
	if (shmkit_seg_delete(shmkit_chan_seg(p)))
		return 1000;
	return shmkit_chan_recv(c, buf, sizeof buf, 0);
}

/* ---- stream ---- */

static long long stream_try(const char *name, unsigned mode, unsigned flags)
{
	FILE *f = (FILE *)&f;
	int r = shmkit_stream_open(name, mode, flags, &f);
	if (r < 0 && f != NULL)
		return 1000;
	if (f)
		fclose(f);
	return r;
}

static long long stream_null_out(void) { return shmkit_stream_open(n_stream, 0, SHMKIT_STREAM_GUEST, NULL); }
static long long stream_null_name(void) { return stream_try(NULL, 0, SHMKIT_STREAM_GUEST); }
static long long stream_empty(void) { return stream_try("", 0600, SHMKIT_STREAM_OWNER); }
static long long stream_slash(void) { return stream_try("/", 0600, SHMKIT_STREAM_OWNER); }
static long long stream_dotdot(void) { return stream_try("/..", 0600, SHMKIT_STREAM_OWNER); }
static long long stream_no_role(void) { return stream_try(t_name("s0"), 0600, 0); }
static long long stream_both(void)
{
	return stream_try(t_name("s1"), 0600, SHMKIT_STREAM_OWNER | SHMKIT_STREAM_GUEST);
}
static long long stream_flag(void) { return stream_try(t_name("s2"), 0600, SHMKIT_STREAM_OWNER | 8u); }
static long long stream_long(void) { return stream_try(long_name, 0600, SHMKIT_STREAM_OWNER); }
static long long stream_owner_exists(void) { return stream_try(n_stream, 0600, SHMKIT_STREAM_OWNER); }
static long long stream_guest_missing(void) { return stream_try(n_missing, 0, SHMKIT_STREAM_GUEST); }
static long long stream_mode_setid(void) { return stream_try(t_name("s3"), 07777, SHMKIT_STREAM_OWNER); }
static long long stream_destroy_null(void) { return shmkit_stream_destroy(NULL); }
static long long stream_destroy_missing(void) { return shmkit_stream_destroy(n_missing); }
static long long stream_destroy_long(void) { return shmkit_stream_destroy(long_name); }

/* ---- compat: shmem (seed 000), shmfile (seed 002) ---- */

static long long shmem_try(char *path, size_t size)
{
	errno = 0;
	shmem_t *h = shmem_open(path, size);
	if (h) {
		shmem_close(&h);
		return 0;
	}
	return -errno;
}

static long long compat(int r)
{
	if (r == 0)
		return 0;
	return r == -1 ? -errno : 1000; /* anything but 0 / -1 is a wrong convention */
}

static shmem_t *shmem(void)
{
	shmem_t *h = shmem_open(shmem_path, 64);
	if (!h)
		exit(T_FAIL);
	return row_shmems[n_row_shmems++] = h;
}

static long long shmem_open_null(void) { return shmem_try(NULL, 64); }
static long long shmem_open_empty(void) { return shmem_try((char *)"", 64); }
static long long shmem_open_0(void) { return shmem_try(shmem_path, 0); }
static long long shmem_open_size(void) { return shmem_try(shmem_path, 65); }
static long long shmem_close_null(void) { return compat(shmem_close(NULL)); }
static long long shmem_close_nullh(void)
{
	shmem_t *h = NULL;
	return compat(shmem_close(&h));
}
static long long shmem_read_null(void)
{
	char buf[64];
	return compat(shmem_read(NULL, buf, sizeof buf));
}
static long long shmem_read_nulldata(void)
{
	shmem_t *h = shmem();
	return compat(shmem_read(&h, NULL, 64));
}
static long long shmem_read_small(void)
{
	char buf[64];
	shmem_t *h = shmem();
	return compat(shmem_read(&h, buf, 63));
}
static long long shmem_write_big(void)
{
	char buf[65] = {0};
	shmem_t *h = shmem();
	return compat(shmem_write(&h, buf, sizeof buf));
}
static long long shmem_write_null(void)
{
	char buf[8] = {0};
	return compat(shmem_write(NULL, buf, sizeof buf));
}
static long long shmem_delete_null(void) { return compat(shmem_delete(NULL)); }

static long long fshm_try(const char *name, mode_t mode, int flags)
{
	errno = 0;
	FILE *f = fshm_open(name, mode, flags);
	if (f) {
		fclose(f);
		return 0;
	}
	return -errno;
}

static long long fshm_no_role(void) { return fshm_try(t_name("f0"), 0600, 0); }
static long long fshm_both(void) { return fshm_try(t_name("f1"), 0600, FSHM_OWNER | FSHM_GUEST); }
static long long fshm_null(void) { return fshm_try(NULL, 0600, FSHM_GUEST); }
static long long fshm_empty(void) { return fshm_try("", 0600, FSHM_OWNER); }
static long long fshm_long(void) { return fshm_try(long_name, 0600, FSHM_OWNER); }
static long long fshm_exists(void) { return fshm_try(n_stream, 0600, FSHM_OWNER); }
static long long fshm_missing(void) { return fshm_try(n_missing, 0600, FSHM_GUEST); }
static long long fshm_destroy_null(void) { return compat(fshm_force_destroy(NULL)); }
static long long fshm_destroy_missing(void) { return compat(fshm_force_destroy(n_missing)); }

/* ---- strerror, version ---- */

static long long strerror_int_min(void) { return shmkit_strerror(INT_MIN) == NULL; }
static long long strerror_unknown(void) { return shmkit_strerror(123456) == NULL; }
static long long strerror_proto(void)
{
	return strcmp(shmkit_strerror(-EPROTO), shmkit_strerror(EPROTO)) != 0;
}
static long long version_num(void) { return shmkit_version() != SHMKIT_VERSION; }
static long long version_str(void) { return strcmp(shmkit_version_string(), SHMKIT_VERSION_STRING) != 0; }

#define ROW(expect, fn, call) {call, expect, fn}

static const struct row rows[] = {
	/* seg */
	ROW(-EINVAL, seg_null_out, "shmkit_seg_open(name, ANY, 0, 0, 0, NULL)"),
	ROW(-EINVAL, seg_null_name, "shmkit_seg_open(NULL, ...)"),
	ROW(-EINVAL, seg_bad_flag, "shmkit_seg_open(..., flags 1<<20)"),
	ROW(-EINVAL, seg_bad_mode, "shmkit_seg_open(..., mode 01777, CREATE)"),
	ROW(-EINVAL, seg_excl_alone, "shmkit_seg_open(..., EXCL without CREATE)"),
	ROW(-EINVAL, seg_rdonly_create, "shmkit_seg_open(..., RDONLY|CREATE)"),
	ROW(-EINVAL, seg_bad_kind, "shmkit_seg_open(name, kind 99, ...)"),
	ROW(-EINVAL, seg_create_any, "shmkit_seg_open(new, KIND_ANY, 64, CREATE)"),
	ROW(-EINVAL, seg_create_0, "shmkit_seg_open(new, DATA, size 0, CREATE)"),
	ROW(-EINVAL, seg_huge, "shmkit_seg_open(new, DATA, 1<<50, CREATE)"),
	ROW(-EINVAL, seg_empty_name, "shmkit_seg_open(\"\", ...)"),
	ROW(-EINVAL, seg_slash_name, "shmkit_seg_open(\"/a/b\", ...)"),
	ROW(-EINVAL, seg_dot_name, "shmkit_seg_open(\"/..\", ...)"),
	ROW(-ENAMETOOLONG, seg_long_name, "shmkit_seg_open(300-byte name, ...)"),
	ROW(-ENOENT, seg_missing, "shmkit_seg_open(missing, ..., no CREATE)"),
	ROW(-EEXIST, seg_excl_exists, "shmkit_seg_open(existing, ..., CREATE|EXCL)"),
	ROW(-EPROTO, seg_wrong_kind, "shmkit_seg_open(data segment, KIND_BLOB, ...)"),
	ROW(-EINVAL, seg_wrong_size, "shmkit_seg_open(64-byte segment, size 65)"),
	ROW(-EINVAL, seg_raw_kind, "shmkit_seg_open(..., KIND_BLOB, RAW)"),
	ROW(-EINVAL, seg_sysv_empty, "shmkit_seg_open(\"\", ..., SYSV)"),
	ROW(-EINVAL, seg_sysv_key0, "shmkit_seg_open(\"0x0\", ..., SYSV|RAW)"),
	ROW(-EINVAL, seg_sysv_badid, "shmkit_seg_open(\"id:x\", ..., SYSV|RAW)"),
	ROW(-EINVAL, seg_sysv_create_key, "shmkit_seg_open(\"0x5eed1e55\", DATA, 64, SYSV|CREATE)"),
	ROW(-EINVAL, seg_inspect_null, "shmkit_seg_inspect(name, 0, NULL)"),
	ROW(-EINVAL, seg_inspect_flag, "shmkit_seg_inspect(name, RAW, &info)"),
	ROW(-ENOENT, seg_inspect_missing, "shmkit_seg_inspect(missing, 0, &info)"),
	ROW(-EINVAL, seg_stat_null, "shmkit_seg_stat(NULL, &info)"),
	ROW(-EINVAL, seg_stat_null_info, "shmkit_seg_stat(seg, NULL)"),
	ROW(-EINVAL, seg_delete_null, "shmkit_seg_delete(NULL)"),
	ROW(-EINVAL, seg_unlink_null, "shmkit_seg_unlink(NULL, 0)"),
	ROW(-EINVAL, seg_unlink_flag, "shmkit_seg_unlink(name, CREATE)"),
	ROW(-ENOENT, seg_unlink_missing, "shmkit_seg_unlink(missing, 0)"),
	ROW(-EINVAL, seg_check_null, "shmkit_seg_check(NULL)"),
	ROW(-EINVAL, seg_fd_null, "shmkit_seg_fd(NULL)"),
	ROW(-ENOTSUP, seg_fd_sysv, "shmkit_seg_fd(System V segment)"),
	ROW(0, seg_close_null, "shmkit_seg_close(NULL)"),
	ROW(0, seg_data_null, "shmkit_seg_data(NULL) != NULL"),
	ROW(0, seg_size_null, "shmkit_seg_size(NULL)"),
	ROW(0, seg_created_null, "shmkit_seg_created(NULL)"),
	/* sync */
	ROW(-EINVAL, mutex_init_null, "shmkit_mutex_init(NULL)"),
	ROW(-EINVAL, mutex_lock_null, "shmkit_mutex_lock(NULL, 0)"),
	ROW(-EINVAL, mutex_consistent_null, "shmkit_mutex_consistent(NULL)"),
	ROW(-EINVAL, mutex_unlock_null, "shmkit_mutex_unlock(NULL)"),
	ROW(-EDEADLK, mutex_relock, "shmkit_mutex_lock(held by this thread, 0)"),
	ROW(-EPERM, mutex_unlock_free, "shmkit_mutex_unlock(not held)"),
	ROW(-EINVAL, mutex_consistent_ok, "shmkit_mutex_consistent(held, owner did not die)"),
	ROW(-EBUSY, mutex_busy, "shmkit_mutex_lock(held by another thread, 0)"),
	ROW(-ETIMEDOUT, mutex_timeout, "shmkit_mutex_lock(held by another thread, 5 ms)"),
	ROW(-EPERM, mutex_unlock_other, "shmkit_mutex_unlock(held by another thread)"),
	ROW(NOCRASH, event_init_null, "shmkit_event_init(NULL)"),
	ROW(0, event_prepare_null, "shmkit_event_prepare(NULL)"),
	ROW(-EINVAL, event_wait_null, "shmkit_event_wait(NULL, 0, 0)"),
	ROW(-EINVAL, event_signal_null, "shmkit_event_signal(NULL, 0)"),
	ROW(-EAGAIN, event_wait_now, "shmkit_event_wait(ev, current, 0)"),
	ROW(-ETIMEDOUT, event_wait_timeout, "shmkit_event_wait(ev, current, 1 ms)"),
	/* blob */
	ROW(-EINVAL, blob_null_out, "shmkit_blob_open(name, 0, 0, 0, NULL)"),
	ROW(-EINVAL, blob_raw, "shmkit_blob_open(name, 0, 0, RAW, &b)"),
	ROW(-EINVAL, blob_huge, "shmkit_blob_open(new, 1<<45, 0, CREATE, &b)"),
	ROW(-EINVAL, blob_create_0, "shmkit_blob_open(new, 0, 0, CREATE, &b)"),
	ROW(-EPROTO, blob_not_blob, "shmkit_blob_open(a channel, ...)"),
	ROW(-EINVAL, blob_wrong_size, "shmkit_blob_open(200-byte blob, 100, ...)"),
	ROW(-ENOENT, blob_missing, "shmkit_blob_open(missing, 0, 0, 0, &b)"),
	ROW(-EINVAL, blob_write_null, "shmkit_blob_write(NULL, \"x\", 1)"),
	ROW(-EINVAL, blob_write_nullbuf, "shmkit_blob_write(b, NULL, 5)"),
	ROW(-EMSGSIZE, blob_write_big, "shmkit_blob_write(200-byte blob, buf, 201)"),
	ROW(-EBADF, blob_write_ro, "shmkit_blob_write(read-only handle, \"x\", 1)"),
	ROW(-EINVAL, blob_read_null, "shmkit_blob_read(NULL, buf, 8, NULL)"),
	ROW(-EINVAL, blob_read_nullbuf, "shmkit_blob_read(b, NULL, 5, NULL)"),
	ROW(-EINVAL, blob_version_null, "shmkit_blob_version(NULL)"),
	ROW(-EINVAL, blob_delete_null, "shmkit_blob_delete(NULL)"),
	ROW(-EIDRM, blob_read_deleted, "shmkit_blob_read(deleted blob, ...)"),
	ROW(-EIDRM, blob_write_deleted, "shmkit_blob_write(deleted blob, ...)"),
	ROW(-EIDRM, blob_version_deleted, "shmkit_blob_version(deleted blob)"),
	ROW(0, blob_close_null, "shmkit_blob_close(NULL)"),
	ROW(0, blob_size_null, "shmkit_blob_size(NULL)"),
	ROW(0, blob_seg_null, "shmkit_blob_seg(NULL) != NULL"),
	/* chan */
	ROW(-EINVAL, chan_null_out, "shmkit_chan_open(name, CONSUMER, 0, 0, 0, NULL)"),
	ROW(-EINVAL, chan_bad_role, "shmkit_chan_open(name, role 3, ...)"),
	ROW(-EINVAL, chan_rdonly, "shmkit_chan_open(..., RDONLY)"),
	ROW(-EINVAL, chan_raw, "shmkit_chan_open(..., RAW)"),
	ROW(-EINVAL, chan_huge, "shmkit_chan_open(new, PRODUCER, 1 GiB + 1, CREATE)"),
	ROW(-EINVAL, chan_wrong_cap, "shmkit_chan_open(4 KiB channel, CONSUMER, 8192, ...)"),
	ROW(-EPROTO, chan_not_chan, "shmkit_chan_open(a blob, CONSUMER, ...)"),
	ROW(-EBUSY, chan_busy, "shmkit_chan_open(PRODUCER held by a live process)"),
	ROW(-EINVAL, chan_send_null, "shmkit_chan_send(NULL, \"x\", 1, 0)"),
	ROW(-EINVAL, chan_send_consumer, "shmkit_chan_send(consumer, \"x\", 1, 0)"),
	ROW(-EINVAL, chan_send_0, "shmkit_chan_send(producer, \"x\", 0, 0)"),
	ROW(-EINVAL, chan_send_nullbuf, "shmkit_chan_send(producer, NULL, 1, 0)"),
	ROW(-EMSGSIZE, chan_send_big, "shmkit_chan_send(4 KiB ring, buf, 2049, 0)"),
	ROW(-EAGAIN, chan_send_full_now, "shmkit_chan_send(full ring, live consumer, 0)"),
	ROW(-ETIMEDOUT, chan_send_full_wait, "shmkit_chan_send(full ring, live consumer, 1 ms)"),
	ROW(-EINVAL, chan_sendv_0, "shmkit_chan_sendv(producer, msgs, 0, 0)"),
	ROW(-EINVAL, chan_sendv_null, "shmkit_chan_sendv(producer, NULL, 1, 0)"),
	ROW(-EINVAL, chan_sendv_empty, "shmkit_chan_sendv(producer, {1 byte, 0 bytes}, 2, 0)"),
	ROW(-EMSGSIZE, chan_sendv_big, "shmkit_chan_sendv(4 KiB ring, {1, 2049 bytes}, 2, 0)"),
	ROW(-EINVAL, chan_recv_null, "shmkit_chan_recv(NULL, buf, 8, 0)"),
	ROW(-EINVAL, chan_recv_producer, "shmkit_chan_recv(producer, buf, 8, 0)"),
	ROW(-EINVAL, chan_recv_nullbuf, "shmkit_chan_recv(consumer, NULL, 8, 0)"),
	ROW(-EAGAIN, chan_recv_empty_now, "shmkit_chan_recv(empty, live producer, 0)"),
	ROW(-ETIMEDOUT, chan_recv_empty_wait, "shmkit_chan_recv(empty, live producer, 1 ms)"),
	ROW(-EMSGSIZE, chan_recv_small, "shmkit_chan_recv(10-byte message, buf, 8, 0)"),
	ROW(-EINVAL, chan_peek_nullbuf, "shmkit_chan_peek(consumer, NULL, &len, 0)"),
	ROW(-EINVAL, chan_peek_nulllen, "shmkit_chan_peek(consumer, &buf, NULL, 0)"),
	ROW(-EINVAL, chan_release_none, "shmkit_chan_release(nothing peeked)"),
	ROW(-EINVAL, chan_reserve_0, "shmkit_chan_reserve(producer, 0, 0, &p)"),
	ROW(-EINVAL, chan_reserve_nullbuf, "shmkit_chan_reserve(producer, 8, 0, NULL)"),
	ROW(-EMSGSIZE, chan_reserve_big, "shmkit_chan_reserve(4 KiB ring, 2049, 0, &p)"),
	ROW(-EINVAL, chan_commit_none, "shmkit_chan_commit(no reservation, 8)"),
	ROW(-EINVAL, chan_commit_more, "shmkit_chan_commit(8 reserved, 9)"),
	ROW(-EINVAL, chan_fd_observer, "shmkit_chan_fd(observer)"),
	ROW(-EINVAL, chan_spin_null, "shmkit_chan_set_spin(NULL, 0)"),
	ROW(-EINVAL, chan_stats_null, "shmkit_chan_stats(NULL, &st)"),
	ROW(-EINVAL, chan_stats_nullst, "shmkit_chan_stats(observer, NULL)"),
	ROW(-EIDRM, chan_recv_deleted, "shmkit_chan_recv(deleted channel, buf, 8, 0)"),
	ROW(0, chan_close_null, "shmkit_chan_close(NULL)"),
	ROW(0, chan_seg_null, "shmkit_chan_seg(NULL) != NULL"),
	/* stream */
	ROW(-EINVAL, stream_null_out, "shmkit_stream_open(name, 0, GUEST, NULL)"),
	ROW(-EINVAL, stream_null_name, "shmkit_stream_open(NULL, 0, GUEST, &f)"),
	ROW(-EINVAL, stream_empty, "shmkit_stream_open(\"\", 0600, OWNER, &f)"),
	ROW(-EINVAL, stream_slash, "shmkit_stream_open(\"/\", 0600, OWNER, &f)"),
	ROW(-EINVAL, stream_dotdot, "shmkit_stream_open(\"/..\", 0600, OWNER, &f)"),
	ROW(-EINVAL, stream_no_role, "shmkit_stream_open(new, 0600, 0, &f)"),
	ROW(-EINVAL, stream_both, "shmkit_stream_open(new, 0600, OWNER|GUEST, &f)"),
	ROW(-EINVAL, stream_flag, "shmkit_stream_open(new, 0600, OWNER|8, &f)"),
	ROW(-ENAMETOOLONG, stream_long, "shmkit_stream_open(300-byte name, 0600, OWNER, &f)"),
	ROW(-EEXIST, stream_owner_exists, "shmkit_stream_open(existing, 0600, OWNER, &f)"),
	ROW(-ENOENT, stream_guest_missing, "shmkit_stream_open(missing, 0, GUEST, &f)"),
	ROW(-EINVAL, stream_mode_setid, "shmkit_stream_open(new, 07777, OWNER, &f)"),
	ROW(-EINVAL, stream_destroy_null, "shmkit_stream_destroy(NULL)"),
	ROW(-ENOENT, stream_destroy_missing, "shmkit_stream_destroy(missing)"),
	ROW(-ENAMETOOLONG, stream_destroy_long, "shmkit_stream_destroy(300-byte name)"),
	/* shmem (NULL / -1 and errno) */
	ROW(-EINVAL, shmem_open_null, "shmem_open(NULL, 64)"),
	ROW(-EINVAL, shmem_open_empty, "shmem_open(\"\", 64)"),
	ROW(-EINVAL, shmem_open_0, "shmem_open(path, 0)"),
	ROW(-EINVAL, shmem_open_size, "shmem_open(path of a 64-byte segment, 65)"),
	ROW(-EINVAL, shmem_close_null, "shmem_close(NULL)"),
	ROW(-EINVAL, shmem_close_nullh, "shmem_close(&(shmem_t *)NULL)"),
	ROW(-EINVAL, shmem_read_null, "shmem_read(NULL, buf, 64)"),
	ROW(-EINVAL, shmem_read_nulldata, "shmem_read(&h, NULL, 64)"),
	ROW(-EINVAL, shmem_read_small, "shmem_read(&h (64 bytes), buf, 63)"),
	ROW(-EINVAL, shmem_write_big, "shmem_write(&h (64 bytes), buf, 65)"),
	ROW(-EINVAL, shmem_write_null, "shmem_write(NULL, buf, 8)"),
	ROW(-EINVAL, shmem_delete_null, "shmem_delete(NULL)"),
	/* shmfile (NULL / -1 and errno) */
	ROW(-EINVAL, fshm_no_role, "fshm_open(new, 0600, 0)"),
	ROW(-EINVAL, fshm_both, "fshm_open(new, 0600, FSHM_OWNER|FSHM_GUEST)"),
	ROW(-EINVAL, fshm_null, "fshm_open(NULL, 0600, FSHM_GUEST)"),
	ROW(-EINVAL, fshm_empty, "fshm_open(\"\", 0600, FSHM_OWNER)"),
	ROW(-ENAMETOOLONG, fshm_long, "fshm_open(300-byte name, 0600, FSHM_OWNER)"),
	ROW(-EEXIST, fshm_exists, "fshm_open(existing, 0600, FSHM_OWNER)"),
	ROW(-ENOENT, fshm_missing, "fshm_open(missing, 0600, FSHM_GUEST)"),
	ROW(-EINVAL, fshm_destroy_null, "fshm_force_destroy(NULL)"),
	ROW(-ENOENT, fshm_destroy_missing, "fshm_force_destroy(missing)"),
	/* strerror, version */
	ROW(0, strerror_int_min, "shmkit_strerror(INT_MIN) == NULL"),
	ROW(0, strerror_unknown, "shmkit_strerror(123456) == NULL"),
	ROW(0, strerror_proto, "strcmp(shmkit_strerror(-EPROTO), shmkit_strerror(EPROTO))"),
	ROW(0, version_num, "shmkit_version() != SHMKIT_VERSION"),
	ROW(0, version_str, "strcmp(shmkit_version_string(), SHMKIT_VERSION_STRING)"),
};

/* What each child reports through shared memory. */
struct result {
	int done;
	long long got;
};

static int run_row(const struct row *r, struct result *res)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = t_fork_raw();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(10);
		res->got = r->fn();
		res->done = 1;
		/* Remove the names this child made; _exit: the handles a row leaves open
		 * (and the parent's, inherited) are not leaks to report. */
		close_row_handles();
		t_cleanup();
		_exit(T_PASS);
	}
	int st = t_wait(pid);
	if (st != T_PASS || !res->done) {
		if (st > 128)
			printf("FAIL %-60s expected %s, but the child died of signal %d (%s)\n", r->call,
			       r->expect == NOCRASH ? "no crash" : shmkit_strerror((int)r->expect),
			       st - 128, strsignal(st - 128));
		else
			printf("FAIL %-60s child exited %d before reporting\n", r->call, st);
		return 1;
	}
	if (r->expect == NOCRASH || res->got == r->expect)
		return 0;
	char want[64], got[64];
	snprintf(want, sizeof want, "%lld%s%s", r->expect, r->expect < 0 ? " " : "",
		 r->expect < 0 ? shmkit_strerror((int)r->expect) : "");
	snprintf(got, sizeof got, "%lld%s%s", res->got, res->got < 0 && res->got > -4096 ? " " : "",
		 res->got < 0 && res->got > -4096 ? shmkit_strerror((int)res->got) : "");
	printf("FAIL %-60s expected %s, got %s\n", r->call, want, got);
	return 1;
}

int main(void)
{
	shmkit_blob *b;
	shmkit_chan *c;
	FILE *f;
	n_data = t_name("data");
	n_blob = t_name("blob");
	n_chan = t_name("chan");
	n_sysv = t_name("sysv");
	n_stream = t_name("stream");
	n_missing = t_name("missing");
	memset(long_name, 'x', 300);
	long_name[0] = '/';
	snprintf(shmem_path, sizeof shmem_path, "/tmp/shmkit-test-%d-shmem", (int)getpid());

	CHECK_OK(shmkit_seg_open(n_data, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE, &data_seg));
	CHECK_OK(shmkit_seg_open(n_sysv, SHMKIT_KIND_DATA, 64, 0, SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV,
				 &sysv_seg));
	CHECK_OK(shmkit_blob_open(n_blob, 200, 0, SHMKIT_SEG_CREATE, &b));
	CHECK_OK(shmkit_chan_open(n_chan, SHMKIT_CHAN_OBSERVER, 4096, 0, SHMKIT_SEG_CREATE, &c));
	CHECK_OK(shmkit_stream_open(n_stream, 0600, SHMKIT_STREAM_OWNER, &f));
	shmem_t *h = shmem_open(shmem_path, 64);
	CHECK(h != NULL);

	struct result *res = mmap(NULL, sizeof rows / sizeof rows[0] * sizeof *res,
				  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(res != MAP_FAILED);
	int fails = 0, n = (int)(sizeof rows / sizeof rows[0]);
	for (int i = 0; i < n; i++)
		fails += run_row(&rows[i], &res[i]);
	printf("test_api_errors: %d invalid calls, %d gave another result\n", n, fails);

	CHECK_EQ(shmem_delete(&h), 0);
	unlink(shmem_path);
	fclose(f); /* the owner's close removes the stream */
	shmkit_chan_close(c);
	shmkit_blob_close(b);
	shmkit_seg_close(sysv_seg);
	shmkit_seg_close(data_seg);
	return fails ? T_FAIL : T_PASS;
}
