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
#include <sys/stat.h>
#include <unistd.h>

#include <shmkit/blob.h>
#include <shmkit/shmem.h>
#include "internal.h"

struct shmem {
	shmkit_blob *blob;
};

shmem_t *shmem_open(char *fname, size_t memory_size)
{
	struct stat st;
	shmkit_blob *b;
	int r;
	if (!fname || !*fname || memory_size == 0) {
		errno = EINVAL;
		return NULL;
	}
	/* The seed creates the file if it is missing; its canonical path then names the
	 * segment, so "./f" and "/abs/f" reach the same one. */
	int fd = open(fname, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		return NULL;
	r = fstat(fd, &st);
	close(fd);
	if (r < 0)
		return NULL;
	char *path = realpath(fname, NULL);
	if (!path)
		return NULL;
	if (strlen(path) > SHMKIT_NAME_MAX) {
		free(path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	/* The segment takes the file's read/write bits: whoever may write the file may
	 * write the segment, and the file's owner decides, as with the seed's flock. */
	unsigned mode = st.st_mode & 0666;
	r = shmkit_blob_open(path, memory_size, mode ? mode : 0600,
			     SHMKIT_SEG_CREATE | SHMKIT_SEG_SYSV, &b);
	if (r == -EACCES)
		r = shmkit_blob_open(path, memory_size, 0, SHMKIT_SEG_SYSV | SHMKIT_SEG_RDONLY, &b);
	free(path);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	shmem_t *h = malloc(sizeof *h);
	if (!h) {
		shmkit_blob_close(b);
		errno = ENOMEM;
		return NULL;
	}
	h->blob = b;
	return h;
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

int shmem_write(shmem_t **shmem, void *data, size_t size)
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
