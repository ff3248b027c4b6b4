/* shmkit — process liveness that the kernel proves, right across pid namespaces.
 *
 * A pid says nothing across containers: two processes that share /dev/shm but not a
 * pid namespace see each other's pids in the wrong namespace (a live producer was
 * reported dead). So every process that needs to be seen alive owns a token: a random
 * nonzero 64-bit id and a file /dev/shm/.shmkit-live-<16 hex> on which it holds a
 * write lock. The kernel drops that lock when the process dies, whatever kills it; the
 * answer is the same from every pid namespace that shares the file. Whoever wants to
 * know asks F_OFD_GETLK: a held lock is a live process, an unlocked or missing file a
 * dead one.
 *
 * The lock is a classic POSIX record lock (F_SETLK), not an open-file-description
 * one: it belongs to the process, so no child inherits it, however made (a child of a
 * raw clone() or syscall(SYS_fork) runs no atfork handler, and with an OFD lock would
 * keep its dead parent looking alive). Its one trap, that closing any descriptor of
 * the file drops it, is avoided by never opening our own token's file again (checks
 * and sweeps skip it).
 *
 * The file appears under its name only once it is locked (an O_TMPFILE linked into
 * place), so "exists but unlocked" always means "its owner died". A forked child
 * closes the inherited descriptor and makes its own token on first use. Words read
 * from shared memory are hostile: a token is only ever formatted into a file name,
 * never trusted beyond that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "wait.h"

#define LIVE_DIR "/dev/shm"
#define LIVE_PREFIX ".shmkit-live-"
/* A creator's hard link to its token, named by the inode of a segment it created. */
#define OWNER_PREFIX ".shmkit-owner-"
/* The byte we lock: any offset works (locks may lie past the end of a file). */
#define LIVE_BYTE 0

/* Tokens a new token's maker looks at for dead ones: about 3 µs each. */
#define SWEEP_PROBES 64u

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
/* The process whose token this is; a forked child sees another pid and starts over.
 * Written under live_mu; read without it on the fast path (acquire pairs with the
 * release store after the token is complete). */
static _Atomic pid_t live_pid;
static uint64_t live_tok;
static int live_fd = -1;
static int live_atfork_done;

static int sweep(unsigned max_probes);
static int sweep_owners(int exiting);
static int fd_locked(int fd);

static void token_path(uint64_t tok, char *buf, size_t n)
{
	snprintf(buf, n, LIVE_DIR "/" LIVE_PREFIX "%016llx", (unsigned long long)tok);
}

/* In a forked child: the parent's lock was not inherited, and closing the inherited
 * descriptor drops none of the parent's (a lock is the process's own). The child makes
 * its own token if it needs one. */
static void live_atfork_child(void)
{
	if (live_fd >= 0)
		close(live_fd);
	live_fd = -1;
	live_tok = 0;
	atomic_store_explicit(&live_pid, 0, memory_order_relaxed);
	pthread_mutex_init(&live_mu, NULL);
}

/* At exit (or when the library is unloaded) the token's file goes with us; a killed
 * process leaves it unlocked, which reads as dead and which gc removes. */
__attribute__((destructor)) static void live_exit(void)
{
	if (live_fd < 0 || atomic_load_explicit(&live_pid, memory_order_relaxed) != getpid())
		return;
	char path[64];
	/* Our links to segments already gone go too (those still there stay: they tell
	 * gc we are dead). */
	sweep_owners(1);
	token_path(live_tok, path, sizeof path);
	unlink(path);
}

static int lock_fd(int fd, short type, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = LIVE_BYTE;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl) < 0 ? -errno : 0;
}

