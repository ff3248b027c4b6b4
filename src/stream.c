/* shmkit — a POSIX shared-memory object as an unbuffered FILE* with a real descriptor.
 *
 * The object's bytes are the stream: no shmkit header, so any program can read it with
 * plain open("/dev/shm/..."). The FILE is a glibc cookie stream whose callbacks go
 * straight to the descriptor, so stdio and read/write/lseek share one file position,
 * and whose close callback lets the owner's fclose() remove the object. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <shmkit/stream.h>
#include "internal.h"

#define ROLE_FLAGS (SHMKIT_STREAM_OWNER | SHMKIT_STREAM_GUEST)
#define ALL_FLAGS (ROLE_FLAGS | SHMKIT_STREAM_PERSIST)

/* Where glibc (2.34 and later: a fixed path) keeps shm_open() objects. Only used to
 * compare the name's current inode with our descriptor before the owner unlinks. */
#define SHM_DIR "/dev/shm"

/* What the cookie callbacks need. Allocated by open, freed by the close callback. */
struct stream_cookie {
	int fd;
	int owner;                     /* 1: the close callback removes the object (an
					* owner without SHMKIT_STREAM_PERSIST) */
	char obj[SHMKIT_NAME_MAX + 1]; /* the shm_open() name, for that removal */
};

/* Stream name -> one shm_open() object name: "/" + the name without its optional
 * leading '/', with '%' -> "%25" and '/' -> "%2F". Escaping '%' too keeps the mapping
 * one-to-one: "a/b" and a literal "a%2Fb" stay different streams. */
static int stream_obj_name(const char *name, char out[SHMKIT_NAME_MAX + 1])
{
	if (!name)
		return -EINVAL;
	const char *p = name[0] == '/' ? name + 1 : name;
	/* "/." and "/.." would name /dev/shm itself or its parent. */
	if (*p == '\0' || !strcmp(p, ".") || !strcmp(p, ".."))
		return -EINVAL;
	size_t n = 0;
	out[n++] = '/';
	for (; *p; p++) {
		const char *esc = *p == '/' ? "%2F" : *p == '%' ? "%25" : NULL;
		size_t len = esc ? 3 : 1;
		if (n + len > SHMKIT_NAME_MAX)
			return -ENAMETOOLONG;
		if (esc)
			memcpy(out + n, esc, len);
		else
			out[n] = *p;
		n += len;
	}
	out[n] = '\0';
	return 0;
}

/* The callbacks retry EINTR: stdio would otherwise turn a signal into a sticky stream
 * error, and tmpfs I/O never blocks, so a retry cannot hang. */
static ssize_t cookie_read(void *c, char *buf, size_t size)
{
	const struct stream_cookie *ck = c;
	ssize_t n;
	do
		n = read(ck->fd, buf, size);
	while (n < 0 && errno == EINTR);
	return n;
}

/* stdio treats a short count as an error, so write everything we can; the count is
 * never negative (0 means nothing was written), as fopencookie(3) requires. */
