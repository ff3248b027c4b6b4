/* shmkit — the shmem API of seed 000, over the blob layer.
 *
 * The seed locked a single buffer with flock(); a blob gives the same "several
 * processes read and write whole buffers safely" with lock-free readers, no torn data
 * when a writer dies, and safety between threads too. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmkit/blob.h>
#include <shmkit/shmem.h>
#include "internal.h"

struct shmem {
	shmkit_blob *blob;
};

/* The key file: only a regular file names a segment. It is looked at through O_PATH
 * first, which neither blocks on a FIFO (open(2) for reading would wait for a writer
 * forever) nor runs a device's open; then opened for reading as the seed did, created
 * if missing, with O_NONBLOCK in case a FIFO was swapped in since the look. Fills *st.
 * Returns 0, -EINVAL (not a regular file), or -errno of open/fstat. */
static int key_file(const char *fname, struct stat *st)
{
	int r, fd = open(fname, O_PATH | O_CLOEXEC);
	if (fd >= 0) {
		r = fstat(fd, st) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return r;
		if (!S_ISREG(st->st_mode))
			return -EINVAL;
	} else if (errno != ENOENT) {
		return -errno;
	}
	fd = open(fname, O_RDONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	r = fstat(fd, st) < 0 ? -errno : 0;
	close(fd);
	if (r == 0 && !S_ISREG(st->st_mode))
		r = -EINVAL;
	return r;
}

/* Whom a segment may belong to: root (who could read it anyway), the caller, or the
 * key file's owner, who decides who uses the path. */
static int trusted(uid_t uid, uid_t file_uid)
{
	return uid == 0 || uid == geteuid() || uid == file_uid;
}

/* Refuse a segment someone else made for our path before us (a squatter would read
 * every write and could change it). Both its owner and its creator must be trusted: a
 * creator may hand the owner field to anyone with IPC_SET but keeps the owner's rights
 * as creator. Returns 0, -EACCES, or -errno of the stat calls. */
static int check_owner(const shmkit_blob *b, uid_t file_uid)
{
	struct shmkit_seg_info info;
	struct shmid_ds ds;
	int r = shmkit_seg_stat(shmkit_blob_seg(b), &info);
	if (r < 0)
		return r;
	if (shmctl(info.shmid, IPC_STAT, &ds) < 0)
		return -errno;
	if (!trusted(ds.shm_perm.uid, file_uid) || !trusted(ds.shm_perm.cuid, file_uid))
		return -EACCES;
	return 0;
}

shmem_t *shmem_open(const char *fname, size_t memory_size)
{
	struct stat st;
	shmkit_blob *b = NULL;
	char *path = NULL;
	shmem_t *h;
	int r;
	if (!fname || !*fname || memory_size == 0) {
		r = -EINVAL;
		goto fail;
	}
	/* The seed creates the file if it is missing; its canonical path then names the
	 * segment, so "./f" and "/abs/f" reach the same one. */
	r = key_file(fname, &st);
	if (r < 0)
		goto fail;
	path = realpath(fname, NULL);
	if (!path) {
		r = -errno;
		goto fail;
	}
	if (strlen(path) > SHMKIT_NAME_MAX) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	/* The segment takes the file's read/write bits for its owner and group, never for
	 * others: the file's owner decides, as with the seed's flock, but the data never
	 * becomes more readable than the file (with umask 022 a new file is 0644, and
	 * world-readable data would be a leak). */
	unsigned mode = st.st_mode & 0660;
	r = shmkit_blob_open(path, memory_size, mode ? mode : 0600,
			     SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV, &b);
	if (r == -EACCES)
		r = shmkit_blob_open(path, memory_size, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RDONLY, &b);
	if (r < 0)
		goto fail;
	r = check_owner(b, st.st_uid);
	if (r < 0)
		goto fail_blob;
	h = malloc(sizeof *h);
	if (!h) {
		r = -ENOMEM;
		goto fail_blob;
	}
	h->blob = b;
	free(path);
	return h;

fail_blob:
	shmkit_blob_close(b);
fail:
	free(path);
	shmkit__compat_fail(r);
	return NULL;
}

int shmem_close(shmem_t **shmem)
{
	if (!shmem || !*shmem)
		return shmkit__compat_fail(-EINVAL);
	shmkit_blob_close((*shmem)->blob);
	free(*shmem);
	*shmem = NULL;
	return 0;
}

int shmem_read(shmem_t **shmem, void *data, size_t size)
{
	if (!shmem || !*shmem || !data)
		return shmkit__compat_fail(-EINVAL);
	if (size < shmkit_blob_size((*shmem)->blob))
		return shmkit__compat_fail(-EINVAL);
	ssize_t r = shmkit_blob_read((*shmem)->blob, data, size, NULL);
	return r < 0 ? shmkit__compat_fail((int)r) : 0;
}

int shmem_write(shmem_t **shmem, const void *data, size_t size)
{
	if (!shmem || !*shmem || (!data && size))
		return shmkit__compat_fail(-EINVAL);
	int r = shmkit_blob_write((*shmem)->blob, data, size);
	if (r == -EMSGSIZE)
		r = -EINVAL; /* the seed documents size <= segment size as an argument rule */
	return r < 0 ? shmkit__compat_fail(r) : 0;
}

int shmem_delete(shmem_t **shmem)
{
	if (!shmem || !*shmem)
		return shmkit__compat_fail(-EINVAL);
	int r = shmkit_blob_delete((*shmem)->blob);
	if (r < 0)
		return shmkit__compat_fail(r);
	return shmem_close(shmem);
}