/* Make a locked, nameless file and link it into place under a fresh random name. */
static int token_make(uint64_t *tok, int *fdp)
{
	struct flock fl;
	int fd = open(LIVE_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	int named = 0;
	if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t t = 0;
		char path[64];
		if (getrandom(&t, sizeof t, 0) != sizeof t || t == 0)
			continue;
		token_path(t, path, sizeof path);
		if (fd < 0) {
			/* No O_TMPFILE: create by name and lock before anyone is told the
			 * token, so nobody can ask about it while it is unlocked. */
			fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (fd < 0) {
				if (errno == EEXIST)
					continue;
				return -errno;
			}
			named = 1;
		}
		/* Readable by everyone, so any user can ask whether we live; fchmod because
		 * open's mode is reduced by the umask. */
		int r = fchmod(fd, 0644) < 0 ? -errno : lock_fd(fd, F_WRLCK, F_SETLK, &fl);
		if (r < 0) {
			if (named)
				unlink(path);
			close(fd);
			return r;
		}
		if (!named) {
			char self[64];
			snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
			if (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0) {
				if (errno == EEXIST)
					continue;
				r = -errno;
				close(fd);
				return r;
			}
		}
		*tok = t;
		*fdp = fd;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	return -EEXIST;
}

int shmkit__live_token(uint64_t *tok)
{
	pid_t me = getpid();
	/* Acquire pairs with the release store below: live_tok is complete. */
	if (atomic_load_explicit(&live_pid, memory_order_acquire) == me) {
		*tok = live_tok;
		return 0;
	}
	pthread_mutex_lock(&live_mu);
	int r = 0;
	if (atomic_load_explicit(&live_pid, memory_order_relaxed) != me) {
		if (!live_atfork_done) {
			r = -pthread_atfork(NULL, NULL, live_atfork_child);
			live_atfork_done = r == 0;
		}
		if (r == 0)
			r = token_make(&live_tok, &live_fd);
		if (r == 0) {
			atomic_store_explicit(&live_pid, me, memory_order_release);
			/* Killed processes leave their tokens behind, and segments removed
			 * by other means their creators' links; each new token clears a few
			 * tokens and every orphaned link, so neither piles up in /dev/shm. */
			sweep(SWEEP_PROBES);
			sweep_owners(0);
		}
	}
	if (r == 0)
		*tok = live_tok;
	pthread_mutex_unlock(&live_mu);
	return r;
}

/* Asks through a descriptor of the token's file. 1 locked, 0 not, -errno. */
static int fd_locked(int fd)
{
	struct flock fl;
	int r = lock_fd(fd, F_WRLCK, F_OFD_GETLK, &fl);
	if (r < 0)
		return r;
	return fl.l_type != F_UNLCK;
}

/* Opens a token's file without following a planted symlink or blocking on a FIFO
 * planted under its name. Returns the descriptor, or -errno. */
static int token_open(uint64_t tok)
{
	char path[64];
	struct stat st;
	token_path(tok, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

int shmkit__live_check(uint64_t tok)
{
	if (tok == 0)
		return 0;
	if (atomic_load_explicit(&live_pid, memory_order_acquire) == getpid() && tok == live_tok)
		return 1;
	int fd = token_open(tok);
	if (fd == -ENOENT || fd == -ELOOP || fd == -EPROTO)
		return 0; /* no token file (or something planted in its place): nobody */
	if (fd < 0)
		return fd;
	int r = fd_locked(fd);
	close(fd);
	return r;
}

/* ---- who created a POSIX segment, in a way no peer can rewrite ----
 *
 * A header word naming the creator can be rewritten by anyone who may write the
 * segment, and made to name nobody: a live creator would then look dead to gc. So a
 * POSIX creator also makes a hard link to its token file named by the new segment's
 * inode. The link is the token's inode, so the creator's lock shows through it (alive
 * while it lives, unlocked once dead, even after the token's own name is swept); it
 * belongs to the creator's user, so nobody else can make or change one for a segment
 * of that user (linking another user's file is refused by protected_hardlinks); and
 * it names the segment by what the kernel gives (its inode), not by header words. */

static void owner_path(uint64_t ino, char *buf, size_t n)
{
	snprintf(buf, n, LIVE_DIR "/" OWNER_PREFIX "%016llx", (unsigned long long)ino);
}

/* Our token file's inode, or 0. */
static uint64_t own_token_ino(void)
{
	struct stat st;
	if (atomic_load_explicit(&live_pid, memory_order_acquire) != getpid() || live_fd < 0 ||
	    fstat(live_fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* Whether the creator behind an owner link (another process's token) lives: 1 when
 * it cannot be told, so that callers only ever remove a link proven dead. */
static int link_alive(const char *opath)
{
	int fd = open(opath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	int alive = fd < 0 ? 1 : fd_locked(fd);
	if (fd >= 0)
		close(fd);
	return alive != 0;
}

void shmkit__live_bind(int seg_fd)
{
	uint64_t tok;
	struct stat st, ln;
	char tpath[64], opath[64];
	if (shmkit__live_token(&tok) < 0 || fstat(seg_fd, &st) < 0)
		return;
	token_path(tok, tpath, sizeof tpath);
	owner_path((uint64_t)st.st_ino, opath, sizeof opath);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (link(tpath, opath) == 0 || errno != EEXIST)
			return; /* best effort: without the link the creator is "unknown" */
		/* Left by a segment of the same inode number that is gone; its creator's
		 * link is ours to replace once that creator is dead. */
		if (lstat(opath, &ln) < 0 || (uint64_t)ln.st_ino == own_token_ino())
			return;
		if (link_alive(opath) || unlink(opath) < 0)
			return;
	}
}

int shmkit__live_owner(uint64_t seg_ino, uid_t seg_uid)
{
	char opath[64];
	struct stat a, b;
	owner_path(seg_ino, opath, sizeof opath);
	if (lstat(opath, &a) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (!S_ISREG(a.st_mode) || a.st_uid != seg_uid)
		return -EPROTO; /* not a link its creator's user made */
	/* Our own token: alive, and never opened here (closing a descriptor of it would
	 * drop our record lock). */
	if ((uint64_t)a.st_ino == own_token_ino())
		return 1;
	int fd = open(opath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	int r = fstat(fd, &b) < 0 ? -errno : b.st_ino != a.st_ino ? -EAGAIN : fd_locked(fd);
	close(fd);
	return r;
}

void shmkit__live_unbind(uint64_t seg_ino)
{
	char opath[64];
	owner_path(seg_ino, opath, sizeof opath);
	unlink(opath); /* best effort: sweep_owners() removes what is left */
}

/* Remove owner links whose segment is gone (no entry of /dev/shm has that inode) and
 * whose creator is dead; exiting: our own count as dead (we are leaving). */
/* The inodes of everything in /dev/shm that may be a segment (not tokens, not owner
 * links), into *inos (grown as needed): their count, or -errno. */
static long seg_inodes(DIR *d, uint64_t **inos, size_t *cap)
{
	struct dirent *de;
	size_t n = 0;
	rewinddir(d);
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, LIVE_PREFIX, sizeof LIVE_PREFIX - 1) ||
		    !strncmp(de->d_name, OWNER_PREFIX, sizeof OWNER_PREFIX - 1))
			continue;
		if (n == *cap) {
			size_t c = *cap ? *cap * 2 : 256;
			uint64_t *p = realloc(*inos, c * sizeof *p);
			if (!p)
				return -ENOMEM;
			*inos = p;
			*cap = c;
		}
		(*inos)[n++] = (uint64_t)de->d_ino;
	}
	return (long)n;
}

static int ino_in(const uint64_t *inos, long n, uint64_t ino)
{
	for (long i = 0; i < n; i++)
		if (inos[i] == ino)
			return 1;
	return 0;
}

static int sweep_owners(int exiting)
{
	DIR *d = opendir(LIVE_DIR);
	struct dirent *de;
	uint64_t *inos = NULL, *cand = NULL;
	size_t cap = 0, ncand = 0, candcap = 0;
	int removed = 0;
	if (!d)
		return -errno;
	/* Pass 1: the inodes of everything that may be a segment. */
	long n = seg_inodes(d, &inos, &cap);
	if (n < 0)
		goto out;
	/* Pass 2: owner links naming none of them, whose creator is dead. */
	rewinddir(d);
	while ((de = readdir(d))) {
		const char *hex = de->d_name + sizeof OWNER_PREFIX - 1;
		if (strncmp(de->d_name, OWNER_PREFIX, sizeof OWNER_PREFIX - 1) != 0 ||
		    strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
			continue;
		uint64_t ino = strtoull(hex, NULL, 16);
		if (ino_in(inos, n, ino))
			continue;
		/* Not seen: its segment is gone, or was being linked while we read the
		 * directory. Only a dead creator's link goes: a live one may be binding
		 * the segment we missed (and its link goes once it dies). */
		char opath[64];
		struct stat st;
		owner_path(ino, opath, sizeof opath);
		if (lstat(opath, &st) < 0)
			continue;
		int alive;
		if ((uint64_t)st.st_ino == own_token_ino()) {
			alive = !exiting; /* never opened: that would drop our lock */
		} else {
			alive = link_alive(opath);
		}
		if (alive != 0)
			continue;
		if (ncand == candcap) {
			size_t c = candcap ? candcap * 2 : 16;
			uint64_t *p = realloc(cand, c * sizeof *p);
			if (!p)
				break;
			cand = p;
			candcap = c;
		}
		cand[ncand++] = ino;
	}
	/* Pass 3: a creator may have made its segment after pass 1 read past where it
	 * appears, and died before pass 2 (a slow sweep, a short-lived creator): its link
	 * still tells gc it is dead, so only links whose segment is still not there go. */
	if (ncand && (n = seg_inodes(d, &inos, &cap)) >= 0) {
		for (size_t i = 0; i < ncand; i++) {
			char opath[64];
			owner_path(cand[i], opath, sizeof opath);
			if (!ino_in(inos, n, cand[i]) && unlink(opath) == 0)
				removed++;
		}
	}
out:
	free(inos);
	free(cand);
	closedir(d);
	return removed;
}

/* Remove dead tokens, looking at most at max_probes of them. */
static int sweep(unsigned max_probes)
{
	DIR *d = opendir(LIVE_DIR);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -errno;
	while (max_probes && (de = readdir(d))) {
		const char *hex = de->d_name + sizeof LIVE_PREFIX - 1;
		/* Exactly the names token_path() makes, and nothing else in /dev/shm. */
		if (strncmp(de->d_name, LIVE_PREFIX, sizeof LIVE_PREFIX - 1) != 0 ||
		    strlen(hex) != 16 || strspn(hex, "0123456789abcdef") != 16)
			continue;
		uint64_t t = strtoull(hex, NULL, 16);
		if (t == live_tok)
			continue;
		max_probes--;
		int fd = token_open(t);
		if (fd < 0)
			continue;
		/* Unlocked means its owner died: a live one locked it before naming it. */
		if (fd_locked(fd) == 0) {
			char path[64];
			token_path(t, path, sizeof path);
			if (unlink(path) == 0)
				n++;
		}
		close(fd);
	}
	closedir(d);
	return n;
}

int shmkit_live_sweep(void)
{
	int n = sweep(UINT_MAX);
	int m = sweep_owners(0);
	return n < 0 ? n : m < 0 ? m : n + m;
}

/* ---- roles: a word in shared memory naming its holder by token ----
 *
 * A role (a channel's producer, say) is a 64-bit word holding its holder's token, 0
 * when free. It is claimed with CAS, also over a holder proven dead, and left with
 * CAS, so a holder declared dead and replaced never frees its successor's role.
 * Whether a holder lives is asked of shmkit__live_check() only. Beside the word, a
 * struct shmkit__who records the holder's pid and pid namespace, for people and for
 * a poller's pidfd, never as proof of life: the holder writes it after its claiming
 * CAS (pid and ns relaxed, then tok with release) and never clears it (it describes
 * only the token it names; a dead holder's stays readable for people until a
 * successor overwrites it). A reader that finds tok equal to the role word, loaded
 * with acquire, reads the fields that holder wrote, as long as the role word still
 * holds that token afterwards (only a holder writes them, and a successor claims
 * first). */

uint64_t shmkit__pidns_self(void)
{
	struct stat st;
	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int shmkit__role_claim(_Atomic uint64_t *owner, uint64_t me)
{
	for (int i = 0; i < 16; i++) {
		/* Acquire pairs with the release CAS in shmkit__role_release(): what the
		 * previous holder published before leaving is visible to us. */
		uint64_t cur = atomic_load_explicit(owner, memory_order_acquire);
		if (cur != 0) {
			int r = shmkit__live_check(cur);
			if (r != 0)
				return r < 0 ? r : -EBUSY;
		}
		/* acq_rel: another claimer's CAS wins exactly once; we take a dead one's. */
		if (atomic_compare_exchange_strong_explicit(owner, &cur, me, memory_order_acq_rel,
							    memory_order_acquire))
			return 0;
	}
	return -EBUSY;
}

void shmkit__role_release(_Atomic uint64_t *owner, uint64_t me)
{
	uint64_t cur = me;
	/* Release: everything this holder stored is visible to the next claimer. CAS so
	 * that a holder declared dead (and replaced) never frees its successor's role. */
	atomic_compare_exchange_strong_explicit(owner, &cur, 0, memory_order_release,
						memory_order_relaxed);
}

void shmkit__who_set(struct shmkit__who *w, uint64_t me, uint64_t ns)
{
	/* Orders our claiming CAS before the stores below, so that a reader that sees our
	 * pid also sees the role word hold our token (pairs with the acquire fence in
	 * poll.c's holder_pidfd()). */
	atomic_thread_fence(memory_order_release);
	/* Relaxed: published by the release store of tok. */
	atomic_store_explicit(&w->pid, (int32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&w->ns, ns, memory_order_relaxed);
	/* Release pairs with the acquire loads of tok in shmkit__who_pid() and
	 * holder_pidfd(). */
	atomic_store_explicit(&w->tok, me, memory_order_release);
}

int32_t shmkit__who_pid(const _Atomic uint64_t *owner, const struct shmkit__who *w)
{
	uint64_t cur = atomic_load_explicit(owner, memory_order_relaxed);
	/* Acquire pairs with shmkit__who_set(): the pid is the one recorded with this
	 * token. */
	if (cur == 0 || atomic_load_explicit(&w->tok, memory_order_acquire) != cur)
		return 0;
	return atomic_load_explicit(&w->pid, memory_order_relaxed);
}
