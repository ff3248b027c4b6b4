/* shmkit — named segments: POSIX (shm_open) and System V (shmget) backends, the
 * self-describing header, race-free creation and validating open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmkit/seg.h>
#include "internal.h"

/* How long an opener waits for a creator to publish READY. Creation is a handful of
 * system calls, so this only expires when the creator died or was stopped. */
#define OPEN_WAIT_NS (2 * SHMKIT_SEC)
/* How long a System V segment still being created may stay without its creator
 * attached, when the kernel cannot show us the creator (another pid namespace),
 * before it counts as abandoned. */
#define UNATTACHED_NS (500 * SHMKIT_MSEC)
/* Times create-or-open retries when the segment vanishes between its two steps. */
#define OPEN_RETRIES 16
/* The largest data area we accept: far beyond any real /dev/shm, small enough that
 * offset arithmetic cannot overflow. */
#define SIZE_LIMIT ((uint64_t)1 << 46)

#define ALL_FLAGS                                                                          \
	(SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL | SHMKIT_SEG_RDONLY | SHMKIT_SEG_SYSV |       \
	 SHMKIT_SEG_RAW | SHMKIT_SEG_PERSIST)
/* Where glibc's shm_open() keeps POSIX objects. */
#define SHM_DIR "/dev/shm"

/* Each kind's own layout version: a uint32_t at a fixed offset of the control block
 * that starts its data area, which every version of that kind keeps in place (the
 * policy in shmkit(7), COMPATIBILITY), and the version this library reads. The
 * numbers are the kinds' own constants, CHAN_VERSION (chan.c), TOPIC_VERSION
 * (topic.c) and BLOB_FORMAT (blob.c), repeated here so that the segment layer can
 * report them without opening the kind; tests/test_layout.c creates one segment of
 * each kind and fails when a number or an offset here differs from what the kind
 * writes. */
static const struct {
	unsigned kind;
	uint32_t off;     /* offset of the version word in the data area */
	uint32_t version; /* the one this library reads and writes */
} kind_layouts[] = {
	{SHMKIT_KIND_BLOB, 120, 2},
	{SHMKIT_KIND_CHAN, 8, 4},
	{SHMKIT_KIND_TOPIC, 8, 1},
};

struct shmkit_seg {
	unsigned flags;           /* the shmkit_seg_open() flags */
	int created;              /* 1 if this handle created the segment */
	int fd;                   /* POSIX descriptor, -1 for System V */
	int shmid;                /* System V id, -1 for POSIX */
	int32_t key;              /* System V key */
	int literal_key;          /* System V name was "0x..." or "id:N": no name check */
	int literal_id;           /* System V name was "id:N": N, else -1 */
	void *base;               /* start of the mapping */
	size_t map_size;          /* bytes mapped (the whole object) */
	struct shmkit__hdr *hdr;  /* == base, or NULL for a raw segment */
	unsigned char *data;      /* validated data area */
	size_t data_size;
	unsigned kind;            /* validated header kind, 0 for a raw segment */
	char name[SHMKIT_NAME_MAX + 1]; /* POSIX object name ("/x") or System V name */
	struct shmkit__guard_slot *guard; /* POSIX mappings: the SIGBUS guard's entry */
};

/* "/x" or "x" -> "/x"; one component, as shm_open(3) wants. */
static int posix_name(const char *name, char *out)
{
	const char *p = name[0] == '/' ? name + 1 : name;
	size_t n = strlen(p);
	if (n == 0 || strchr(p, '/') || !strcmp(p, ".") || !strcmp(p, ".."))
		return -EINVAL;
	if (n + 1 > SHMKIT_NAME_MAX)
		return -ENAMETOOLONG;
	out[0] = '/';
	memcpy(out + 1, p, n + 1);
	return 0;
}

/* FNV-1a: a stable key from the whole name, so that a name is independent of any file
 * (ftok() keys change when the file is recreated). Collisions are caught by the name
 * stored in the header. 0 is IPC_PRIVATE, which never names anything. */
static int32_t hash_key(const char *name)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return (int32_t)(h ? h : 1);
}