static ssize_t cookie_write(void *c, const char *buf, size_t size)
{
	const struct stream_cookie *ck = c;
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(ck->fd, buf + done, size - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int cookie_seek(void *c, off64_t *off, int whence)
{
	const struct stream_cookie *ck = c;
	/* Only reachable with a 32-bit off_t: refuse rather than seek somewhere else. */
	if ((off64_t)(off_t)*off != *off) {
		errno = EOVERFLOW;
		return -1;
	}
	off_t r = lseek(ck->fd, (off_t)*off, whence);
	if (r < 0)
		return -1;
	*off = r;
	return 0;
}

/* Remove the name only if it still names the object behind fd: after a
 * shmkit_stream_destroy() a new owner may have created a stream of the same name, and
 * a stale owner must not take it away. (A destroy+create between the stat and the
 * unlink can still slip through; nothing but a lock shared by all users could close
 * that window.) */
static int unlink_if_same(const char *obj, int fd)
{
	struct stat mine, now;
	char path[sizeof SHM_DIR + SHMKIT_NAME_MAX + 1];
	snprintf(path, sizeof path, SHM_DIR "%s", obj);
	if (fstat(fd, &mine) < 0)
		return -errno;
	if (stat(path, &now) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (mine.st_dev != now.st_dev || mine.st_ino != now.st_ino)
		return 0;
	if (shm_unlink(obj) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

static int cookie_close(void *c)
{
	struct stream_cookie *ck = c;
	int r = 0;
	if (ck->owner)
		r = unlink_if_same(ck->obj, ck->fd);
	/* Linux releases the descriptor even when close() fails, so never retry it. */
	if (close(ck->fd) < 0 && r == 0)
		r = -errno;
	free(ck);
	if (r < 0) {
		errno = -r;
		return EOF;
	}
	return 0;
}

int shmkit_stream_open(const char *name, unsigned mode, unsigned flags, FILE **out)
{
	char obj[SHMKIT_NAME_MAX + 1];
	struct stream_cookie *ck;
	FILE *fp;
	int fd, r, rdonly = 0;
	unsigned role = flags & ROLE_FLAGS;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((flags & ~ALL_FLAGS) || (role != SHMKIT_STREAM_OWNER && role != SHMKIT_STREAM_GUEST))
		return -EINVAL;
	/* A guest's close never removes the stream: PERSIST there is a caller's mistake. */
	if ((flags & SHMKIT_STREAM_PERSIST) && role != SHMKIT_STREAM_OWNER)
		return -EINVAL;
	r = stream_obj_name(name, obj);
	if (r < 0)
		return r;

	if (role == SHMKIT_STREAM_OWNER) {
		/* Permission bits only: set-id and sticky bits mean nothing on a shm object
		 * but would surprise anyone who lists it, and other bits are a mistake. */
		if (mode & ~0777u)
			return -EINVAL;
		fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd < 0)
			return -errno;
		/* shm_open() applied the umask; the contract is the exact mode. */
		if (fchmod(fd, (mode_t)mode) < 0) {
			r = -errno;
			goto fail_fd;
		}
	} else {
		fd = shm_open(obj, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0 && errno == EACCES) {
			/* Readable but not writable for us: still a useful stream. */
			fd = shm_open(obj, O_RDONLY | O_CLOEXEC, 0);
			rdonly = 1;
		}
		if (fd < 0)
			return -errno;
	}

	ck = malloc(sizeof *ck);
	if (!ck) {
		r = -ENOMEM;
		goto fail_fd;
	}
	ck->fd = fd;
	ck->owner = role == SHMKIT_STREAM_OWNER && !(flags & SHMKIT_STREAM_PERSIST);
	memcpy(ck->obj, obj, sizeof obj);

	cookie_io_functions_t io = {
		.read = cookie_read,
		.write = cookie_write,
		.seek = cookie_seek,
		.close = cookie_close,
	};
	fp = fopencookie(ck, rdonly ? "r" : "r+", io);
	if (!fp) {
		r = -ENOMEM; /* its only failure with a valid mode string */
		goto fail_cookie;
	}
	/* From here fclose() owns the cookie, the descriptor and (owner) the name. */

	/* Unbuffered: every fwrite() reaches the object at once, so other processes see
	 * it without fflush(), and the descriptor's position is always the stream's. */
	if (setvbuf(fp, NULL, _IONBF, 0) != 0) { /* glibc only fails a bad mode */
		/* Nobody got the stream, so even a PERSIST owner's close must remove it. */
		ck->owner = role == SHMKIT_STREAM_OWNER;
		fclose(fp);
		return -EINVAL;
	}
#ifdef __GLIBC__
	/* fileno() on a cookie stream fails (EBADF): glibc marks it with _fileno = -2,
	 * "no real file". Our callbacks do nothing but forward to fd, so the FILE is in
	 * effect a file stream on fd; publishing fd here makes fileno() return it. Safe
	 * because cookie FILEs carry _IO_IS_FILEBUF, which fileno() requires, while all
	 * their I/O, seeking and closing go through the cookie callbacks, never through
	 * _fileno; fclose() still calls cookie_close() and then resets _fileno to -1. */
	fp->_fileno = fd;
#endif
	/* Elsewhere fileno() stays -1: the stream works, but its descriptor is hidden. */
	*out = fp;
	return 0;

fail_cookie:
	free(ck);
fail_fd:
	/* An owner created the object and nobody got a stream on it: take it away again,
	 * PERSIST or not (unless a destroy and a new owner got in first). */
	if (role == SHMKIT_STREAM_OWNER)
		unlink_if_same(obj, fd);
	close(fd);
	return r;
}

int shmkit_stream_destroy(const char *name)
{
	char obj[SHMKIT_NAME_MAX + 1];
	int r = stream_obj_name(name, obj);
	if (r < 0)
		return r;
	return shm_unlink(obj) < 0 ? -errno : 0;
}