static int sysv_name(struct shmkit_seg *seg, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -EINVAL;
	if (n > SHMKIT_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(seg->name, name, n + 1);
	if (!strncmp(name, "id:", 3)) {
		size_t digits = strspn(name + 3, "0123456789");
		if (digits == 0 || digits > 10 || name[3 + digits] != '\0')
			return -EINVAL;
		long long id = strtoll(name + 3, NULL, 10);
		if (id > INT_MAX)
			return -EINVAL;
		seg->literal_id = (int)id;
		seg->literal_key = 1;
		return 0;
	}
	if (name[0] == '0' && (name[1] == 'x' || name[1] == 'X')) {
		size_t digits = strspn(name + 2, "0123456789abcdefABCDEF");
		if (digits == 0 || digits > 8 || name[2 + digits] != '\0')
			return -EINVAL;
		uint32_t k = (uint32_t)strtoul(name + 2, NULL, 16);
		if (k == 0)
			return -EINVAL; /* IPC_PRIVATE */
		seg->key = (int32_t)k;
		seg->literal_key = 1;
		return 0;
	}
	seg->key = hash_key(name);
	return 0;
}

static void unmap(struct shmkit_seg *seg)
{
	if (!seg->base)
		return;
	shmkit__guard_remove(seg->guard);
	seg->guard = NULL;
	if (seg->flags & SHMKIT_SEG_SYSV)
		shmdt(seg->base);
	else
		munmap(seg->base, seg->map_size);
	seg->base = NULL;
	seg->hdr = NULL;
}

/* Remove the POSIX name only if it still names the object behind fd: a segment
 * deleted and created anew by someone else must not be removed by a stale handle. */
static int posix_unlink_same(const char *name, int fd)
{
	struct stat a, b;
	char path[SHMKIT_NAME_MAX + 16];
	snprintf(path, sizeof path, SHM_DIR "%s", name);
	if (fstat(fd, &a) < 0)
		return -errno;
	if (stat(path, &b) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return 0;
	if (shm_unlink(name) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

/* A name the header can hold, copied with a bound: the source may be a header that a
 * peer rewrites while we copy, so no terminator in it is trusted. */
static void copy_name(char *dst, const char *src)
{
	size_t n = 0;
	while (n < SHMKIT_NAME_MAX && __atomic_load_n(&src[n], __ATOMIC_RELAXED))
		n++;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int fill_header(struct shmkit__hdr *h, const struct shmkit_seg *seg, unsigned kind,
		       size_t size, size_t total)
{
	struct timespec ts;
	uint64_t tok;
	int r = shmkit__live_token(&tok);
	if (r < 0)
		return r;
	/* Liveness first: an opener that finds a System V segment stuck in INIT uses the
	 * token to tell a slow creator from a dead one. */
	__atomic_store_n(&h->creator_token, tok, __ATOMIC_RELAXED);
	__atomic_store_n(&h->creator_pid, getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&h->magic, SHMKIT_MAGIC, __ATOMIC_RELAXED);
	h->flags = (seg->flags & SHMKIT_SEG_PERSIST) ? SHMKIT_HDR_PERSIST : 0;
	h->layout = SHMKIT_LAYOUT;
	h->kind = kind;
	h->hdr_size = sizeof *h;
	h->total_size = total;
	h->data_off = SHMKIT_DATA_OFF;
	h->data_size = size;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->ctime_ns = (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
	copy_name(h->name, seg->name);
	return 0;
}

/* Whether a POSIX name exists (without following a planted symlink). */
static int posix_exists(const char *name)
{
	char path[SHMKIT_NAME_MAX + 16];
	struct stat st;
	snprintf(path, sizeof path, SHM_DIR "%s", name);
	return lstat(path, &st) == 0;
}

/* Give the complete nameless object behind fd its name, atomically: -EEXIST if the
 * name is taken, exactly as O_EXCL would have said. */
static int link_name(int fd, const char *name)
{
	char path[SHMKIT_NAME_MAX + 16], self[32];
	snprintf(path, sizeof path, SHM_DIR "%s", name);
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd serves everyone else. */
	if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno == EEXIST)
		return -EEXIST;
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

/* The creator's half: header, initializer, then READY. */
static int publish(struct shmkit_seg *seg, unsigned kind, size_t size, shmkit__init_fn init,
		   void *arg)
{
	if (seg->flags & SHMKIT_SEG_RAW) {
		seg->data = seg->base;
		seg->data_size = size;
		return 0;
	}
	seg->hdr = seg->base;
	seg->data = (unsigned char *)seg->base + SHMKIT_DATA_OFF;
	seg->data_size = size;
	seg->kind = kind;
	int r = fill_header(seg->hdr, seg, kind, size, seg->map_size);
	if (r == 0 && init)
		r = init(seg->data, size, arg);
	if (r < 0)
		return r;
	/* Pairs with the acquire load in wait_ready(): every header and data byte written
	 * above is visible to an opener that sees READY. */
	atomic_store_explicit(&seg->hdr->state, SHMKIT_STATE_READY, memory_order_release);
	return 0;
}

static int create_posix(struct shmkit_seg *seg, unsigned kind, size_t size, unsigned mode,
			shmkit__init_fn init, void *arg)
{
	size_t total = (seg->flags & SHMKIT_SEG_RAW) ? size : SHMKIT_DATA_OFF + size;
	int r;
	/* Made without a name and named only once complete: a creator killed at any
	 * instant leaves nothing under the name (the kernel frees a nameless object with
	 * its last descriptor), and an opener never meets a half-made segment. */
	int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	seg->fd = fd;
	/* open's mode is reduced by the umask; fchmod applies the caller's exactly. A
	 * persistent segment also gets the sticky bit (meaningless on a file otherwise):
	 * only its owner can change a mode, so unlike a header word, no peer that may
	 * write the segment can take that mark away and expose it to gc. */
	mode_t m = mode | ((seg->flags & SHMKIT_SEG_PERSIST) ? S_ISVTX : 0);
	if (fchmod(fd, m) < 0 || ftruncate(fd, (off_t)total) < 0) {
		r = -errno;
		goto fail;
	}
	/* Reserve the pages now: on a small /dev/shm this fails with ENOSPC here instead of
	 * SIGBUS at the first touch of an unbacked page. */
	do
		r = posix_fallocate(fd, 0, (off_t)total);
	while (r == EINTR);
	if (r) {
		r = -r;
		goto fail;
	}
	seg->base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (seg->base == MAP_FAILED) {
		seg->base = NULL;
		r = -errno;
		goto fail;
	}
	seg->map_size = total;
	/* A file can be truncated under us: let the SIGBUS guard know the mapping. */
	r = shmkit__guard_add(seg->base, total, PROT_READ | PROT_WRITE,
			      !(seg->flags & SHMKIT_SEG_RAW), &seg->guard);
	if (r < 0)
		goto fail;
	r = publish(seg, kind, size, init, arg);
	if (r == 0)
		r = link_name(fd, seg->name);
	if (r < 0)
		goto fail;
	/* Who made it, where no peer that may write the segment can rewrite it. */
	shmkit__live_bind(fd);
	seg->created = 1;
	return 0;
fail:
	unmap(seg);
	close(fd);
	seg->fd = -1;
	return r;
}

static int create_sysv(struct shmkit_seg *seg, unsigned kind, size_t size, unsigned mode,
		       shmkit__init_fn init, void *arg)
{
	size_t total = (seg->flags & SHMKIT_SEG_RAW) ? size : SHMKIT_DATA_OFF + size;
	int r;
	/* System V permissions are not reduced by the umask: mode applies as given. */
	int id = shmget(seg->key, total, IPC_CREAT | IPC_EXCL | (int)mode);
	if (id < 0)
		return -errno;
	seg->shmid = id;
	seg->base = shmat(id, NULL, 0);
	if (seg->base == (void *)-1) {
		seg->base = NULL;
		r = -errno;
		goto fail;
	}
	seg->map_size = total;
	r = publish(seg, kind, size, init, arg);
	if (r < 0)
		goto fail;
	seg->created = 1;
	return 0;
fail:
	unmap(seg);
	shmctl(id, IPC_RMID, NULL);
	seg->shmid = -1;
	return r;
}

/* Whether the creator of a segment still in INIT is gone for good. Decided by what
 * the kernel proves: the creator's token (live.c), which it writes before anything
 * else; for System V also the kernel's own accounting, which covers a creator killed
 * before it wrote a word: it attaches right after shmget() and stays attached until
 * it publishes, so a segment nobody else is attached to, whose creator the kernel
 * shows dead (or, when the creator is not visible from our pid namespace, that stays
 * unattached for UNATTACHED_NS while we wait), will never be finished.
 * *unattached_since: when we first saw it so, or 0. */
static int creator_gone(const struct shmkit_seg *seg, const struct shmkit__hdr *h,
			int64_t *unattached_since)
{
	uint64_t tok = __atomic_load_n(&h->creator_token, __ATOMIC_RELAXED);
	int alive = tok ? shmkit__live_check(tok) : -1;
	if (alive >= 0)
		return !alive;
	if (!(seg->flags & SHMKIT_SEG_SYSV))
		return 0;
	struct shmid_ds ds;
	if (shmctl(seg->shmid, IPC_STAT, &ds) < 0 || ds.shm_nattch > 1) { /* 1: ourselves */
		*unattached_since = 0;
		return 0;
	}
	/* shm_cpid is translated into our pid namespace: 0 when not visible from it. */
	if (ds.shm_cpid > 0 && kill(ds.shm_cpid, 0) < 0 && errno == ESRCH)
		return 1;
	/* A live creator is attached within microseconds of shmget(). */
	int64_t now = shmkit__now_ns();
	if (*unattached_since == 0)
		*unattached_since = now;
	return now - *unattached_since >= UNATTACHED_NS;
}

/* Wait, bounded, for the creator to publish READY; then the header may be read.
 * Returns 0, -ENOENT (deleted: as if absent), -EPROTO (not ours), -ETIMEDOUT,
 * or -EOWNERDEAD (the creator died before finishing). */
static int wait_ready(const struct shmkit_seg *seg, int64_t deadline)
{
	const struct shmkit__hdr *h = seg->hdr;
	int64_t unattached_since = 0;
	for (unsigned spins = 0;; spins++) {
		/* Pairs with the release store in publish(). */
		uint32_t st = atomic_load_explicit(&h->state, memory_order_acquire);
		if (st == SHMKIT_STATE_READY)
			return 0;
		if (st == SHMKIT_STATE_DELETED)
			return -ENOENT;
		uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
		/* Anything not ours will never become READY: refuse at once. A POSIX
		 * segment is named only once complete, so one without our magic is foreign;
		 * a System V one may still be waiting for its creator's first store. */
		if (st != SHMKIT_STATE_INIT || (magic != 0 && magic != SHMKIT_MAGIC) ||
		    (magic == 0 && !(seg->flags & SHMKIT_SEG_SYSV)))
			return -EPROTO;
		/* The creator may have published and exited since we loaded state: only a
		 * state read after its death is final, since the dead write nothing more. */
		if (spins >= 16 && creator_gone(seg, h, &unattached_since) &&
		    atomic_load_explicit(&h->state, memory_order_acquire) == SHMKIT_STATE_INIT)
			return -EOWNERDEAD;
		/* Still INIT: a System V creation that has not finished (POSIX never gets
		 * here with a zero magic). */
		if (shmkit__now_ns() > deadline)
			return -ETIMEDOUT;
		if (spins < 64) {
			shmkit__cpu_relax();
		} else {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
		}
	}
}

/* Everything in a READY header, checked against the object's real size before the
 * layers above may use any of it. */
static int validate(struct shmkit_seg *seg, unsigned kind, size_t size)
{
	const struct shmkit__hdr *h = seg->hdr;
	if (h->magic != SHMKIT_MAGIC || h->layout != SHMKIT_LAYOUT || h->hdr_size != sizeof *h)
		return -EPROTO;
	if (h->total_size != seg->map_size || h->data_off < sizeof *h ||
	    h->data_off % SHMKIT_CACHELINE || h->data_off > h->total_size ||
	    h->data_size > h->total_size - h->data_off)
		return -EPROTO;
	if (h->kind < SHMKIT_KIND_DATA || h->kind > SHMKIT_KIND_TOPIC ||
	    (h->flags & ~SHMKIT_HDR_PERSIST))
		return -EPROTO;
	if (!memchr(h->name, '\0', sizeof h->name))
		return -EPROTO;
	if (!seg->literal_key && strcmp(h->name, seg->name) != 0)
		return (seg->flags & SHMKIT_SEG_SYSV) ? -EADDRINUSE : -EPROTO;
	if (kind != SHMKIT_KIND_ANY && h->kind != kind)
		return -EPROTO;
	if (size && h->data_size != size)
		return -EINVAL;
	seg->data = (unsigned char *)seg->base + h->data_off;
	seg->data_size = (size_t)h->data_size;
	seg->kind = h->kind;
	return 0;
}

static int map_posix(struct shmkit_seg *seg, size_t size)
{
	int ro = seg->flags & SHMKIT_SEG_RDONLY;
	struct stat st;
	if (fstat(seg->fd, &st) < 0)
		return -errno;
	/* Only complete segments are ever named (create_posix), so a short one is foreign. */
	if (!S_ISREG(st.st_mode) ||
	    (!(seg->flags & SHMKIT_SEG_RAW) && (uint64_t)st.st_size < SHMKIT_DATA_OFF))
		return -EPROTO;
	if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_LIMIT + SHMKIT_DATA_OFF)
		return (seg->flags & SHMKIT_SEG_RAW) ? -EINVAL : -EPROTO;
	if ((seg->flags & SHMKIT_SEG_RAW) && size > (uint64_t)st.st_size)
		return -EINVAL;
	seg->base = mmap(NULL, (size_t)st.st_size, ro ? PROT_READ : PROT_READ | PROT_WRITE,
			 MAP_SHARED, seg->fd, 0);
	if (seg->base == MAP_FAILED) {
		seg->base = NULL;
		return -errno;
	}
	seg->map_size = (size_t)st.st_size;
	/* Before any access: the file can be truncated under us (the SIGBUS guard). */
	return shmkit__guard_add(seg->base, seg->map_size, ro ? PROT_READ : PROT_READ | PROT_WRITE,
				 !(seg->flags & SHMKIT_SEG_RAW), &seg->guard);
}

static int map_sysv(struct shmkit_seg *seg, size_t size)
{
	struct shmid_ds ds;
	int id = seg->literal_id >= 0 ? seg->literal_id : shmget(seg->key, 0, 0);
	if (id < 0)
		return -errno;
	seg->shmid = id;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return (errno == EINVAL || errno == EIDRM) ? -ENOENT : -errno;
	seg->key = ds.shm_perm.__key;
	if ((seg->flags & SHMKIT_SEG_RAW) && size > ds.shm_segsz)
		return -EINVAL;
	if (!(seg->flags & SHMKIT_SEG_RAW) && ds.shm_segsz < SHMKIT_DATA_OFF)
		return -EPROTO;
	seg->base = shmat(id, NULL, (seg->flags & SHMKIT_SEG_RDONLY) ? SHM_RDONLY : 0);
	if (seg->base == (void *)-1) {
		seg->base = NULL;
		/* Removed between shmget and shmat: as if it never existed. */
		return (errno == EINVAL || errno == EIDRM) ? -ENOENT : -errno;
	}
	seg->map_size = ds.shm_segsz;
	return 0;
}

/* Remove a segment whose creator died before publishing it, so that create-or-open
 * can make a new one instead of waiting on it forever. */
static void remove_abandoned(struct shmkit_seg *seg)
{
	if (seg->flags & SHMKIT_SEG_SYSV)
		shmctl(seg->shmid, IPC_RMID, NULL);
	else
		posix_unlink_same(seg->name, seg->fd);
}

static void release(struct shmkit_seg *seg)
{
	unmap(seg);
	if (seg->fd >= 0)
		close(seg->fd);
	seg->fd = -1;
	seg->shmid = -1;
}

static int open_existing(struct shmkit_seg *seg, unsigned kind, size_t size)
{
	int64_t deadline = shmkit__now_ns() + OPEN_WAIT_NS;
	int r;
	if (seg->flags & SHMKIT_SEG_SYSV) {
		r = map_sysv(seg, size);
	} else {
		int fd = shm_open(seg->name,
				  ((seg->flags & SHMKIT_SEG_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		seg->fd = fd;
		r = map_posix(seg, size);
	}
	if (r < 0)
		goto fail;
	if (seg->flags & SHMKIT_SEG_RAW) {
		seg->data = seg->base;
		seg->data_size = size ? size : seg->map_size;
		return 0;
	}
	seg->hdr = seg->base;
	r = wait_ready(seg, deadline);
	if (r == -EOWNERDEAD) {
		/* Never finished: as if absent; create-or-open clears the name and creates. */
		if (seg->flags & SHMKIT_SEG_CREATE)
			remove_abandoned(seg);
		r = -ENOENT;
	}
	if (r == 0)
		r = validate(seg, kind, size);
	if (r == 0)
		return 0;
fail:
	release(seg);
	return r;
}

static int seg_open(const char *name, unsigned kind, size_t size, unsigned mode, unsigned flags,
		    shmkit__init_fn init, void *arg, shmkit_seg **out)
{
	int r;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name || (flags & ~ALL_FLAGS) || (mode & ~0777u))
		return -EINVAL;
	if ((flags & SHMKIT_SEG_EXCL) && !(flags & SHMKIT_SEG_CREATE))
		return -EINVAL;
	if ((flags & SHMKIT_SEG_RDONLY) && (flags & SHMKIT_SEG_CREATE))
		return -EINVAL;
	if (kind > SHMKIT_KIND_TOPIC || ((flags & SHMKIT_SEG_CREATE) && kind == SHMKIT_KIND_ANY))
		return -EINVAL;
	if ((flags & SHMKIT_SEG_RAW) && kind != SHMKIT_KIND_ANY && kind != SHMKIT_KIND_DATA)
		return -EINVAL;
	if (((flags & SHMKIT_SEG_CREATE) && size == 0) || size > SIZE_LIMIT)
		return -EINVAL;
	if (mode == 0)
		mode = 0600;

	struct shmkit_seg *seg = calloc(1, sizeof *seg);
	if (!seg)
		return -ENOMEM;
	seg->flags = flags;
	seg->fd = -1;
	seg->shmid = -1;
	seg->literal_id = -1;
	r = (flags & SHMKIT_SEG_SYSV) ? sysv_name(seg, name) : posix_name(name, seg->name);
	if (r < 0)
		goto fail;
	if ((flags & SHMKIT_SEG_CREATE) && seg->literal_key &&
	    (!(flags & SHMKIT_SEG_RAW) || seg->literal_id >= 0)) {
		r = -EINVAL; /* a shmkit segment is found again by its name, never by a key */
		goto fail;
	}

	for (int attempt = 0; attempt < OPEN_RETRIES; attempt++) {
		/* A POSIX creator builds its segment before it learns whether the name is
		 * free; look first, so that the initializer runs only when creating is
		 * likely to win (a lost race discards the new segment, initializer's work
		 * and all). */
		if ((flags & SHMKIT_SEG_CREATE) && !(flags & SHMKIT_SEG_SYSV) && posix_exists(seg->name)) {
			if (flags & SHMKIT_SEG_EXCL) {
				r = -EEXIST;
				break;
			}
			r = open_existing(seg, kind, size);
			if (r != -ENOENT)
				break;
		}
		if (flags & SHMKIT_SEG_CREATE) {
			r = (flags & SHMKIT_SEG_SYSV) ? create_sysv(seg, kind, size, mode, init, arg)
						      : create_posix(seg, kind, size, mode, init, arg);
			if (r != -EEXIST || (flags & SHMKIT_SEG_EXCL))
				break;
		}
		r = open_existing(seg, kind, size);
		/* Vanished between our create and open attempts: try creating again. */
		if (r != -ENOENT || !(flags & SHMKIT_SEG_CREATE))
			break;
	}
	if (r < 0)
		goto fail;
	*out = seg;
	return 0;
fail:
	free(seg);
	return r;
}

/* Opening reads the header and the creator writes it: both guarded. A handle that met a
 * truncation on the way is no handle (-EFAULT). */
int shmkit__seg_open(const char *name, unsigned kind, size_t size, unsigned mode, unsigned flags,
		     shmkit__init_fn init, void *arg, shmkit_seg **out)
{
	shmkit__guard_enter();
	int r = seg_open(name, kind, size, mode, flags, init, arg, out);
	if (shmkit__guard_result(r == 0 ? *out : NULL, r) == -EFAULT) {
		if (r == 0)
			shmkit_seg_close(*out);
		*out = NULL;
		r = -EFAULT;
	}
	return r;
}

int shmkit_seg_open(const char *name, unsigned kind, size_t size, unsigned mode, unsigned flags,
		    shmkit_seg **out)
{
	return shmkit__seg_open(name, kind, size, mode, flags, NULL, NULL, out);
}

int shmkit_seg_open_init(const char *name, unsigned kind, size_t size, unsigned mode,
			 unsigned flags, shmkit_seg_init_fn init, void *arg, shmkit_seg **out)
{
	return shmkit__seg_open(name, kind, size, mode, flags, init, arg, out);
}

int shmkit_seg_close(shmkit_seg *seg)
{
	if (!seg)
		return 0;
	release(seg);
	free(seg);
	return 0;
}

static void mark_deleted(shmkit_seg *seg)
{
	/* Every handle's next check sees this; release orders it after whatever this
	 * process wrote before deleting. */
	if (seg->hdr && !(seg->flags & SHMKIT_SEG_RDONLY))
		atomic_store_explicit(&seg->hdr->state, SHMKIT_STATE_DELETED, memory_order_release);
}

int shmkit_seg_delete(shmkit_seg *seg)
{
	if (!seg)
		return -EINVAL;
	/* Remove the name first and mark the header after: a failed removal (EACCES)
	 * then leaves the segment fully usable instead of half deleted. */
	if (seg->flags & SHMKIT_SEG_SYSV) {
		if (shmctl(seg->shmid, IPC_RMID, NULL) < 0 && errno != EINVAL && errno != EIDRM)
			return -errno;
	} else {
		int r = posix_unlink_same(seg->name, seg->fd);
		if (r < 0)
			return r;
		struct stat st;
		if (fstat(seg->fd, &st) == 0)
			shmkit__live_unbind((uint64_t)st.st_ino);
	}
	/* A poisoned handle's store lands in its private replacement: harmless, and the
	 * name is gone, which is what deleting a truncated segment is for. */
	shmkit__guard_enter();
	mark_deleted(seg);
	shmkit__guard_leave();
	return 0;
}

int shmkit_seg_unlink(const char *name, unsigned flags)
{
	shmkit_seg *seg;
	struct shmkit_seg tmp = {.flags = flags, .literal_id = -1};
	if (!name || (flags & ~(SHMKIT_SEG_SYSV | SHMKIT_SEG_RAW)))
		return -EINVAL;
	int r = (flags & SHMKIT_SEG_SYSV) ? sysv_name(&tmp, name) : posix_name(name, tmp.name);
	if (r < 0)
		return r;
	r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, flags, &seg);
	if (r == 0) {
		r = shmkit_seg_delete(seg);
		shmkit_seg_close(seg);
		return r;
	}
	/* A System V key that belongs to another name: not ours to remove. */
	if (r == -EADDRINUSE)
		return r;
	/* Anything else that still has the name — foreign, corrupt, empty, or a creation
	 * its creator abandoned (which opens as absent) — is removed by name, untouched. */
	if (flags & SHMKIT_SEG_SYSV) {
		int id = tmp.literal_id >= 0 ? tmp.literal_id : shmget(tmp.key, 0, 0);
		if (id < 0 || shmctl(id, IPC_RMID, NULL) < 0)
			return (errno == EINVAL || errno == EIDRM) ? -ENOENT : -errno;
		return 0;
	}
	return shm_unlink(tmp.name) < 0 ? -errno : 0;
}

int shmkit_seg_unlink_fd(int fd, const char *name)
{
	char obj[SHMKIT_NAME_MAX + 1], path[SHMKIT_NAME_MAX + 16];
	struct stat a, b;
	if (fd < 0 || !name)
		return -EINVAL;
	int r = posix_name(name, obj);
	if (r < 0)
		return r;
	if (fstat(fd, &a) < 0)
		return -errno;
	snprintf(path, sizeof path, SHM_DIR "%s", obj);
	if (lstat(path, &b) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ENOENT; /* the name is another object's now */
	if (unlink(path) < 0)
		return -errno;
	shmkit__live_unbind((uint64_t)a.st_ino);
	/* Mark it deleted through a mapping of fd, opening nothing: whoever opened the
	 * name just before (held back by the caller's lease) finds it deleted and treats
	 * it as absent. Only a shmkit header of this layout is written to. */
	if ((uint64_t)a.st_size < SHMKIT_DATA_OFF)
		return 0;
	void *m = mmap(NULL, SHMKIT_DATA_OFF, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 0; /* read-only descriptor: the name is gone all the same */
	struct shmkit__hdr *h = m;
	if (__atomic_load_n(&h->magic, __ATOMIC_RELAXED) == SHMKIT_MAGIC &&
	    __atomic_load_n(&h->layout, __ATOMIC_RELAXED) == SHMKIT_LAYOUT)
		/* Release, as mark_deleted(): pairs with the openers' acquire of state. */
		atomic_store_explicit(&h->state, SHMKIT_STATE_DELETED, memory_order_release);
	munmap(m, SHMKIT_DATA_OFF);
	return 0;
}

void *shmkit_seg_data(const shmkit_seg *seg)
{
	return seg ? seg->data : NULL;
}

size_t shmkit_seg_size(const shmkit_seg *seg)
{
	return seg ? seg->data_size : 0;
}

size_t shmkit_seg_used(const shmkit_seg *seg)
{
	if (!seg)
		return 0;
	if (!seg->hdr || seg->kind != SHMKIT_KIND_DATA)
		return seg->data_size;
	shmkit__guard_enter();
	/* Acquire pairs with the release in shmkit_seg_set_used(): the bytes it covers. */
	uint64_t u = atomic_load_explicit(&seg->hdr->used, memory_order_acquire);
	if (shmkit__guard_leave())
		return 0; /* truncated under us: nothing to read */
	if (!(u & SHMKIT__USED_SET))
		return seg->data_size;
	u &= ~SHMKIT__USED_SET;
	return u < seg->data_size ? (size_t)u : seg->data_size;
}

int shmkit_seg_set_used(shmkit_seg *seg, size_t len)
{
	if (!seg || !seg->hdr || seg->kind != SHMKIT_KIND_DATA || len > seg->data_size)
		return -EINVAL;
	if (seg->flags & SHMKIT_SEG_RDONLY)
		return -EACCES;
	int r = shmkit_seg_check(seg);
	if (r < 0)
		return r;
	shmkit__guard_enter();
	/* Release: a reader that sees the length sees the bytes written before it. */
	atomic_store_explicit(&seg->hdr->used, SHMKIT__USED_SET | (uint64_t)len,
			      memory_order_release);
	return shmkit__guard_leave() ? -EFAULT : 0;
}

int shmkit_seg_check(const shmkit_seg *seg)
{
	if (!seg)
		return -EINVAL;
	if (!seg->hdr)
		return shmkit__seg_poisoned(seg) ? -EFAULT : 0;
	shmkit__guard_enter();
	/* Acquire: once DELETED is seen, nothing the deleter did before is missed. */
	uint32_t st = atomic_load_explicit(&seg->hdr->state, memory_order_acquire);
	shmkit__guard_leave();
	/* A replaced mapping's header says DELETED, so READY needs no poison check. */
	if (st == SHMKIT_STATE_READY)
		return 0;
	if (shmkit__seg_poisoned(seg))
		return -EFAULT;
	return st == SHMKIT_STATE_DELETED ? -EIDRM : 0;
}

int shmkit_seg_created(const shmkit_seg *seg)
{
	return seg ? seg->created : 0;
}

int shmkit_seg_fd(const shmkit_seg *seg)
{
	if (!seg)
		return -EINVAL;
	return seg->fd >= 0 ? seg->fd : -ENOTSUP;
}

struct shmkit__hdr *shmkit__seg_hdr(const shmkit_seg *seg)
{
	return seg->hdr;
}

/* For shmkit_seg_stat(): 1 alive, 0 dead, -1 unknown, from the creator's token lock;
 * for System V the kernel's creator pid can also prove it alive, and a token that
 * says dead is believed only when the kernel does not show the creator alive. */
static int creator_alive(const struct shmkit_seg *seg, const struct shmkit__hdr *h)
{
	/* POSIX: the creator's binding (live.c), never the header's token, which anyone
	 * who may write the segment can rewrite to name nobody. No binding: unknown. */
	if (!(seg->flags & SHMKIT_SEG_SYSV)) {
		struct stat st;
		if (fstat(seg->fd, &st) < 0)
			return -1;
		int r = shmkit__live_owner((uint64_t)st.st_ino, st.st_uid);
		return r < 0 ? -1 : r;
	}
	uint64_t tok = __atomic_load_n(&h->creator_token, __ATOMIC_RELAXED);
	int alive = shmkit__live_check(tok);
	if (alive < 0)
		alive = -1;
	if (alive != 1 && (seg->flags & SHMKIT_SEG_SYSV)) {
		struct shmid_ds ds;
		if (shmctl(seg->shmid, IPC_STAT, &ds) == 0 && ds.shm_cpid > 0 &&
		    (kill(ds.shm_cpid, 0) == 0 || errno == EPERM))
			alive = -1; /* a process with the creator's pid lives: perhaps it */
	}
	return alive;
}

int shmkit__seg_poisoned(const shmkit_seg *seg)
{
	return shmkit__guard_poisoned(seg->guard);
}

static int seg_stat(const shmkit_seg *seg, struct shmkit_seg_info *info);

/* The header's words are copied out: guarded, and none is reported from a replaced
 * mapping. */
int shmkit_seg_stat(const shmkit_seg *seg, struct shmkit_seg_info *info)
{
	shmkit__guard_enter();
	int r = seg_stat(seg, info);
	r = (int)shmkit__guard_result(seg, r);
	if (r == -EFAULT && info)
		memset(info, 0, sizeof *info);
	return r;
}

static int seg_stat(const shmkit_seg *seg, struct shmkit_seg_info *info)
{
	if (!seg || !info)
		return -EINVAL;
	memset(info, 0, sizeof *info);
	info->sysv = (seg->flags & SHMKIT_SEG_SYSV) ? 1 : 0;
	info->shmid = seg->shmid;
	info->key = (seg->flags & SHMKIT_SEG_SYSV) ? seg->key : 0;
	info->total_size = seg->map_size;
	info->data_size = seg->data_size;
	info->creator_alive = -1;
	copy_name(info->name, seg->name);
	if (seg->flags & SHMKIT_SEG_SYSV) {
		struct shmid_ds ds;
		if (shmctl(seg->shmid, IPC_STAT, &ds) < 0)
			return -errno;
		info->nattch = (int32_t)ds.shm_nattch;
		info->mode = ds.shm_perm.mode & 0777;
		info->uid = ds.shm_perm.uid;
		info->gid = ds.shm_perm.gid;
		info->total_size = ds.shm_segsz;
	} else {
		struct stat st;
		info->nattch = -1;
		if (fstat(seg->fd, &st) < 0)
			return -errno;
		info->mode = st.st_mode & 0777;
		info->persistent = (st.st_mode & S_ISVTX) != 0; /* the owner's mark: see create_posix() */
		info->uid = st.st_uid;
		info->gid = st.st_gid;
		info->total_size = (uint64_t)st.st_size;
	}
	if (!seg->hdr) {
		info->kind = SHMKIT_KIND_RAW;
		info->state = SHMKIT_STATE_READY;
		return 0;
	}
	/* Every word below may be rewritten by a peer as we read it: each is reported as
	 * read, for a person to judge, and only the name is used, with a bound. */
	const struct shmkit__hdr *h = seg->hdr;
	info->kind = __atomic_load_n(&h->kind, __ATOMIC_RELAXED);
	info->state = atomic_load_explicit(&h->state, memory_order_acquire);
	info->creator_pid = __atomic_load_n(&h->creator_pid, __ATOMIC_RELAXED);
	/* System V has no mode bit to spare: its mark is the header's. */
	if (seg->flags & SHMKIT_SEG_SYSV)
		info->persistent = (__atomic_load_n(&h->flags, __ATOMIC_RELAXED) & SHMKIT_HDR_PERSIST) != 0;
	info->creator_alive = creator_alive(seg, h);
	info->ctime_ns = __atomic_load_n(&h->ctime_ns, __ATOMIC_RELAXED);
	info->data_size = __atomic_load_n(&h->data_size, __ATOMIC_RELAXED);
	if (seg->flags & SHMKIT_SEG_SYSV)
		copy_name(info->name, h->name); /* the name behind the key */
	info->layout = SHMKIT_LAYOUT; /* a handle has a header only in this layout */
	/* The kind's version word, where this layout puts the data area: the offsets are
	 * ours, only the word is the segment's, and it is only reported. */
	for (size_t i = 0; i < sizeof kind_layouts / sizeof kind_layouts[0]; i++)
		if (kind_layouts[i].kind == info->kind &&
		    seg->map_size >= SHMKIT_DATA_OFF + kind_layouts[i].off + sizeof(uint32_t))
			info->kind_layout = __atomic_load_n(
				(const uint32_t *)((const unsigned char *)seg->base + SHMKIT_DATA_OFF +
						   kind_layouts[i].off),
				__ATOMIC_RELAXED);
	return 0;
}

uint32_t shmkit_seg_layout(unsigned kind)
{
	if (kind == SHMKIT_KIND_ANY)
		return SHMKIT_LAYOUT;
	for (size_t i = 0; i < sizeof kind_layouts / sizeof kind_layouts[0]; i++)
		if (kind_layouts[i].kind == kind)
			return kind_layouts[i].version;
	return 0;
}

static int seg_inspect(const char *name, unsigned flags, struct shmkit_seg_info *info);

int shmkit_seg_inspect(const char *name, unsigned flags, struct shmkit_seg_info *info)
{
	shmkit__guard_enter();
	int r = seg_inspect(name, flags, info);
	r = (int)shmkit__guard_result(NULL, r);
	if (r == -EFAULT && info)
		memset(info, 0, sizeof *info);
	return r;
}

static int seg_inspect(const char *name, unsigned flags, struct shmkit_seg_info *info)
{
	shmkit_seg *seg;
	if (!info || (flags & ~SHMKIT_SEG_SYSV))
		return -EINVAL;
	/* RAW: map whatever is there without waiting for or trusting a header. */
	int r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0, flags | SHMKIT_SEG_RAW | SHMKIT_SEG_RDONLY,
				&seg);
	if (r < 0)
		return r;
	/* Report the header only when it is one of ours, in this layout; the sizes are reported as they are, for a person to judge. */
	const struct shmkit__hdr *h = seg->base;
	uint32_t layout = 0;
	if (seg->map_size >= SHMKIT_DATA_OFF && h->magic == SHMKIT_MAGIC) {
		/* Every layout keeps the magic and the layout word where they are, so a
		 * header of another one is still recognised, and its word reported. */
		layout = __atomic_load_n(&h->layout, __ATOMIC_RELAXED);
		if (layout == SHMKIT_LAYOUT)
			seg->hdr = seg->base;
	}
	r = shmkit_seg_stat(seg, info);
	if (r == 0)
		info->layout = layout;
	if (r == 0 && info->nattch > 0)
		info->nattch--; /* our own attachment, made just to look */
	shmkit_seg_close(seg);
	return r;
}
