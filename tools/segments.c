/* shmkit(1) — the subcommands that see, make, use and clean segments: ls, stat, rm, gc,
 * create, cat, write, send, recv (pub and sub are in tools/topic.c). Over the public
 * API, plus /proc for what only the kernel knows (System V segments, which processes
 * map or hold a POSIX one). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "cmd.h"

/* ---- what ls, stat and gc know about a segment ---- */

struct entry {
	struct shmkit_seg_info in;
	/* As shown: "/" and the file's name for POSIX (up to NAME_MAX bytes after the
	 * slash, one more than the library opens), the header's name for a System V
	 * shmkit segment, its key (0x...) for any other System V segment. */
	char name[NAME_MAX + 2];
	char obj[NAME_MAX + 2]; /* what the library is given: POSIX "/x", System V "id:N" */
	dev_t dev;              /* POSIX: the object's identity, which gc matches users by */
	ino_t ino;
	/* Processes seen mapping, holding or attaching it; -1 unknown. POSIX: at least
	 * this many when blind (some processes could not be looked at). */
	int users;
	int blind;
	int lease;              /* POSIX, gc only: probe_unused(), or LEASE_UNTRIED */
	int stale;              /* garbage to gc --all-users: see verdict() */
};

#define LEASE_UNTRIED 2

struct list {
	struct entry *e;
	int n, cap;
};

static struct entry *list_add(struct list *l)
{
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 64;
		struct entry *e = realloc(l->e, (size_t)cap * sizeof *e);
		if (!e)
			return NULL;
		l->e = e;
		l->cap = cap;
	}
	memset(&l->e[l->n], 0, sizeof l->e[0]);
	l->e[l->n].lease = LEASE_UNTRIED;
	return &l->e[l->n++];
}

/* The library's liveness tokens: /dev/shm/.shmkit-live-<16 lowercase hex>, exactly.
 * They are not segments, and removing a live one would make its process look dead. */
static int hex16_after(const char *file, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *hex = file + n;
	return !strncmp(file, prefix, n) && strlen(hex) == 16 && strspn(hex, "0123456789abcdef") == 16;
}

/* The library's liveness files: tokens (.shmkit-live-<hex>) and creators' links to
 * them (.shmkit-owner-<segment inode in hex>). Not segments. */
static int is_live_token(const char *file)
{
	return hex16_after(file, ".shmkit-live-") || hex16_after(file, ".shmkit-owner-");
}

/* ---- who uses a POSIX segment: by the object's identity, never by name text ----
 *
 * POSIX segments have no attach count. A process uses one if it maps it or holds a
 * descriptor to it; both are found in /proc by device and inode (the dev and inode
 * columns of /proc/PID/maps, stat() of each /proc/PID/fd/N), which no name can fake:
 * names with spaces, newlines or " (deleted)" in them read like anything in those
 * files. A process whose maps or descriptors we may not read (another user's, unless
 * we are root; a container runtime's, even for root) makes every POSIX count a lower
 * bound, since it could be using any segment: a descriptor can be passed to a process
 * that could never open the name. And processes in pid namespaces that our /proc does
 * not show are not seen at all. So gc does not rest on this count alone: see
 * probe_unused(). */

struct ident {
	dev_t dev;
	ino_t ino;
	int entry; /* index in the list */
	int last;  /* the last process counted for it (counts each process once) */
};

static int ident_cmp(const void *a, const void *b)
{
	const struct ident *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct scan {
	struct ident *id; /* sorted by (dev, ino) */
	int n;
	int *count;       /* processes per ident */
	int blind;        /* processes that could not be looked at */
};

static void scan_hit(struct scan *s, dev_t dev, ino_t ino, int proc)
{
	struct ident key = {.dev = dev, .ino = ino};
	struct ident *hit = bsearch(&key, s->id, (size_t)s->n, sizeof key, ident_cmp);
	if (hit && hit->last != proc) {
		hit->last = proc;
		s->count[hit - s->id]++;
	}
}

/* A process that vanished while we looked was using nothing; any other failure to
 * look means we do not know. */
static int gone(int err)
{
	return err == ENOENT || err == ESRCH;
}

static void scan_maps(struct scan *s, int procfd, int proc)
{
	int fd = openat(procfd, "maps", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	char *line = NULL;
	size_t cap = 0;
	if (!f) {
		if (!gone(errno))
			s->blind++;
		if (fd >= 0)
			close(fd);
		return;
	}
	errno = 0;
	while (getline(&line, &cap, f) > 0) {
		/* start-end perms offset major:minor inode [path]: the path is not read. */
		unsigned maj, min;
		unsigned long long ino;
		if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &ino) == 3 && ino)
			scan_hit(s, makedev(maj, min), (ino_t)ino, proc);
	}
	/* Permission is checked at read, not open: a denied read is blindness too. */
	if (ferror(f) && !gone(errno))
		s->blind++;
	free(line);
	fclose(f);
}

static void scan_fds(struct scan *s, int procfd, int proc)
{
	int fd = openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (!gone(errno))
			s->blind++;
		if (fd >= 0)
			close(fd);
		return;
	}
	int denied = 0;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		/* stat() follows the descriptor's magic link to the open object itself; a
		 * descriptor closed meanwhile is simply not counted. */
		if (fstatat(dirfd(d), de->d_name, &st, AT_NO_AUTOMOUNT) == 0)
			scan_hit(s, st.st_dev, st.st_ino, proc);
		else if (!gone(errno) && errno != EBADF)
			denied = 1;
	}
	s->blind += denied;
	closedir(d);
}

/* Fills each POSIX entry's users: processes mapping it or holding a descriptor. */
static int scan_users(struct list *l)
{
	struct scan s = {0};
	s.id = calloc((size_t)l->n + 1, sizeof *s.id);
	s.count = calloc((size_t)l->n + 1, sizeof *s.count);
	if (!s.id || !s.count) {
		free(s.id), free(s.count);
		return -ENOMEM;
	}
	for (int i = 0; i < l->n; i++)
		if (!l->e[i].in.sysv)
			s.id[s.n++] = (struct ident){l->e[i].dev, l->e[i].ino, i, -1};
	qsort(s.id, (size_t)s.n, sizeof *s.id, ident_cmp);
	DIR *proc = opendir("/proc");
	struct dirent *de;
	if (!proc)
		s.blind++;
	while (proc && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		int fd = openat(dirfd(proc), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (!gone(errno))
				s.blind++;
			continue;
		}
		scan_maps(&s, fd, (int)pid);
		scan_fds(&s, fd, (int)pid);
		close(fd);
	}
	if (proc)
		closedir(proc);
	for (int j = 0; j < s.n; j++) {
		struct entry *e = &l->e[s.id[j].entry];
		e->blind = s.blind > 0;
		e->users = e->blind && !s.count[j] ? -1 : s.count[j];
	}
	free(s.id), free(s.count);
	return 0;
}

/* ---- whether gc may remove a segment ---- */

/* Whether the kernel proves that no process has the POSIX segment open or mapped:
 * a write lease (F_SETLEASE) is granted only on a file that no other open file
 * description refers to, and a mapping keeps its description, so the answer covers
 * every process of every pid namespace, those /proc does not show included. The lease
 * is dropped at once; an opener arriving meanwhile waits for that (and sends us the
 * lease-break signal, which gc ignores). The object must still be the one listed.
 * Returns 1 unused, 0 in use, or -errno when it cannot be told. */
static int lease_take(const struct entry *e, int *fdp)
{
	struct stat st;
	*fdp = -1;
	int dir = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	/* O_NONBLOCK: a FIFO planted under the name must not hang us. Read-write when we
	 * may, so that the removal can mark the segment deleted through this descriptor. */
	const int how = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = openat(dir, e->obj + 1, O_RDWR | how);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		fd = openat(dir, e->obj + 1, O_RDONLY | how);
	int r = fd < 0 ? -errno : 0;
	close(dir);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	else if (r == 0 && (!S_ISREG(st.st_mode) || st.st_dev != e->dev || st.st_ino != e->ino))
		r = -ESTALE; /* replaced since it was listed: judged again next time */
	if (r == 0) {
		if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
			*fdp = fd;
			return 1;
		}
		r = errno == EAGAIN ? 0 : -errno;
	}
	if (fd >= 0)
		close(fd);
	return r;
}

static void lease_drop(int fd)
{
	fcntl(fd, F_SETLEASE, F_UNLCK);
	close(fd);
}

static int probe_unused(const struct entry *e)
{
	int fd, r = lease_take(e, &fd);
	if (r == 1)
		lease_drop(fd);
	return r;
}

/* 1 if the segment is provably garbage to this gc, with why (or why not) in why:
 * a shmkit segment (a header we recognise), not marked persistent, whose creator the
 * library reports dead (from what the kernel releases at death, never from words a
 * peer can rewrite), that no process maps, holds or attaches, and, without
 * all_users, that belongs to the caller. For POSIX, "no process" is proven by
 * probe_unused() (e->lease); before that is tried (ls), by a complete /proc scan. */
static int verdict(const struct entry *e, int all_users, char *why, size_t cap)
{
	size_t len = 0;
	int no = 0;
#define REASON(...)                                                                        \
	do {                                                                               \
		if (len < cap)                                                             \
			len += (size_t)snprintf(why + len, cap - len, "%s", no++ ? ", " : ""); \
		if (len < cap)                                                             \
			len += (size_t)snprintf(why + len, cap - len, __VA_ARGS__);        \
	} while (0)
	why[0] = '\0';
	if (e->in.kind == SHMKIT_KIND_RAW) {
		REASON("not a shmkit segment");
		return 0;
	}
	if (e->in.persistent)
		REASON("persistent");
	if (e->in.creator_alive == 1)
		REASON("creator alive");
	else if (e->in.creator_alive < 0)
		REASON("creator's liveness unknown");
	if (e->users > 0)
		REASON("%d process%s attached", e->users, e->users == 1 ? "" : "es");
	else if (e->in.sysv && e->users < 0)
		REASON("attach count unknown");
	else if (!e->in.sysv && e->lease == 0)
		REASON("open or mapped by some process (the kernel refuses a lease)");
	else if (!e->in.sysv && e->lease < 0)
		REASON("cannot tell whether it is in use (lease: %s)", strerror(-e->lease));
	else if (!e->in.sysv && e->lease == LEASE_UNTRIED && e->blind)
		REASON("users unknown (some processes could not be looked at)");
	if (!all_users && e->in.uid != geteuid())
		REASON("owned by uid %u (--all-users)", (unsigned)e->in.uid);
	if (no)
		return 0;
	REASON("creator dead, unused, not persistent");
	return 1;
#undef REASON
}

/* ---- every segment on the machine ---- */

static int collect_posix(struct list *l)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	if (!d)
		return 0; /* no POSIX shared memory here: nothing to list */
	while ((de = readdir(d))) {
		struct stat st;
		/* Every regular file is a segment, dot names and NAME_MAX-long ones too;
		 * only the library's liveness tokens are not. */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || is_live_token(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		struct entry *e = list_add(l);
		if (!e) {
			closedir(d);
			return -ENOMEM;
		}
		snprintf(e->name, sizeof e->name, "/%s", de->d_name);
		memcpy(e->obj, e->name, sizeof e->obj);
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		if (strlen(de->d_name) >= SHMKIT_NAME_MAX || shmkit_seg_inspect(e->obj, 0, &e->in) < 0) {
			/* Unreadable to us, or a name longer than shmkit makes: still show what
			 * stat(2) says. */
			memset(&e->in, 0, sizeof e->in);
			e->in.kind = SHMKIT_KIND_RAW;
			e->in.total_size = (uint64_t)st.st_size;
			e->in.mode = st.st_mode & 0777;
			e->in.uid = st.st_uid;
			e->in.gid = st.st_gid;
			e->in.creator_alive = -1;
			e->in.shmid = -1;
			e->in.nattch = -1;
		}
	}
	closedir(d);
	return 0;
}

static int collect_sysv(struct list *l)
{
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;
	if (!f)
		return 0;
	if (getline(&line, &cap, f) < 0) /* the column titles */
		goto out;
	while (getline(&line, &cap, f) > 0) {
		int key, id, cpid, lpid, nattch;
		unsigned mode, uid, gid;
		unsigned long long size;
		if (sscanf(line, "%d %d %o %llu %d %d %d %u %u", &key, &id, &mode, &size, &cpid, &lpid,
			   &nattch, &uid, &gid) != 9)
			continue;
		struct entry *e = list_add(l);
		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		snprintf(e->obj, sizeof e->obj, "id:%d", id);
		if (shmkit_seg_inspect(e->obj, SHMKIT_SEG_SYSV, &e->in) < 0) {
			/* Unreadable to us: what the kernel lists for everyone. */
			e->in.sysv = 1;
			e->in.kind = SHMKIT_KIND_RAW;
			e->in.shmid = id;
			e->in.key = key;
			e->in.total_size = size;
			e->in.mode = mode & 0777;
			e->in.uid = uid;
			e->in.gid = gid;
			e->in.creator_alive = -1;
			e->in.nattch = nattch;
		}
		if (e->in.kind == SHMKIT_KIND_RAW)
			snprintf(e->name, sizeof e->name, "0x%08x", (unsigned)e->in.key);
		else /* bounded: the header's name is a peer's bytes */
			snprintf(e->name, sizeof e->name, "%.*s", (int)sizeof e->in.name - 1, e->in.name);
		e->users = e->in.nattch;
	}
out:
	free(line);
	fclose(f);
	return r;
}

/* Every POSIX and System V segment on the machine, with its users. */
static int collect(struct list *l)
{
	int r = collect_posix(l);
	if (r == 0)
		r = collect_sysv(l);
	if (r == 0)
		r = scan_users(l);
	if (r < 0)
		return r;
	char why[256];
	for (int i = 0; i < l->n; i++)
		l->e[i].stale = verdict(&l->e[i], 1, why, sizeof why);
	return 0;
}

static const char *kind_name(unsigned k)
{
	switch (k) {
	case SHMKIT_KIND_DATA:
		return "data";
	case SHMKIT_KIND_BLOB:
		return "blob";
	case SHMKIT_KIND_CHAN:
		return "chan";
	case SHMKIT_KIND_TOPIC:
		return "topic";
	case SHMKIT_KIND_RAW:
		return "-";
	default:
		return "?";
	}
}

static const char *state_name(const struct entry *e)
{
	if (e->in.kind == SHMKIT_KIND_RAW)
		return "-";
	switch (e->in.state) {
	case SHMKIT_STATE_INIT:
		return "init";
	case SHMKIT_STATE_READY:
		return "ready";
	case SHMKIT_STATE_DELETED:
		return "deleted";
	default:
		return "?";
	}
}

static const char *alive_name(int a)
{
	return a == 1 ? "yes" : a == 0 ? "no" : "-";
}

static const char *owner_name(uint32_t uid)
{
	static char buf[16];
	struct passwd *pw = getpwuid(uid);
	if (pw && strlen(pw->pw_name) < 9)
		return pw->pw_name;
	snprintf(buf, sizeof buf, "%u", uid);
	return buf;
}

/* One segment as a JSON object; extra (members, each starting with ", ") goes
 * before the closing brace. */
static void json_entry(FILE *f, const struct entry *e, const char *extra)
{
	fprintf(f, "{\"backend\": \"%s\", \"name\": ", e->in.sysv ? "sysv" : "posix");
	shmkit__json_str(f, e->name);
	if (e->in.sysv)
		fprintf(f, ", \"key\": \"0x%08x\", \"id\": %d", (unsigned)e->in.key, e->in.shmid);
	else
		fprintf(f, ", \"key\": null, \"id\": null");
	fprintf(f, ", \"size\": %llu, \"data_size\": %llu, \"mode\": \"%04o\", \"uid\": %u",
		(unsigned long long)e->in.total_size, (unsigned long long)e->in.data_size,
		e->in.mode, e->in.uid);
	if (e->in.kind == SHMKIT_KIND_RAW)
		fprintf(f, ", \"shmkit\": false, \"kind\": null, \"state\": null, "
			   "\"creator_pid\": null, \"creator_alive\": null, \"persistent\": null");
	else
		fprintf(f, ", \"shmkit\": true, \"kind\": \"%s\", \"state\": \"%s\", "
			   "\"creator_pid\": %d, \"creator_alive\": %s, \"persistent\": %s",
			kind_name(e->in.kind), state_name(e), e->in.creator_pid,
			e->in.creator_alive < 0 ? "null" : e->in.creator_alive ? "true" : "false",
			e->in.persistent ? "true" : "false");
	/* A lower bound is not a count: null, as for unknown. */
	if (e->users >= 0 && !e->blind)
		fprintf(f, ", \"attached\": %d", e->users);
	else
		fprintf(f, ", \"attached\": null");
	fprintf(f, ", \"stale\": %s%s}", e->stale ? "true" : "false", extra);
}

int shmkit_cmd_ls(int argc, char **argv)
{
	static const char usage[] = "shmkit ls [--json]";
	int json = 0;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nList every POSIX (/dev/shm) and System V shared-memory segment,\n"
		       "shmkit's or not. STALE marks a shmkit segment that is not persistent,\n"
		       "whose creator is dead and that no process uses: 'shmkit gc' removes\n"
		       "those. Names are escaped: \\\\, \\n, \\t, \\r and \\xXX in text; in JSON,\n"
		       "\\udcXX for a byte that is not UTF-8.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else
			return shmkit__usage_error(usage);
	}
	struct list l = {0};
	if (collect(&l) < 0) {
		fprintf(stderr, "shmkit ls: out of memory\n");
		free(l.e);
		return SHMKIT_EXIT_FAIL;
	}
	if (json) {
		printf("[");
		for (int i = 0; i < l.n; i++) {
			printf(i ? ",\n " : "\n ");
			json_entry(stdout, &l.e[i], "");
		}
		printf("%s]\n", l.n ? "\n" : "");
	} else {
		printf("%-5s %-32s %-10s %-7s %12s %-4s %-8s %7s %5s %6s %-5s %-7s %-7s %s\n", "TYPE",
		       "NAME", "KEY", "ID", "SIZE", "MODE", "OWNER", "CPID", "ALIVE", "ATTACH", "KIND",
		       "STATE", "PERSIST", "STALE");
		for (int i = 0; i < l.n; i++) {
			const struct entry *e = &l.e[i];
			char key[16] = "-", id[16] = "-", users[16] = "-", cpid[16] = "-";
			char name[SHMKIT_TEXT_MAX];
			shmkit__text_str(name, sizeof name, e->name);
			if (e->in.sysv) {
				snprintf(key, sizeof key, "0x%08x", (unsigned)e->in.key);
				snprintf(id, sizeof id, "%d", e->in.shmid);
			}
			if (e->users >= 0)
				snprintf(users, sizeof users, e->blind ? "%d+" : "%d", e->users);
			if (e->in.creator_pid > 0)
				snprintf(cpid, sizeof cpid, "%d", e->in.creator_pid);
			printf("%-5s %-32s %-10s %-7s %12llu %04o %-8s %7s %5s %6s %-5s %-7s %-7s %s\n",
			       e->in.sysv ? "sysv" : "posix", name, key, id,
			       (unsigned long long)e->in.total_size, e->in.mode, owner_name(e->in.uid),
			       cpid, alive_name(e->in.creator_alive), users, kind_name(e->in.kind),
			       state_name(e),
			       e->in.kind == SHMKIT_KIND_RAW ? "-" : e->in.persistent ? "yes" : "no",
			       e->stale ? "stale" : "");
		}
	}
	free(l.e);
	return SHMKIT_EXIT_OK;
}

/* ---- naming a segment on the command line ----
 *
 * A bare token is always a name, even "0" or "12": a System V segment may be named so,
 * and taking it for an id once removed another segment. System V ids and keys are
 * reached only in explicit forms, "id:N" and "0x...". A name is looked for in both
 * namespaces; when both hold it, the user must say which (--posix or --sysv). */

enum space { SPACE_ANY, SPACE_POSIX, SPACE_SYSV };

#define AMBIGUOUS 1 /* resolve(): both namespaces hold the name */

/* Options of the commands that name segments: --posix, --sysv, --json (where json is
 * not NULL) and "--" before names that begin with '-'. Moves the operands to the front
 * of argv and returns their count, or -1 for a usage error. */
static int name_args(int argc, char **argv, int *space, int *json)
{
	int n = 0, opts = 1;
	*space = SPACE_ANY;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts && !strcmp(a, "--")) {
			opts = 0;
		} else if (opts && (!strcmp(a, "--sysv") || !strcmp(a, "--posix"))) {
			int s = a[2] == 's' ? SPACE_SYSV : SPACE_POSIX;
			if (*space != SPACE_ANY && *space != s)
				return -1;
			*space = s;
		} else if (opts && json && !strcmp(a, "--json")) {
			*json = 1;
		} else if (opts && a[0] == '-' && a[1]) {
			return -1;
		} else {
			argv[n++] = argv[i];
		}
	}
	return n;
}

/* Whether /dev/shm holds a POSIX segment of this name ("/x" or "x"). */
static int posix_exists(const char *arg)
{
	const char *file = arg[0] == '/' ? arg + 1 : arg;
	struct stat st;
	if (!file[0] || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..") ||
	    is_live_token(file) || strlen(file) > NAME_MAX)
		return 0;
	int dir = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dir >= 0 && fstatat(dir, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
	if (dir >= 0)
		close(dir);
	return r;
}

/* Whether a System V segment has this name: the one at the name's key, with the name
 * in its header. One we may not read is taken to be there: the operation then says
 * what stops it. */
static int sysv_exists(const char *arg)
{
	struct shmkit_seg_info in;
	int r = shmkit_seg_inspect(arg, SHMKIT_SEG_SYSV, &in);
	if (r == -EACCES || r == -EPERM)
		return 1;
	return r == 0 && in.kind != SHMKIT_KIND_RAW && !strncmp(in.name, arg, sizeof in.name);
}

/* arg as the library's name and flags. Returns 0, AMBIGUOUS, -ENOENT (neither
 * namespace holds the name), or -ENAMETOOLONG. */
static int resolve(const char *arg, int space, char *out, size_t cap, unsigned *flags)
{
	int sysv;
	if (strlen(arg) >= cap)
		return -ENAMETOOLONG;
	if (space == SPACE_POSIX) {
		const char *file = arg[0] == '/' ? arg + 1 : arg;
		if (is_live_token(file))
			return -ENOENT; /* not a segment, and not for rm to take away */
		sysv = 0;
	} else if (space == SPACE_SYSV || !strncmp(arg, "id:", 3) ||
		   (arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X'))) {
		sysv = 1;
	} else {
		int p = posix_exists(arg), s = sysv_exists(arg);
		if (p && s)
			return AMBIGUOUS;
		if (!p && !s)
			return -ENOENT;
		sysv = s;
	}
	snprintf(out, cap, "%s", arg);
	*flags = sysv ? SHMKIT_SEG_SYSV : 0;
	return 0;
}

/* resolve(), with the error said; returns 0, or the exit code. */
static int resolve_or_say(const char *cmd, const char *arg, int space, char *out, size_t cap,
			  unsigned *flags)
{
	int r = resolve(arg, space, out, cap, flags);
	if (r == 0)
		return 0;
	if (r == AMBIGUOUS) {
		fprintf(stderr, "shmkit %s: %s: both a POSIX and a System V segment have this name: "
				"say --posix or --sysv\n", cmd, arg);
		return SHMKIT_EXIT_USAGE;
	}
	fprintf(stderr, "shmkit %s: %s: %s\n", cmd, arg, shmkit_strerror(r));
	return SHMKIT_EXIT_FAIL;
}

/* Removes a resolved name. POSIX names of NAME_MAX bytes are longer than shmkit makes
 * (so they are never shmkit segments) and the library refuses them: shm_unlink(3). */
static int remove_name(const char *name, unsigned flags)
{
	int r = shmkit_seg_unlink(name, flags);
	if (r == -ENAMETOOLONG && !(flags & SHMKIT_SEG_SYSV))
		r = shm_unlink(name) < 0 ? -errno : 0;
	return r;
}

int shmkit_cmd_rm(int argc, char **argv)
{
	static const char usage[] = "shmkit rm [--posix|--sysv] NAME|0xKEY|id:ID...";
	int space, status = SHMKIT_EXIT_OK;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nRemove segments: by name (found among POSIX and System V\n"
		       "segments; --posix or --sysv says which when both have it), by System V\n"
		       "key (0x...) or by System V id (id:N). shmkit segments are marked deleted\n"
		       "first, so their users get EIDRM. Nothing is removed if a name needs\n"
		       "--posix or --sysv.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int n = name_args(argc, argv, &space, NULL);
	if (n <= 0)
		return shmkit__usage_error(usage);
	struct {
		char name[NAME_MAX + 2];
		unsigned flags;
		int ok;
	} *t = calloc((size_t)n, sizeof *t);
	if (!t) {
		fprintf(stderr, "shmkit rm: out of memory\n");
		return SHMKIT_EXIT_FAIL;
	}
	/* Every name is resolved before anything is removed: a name that needs --posix or
	 * --sysv stops the whole command, since the user's intent is unknown. */
	for (int i = 0; i < n; i++) {
		int r = resolve_or_say("rm", argv[i], space, t[i].name, sizeof t[i].name, &t[i].flags);
		t[i].ok = r == 0;
		if (r > status)
			status = r;
	}
	for (int i = 0; status != SHMKIT_EXIT_USAGE && i < n; i++) {
		if (!t[i].ok)
			continue;
		int r = remove_name(t[i].name, t[i].flags);
		if (r < 0) {
			fprintf(stderr, "shmkit rm: %s: %s\n", argv[i], shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
		}
	}
	free(t);
	return status;
}

/* gc's last look at a System V segment before removing it: still the one judged
 * (ids are reused), still unattached. (POSIX: probe_unused() is that look.) */
static int still_garbage(const struct entry *e)
{
	struct shmkit_seg_info in;
	if (!e->in.sysv)
		return 1;
	return shmkit_seg_inspect(e->obj, SHMKIT_SEG_SYSV, &in) == 0 && in.shmid == e->in.shmid &&
	       in.key == e->in.key &&
	       in.nattch == 0 && in.kind != SHMKIT_KIND_RAW && !in.persistent &&
	       in.creator_alive == 0;
}

/* Liveness token files in /dev/shm, for --dry-run to mention. */
static int count_tokens(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += is_live_token(de->d_name);
	if (d)
		closedir(d);
	return n;
}

int shmkit_cmd_gc(int argc, char **argv)
{
	static const char usage[] = "shmkit gc [--dry-run] [--all-users]";
	int dry = 0, all = 0, status = SHMKIT_EXIT_OK, removed = 0;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nRemove shmkit segments that are provably garbage: not persistent,\n"
		       "their creator dead (as the library proves it), and no process maps,\n"
		       "holds or attaches them. Segments shmkit did not create are never\n"
		       "touched, nor other users' segments without --all-users. Also removes\n"
		       "the liveness tokens of dead processes. --dry-run (-n) removes nothing\n"
		       "and says, for every segment, whether it would go and why.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n"))
			dry = 1;
		else if (!strcmp(argv[i], "--all-users"))
			all = 1;
		else
			return shmkit__usage_error(usage);
	}
	struct list l = {0};
	if (collect(&l) < 0) {
		fprintf(stderr, "shmkit gc: out of memory\n");
		free(l.e);
		return SHMKIT_EXIT_FAIL;
	}
	/* A process that opens a segment while probe_unused() holds its lease makes the
	 * kernel signal us; the lease is dropped at once anyway, so the notice is not needed
	 * (and SIGIO would end the process). */
	signal(SIGIO, SIG_IGN);
	for (int i = 0; i < l.n; i++) {
		struct entry *e = &l.e[i];
		char why[256], name[SHMKIT_TEXT_MAX];
		/* The proof is taken last, just before the removal it allows. */
		if (!e->in.sysv && e->in.kind != SHMKIT_KIND_RAW && e->users <= 0)
			e->lease = probe_unused(e);
		int garbage = verdict(e, all, why, sizeof why);
		const char *type = e->in.sysv ? "sysv" : "posix";
		shmkit__text_str(name, sizeof name, e->name);
		if (dry) {
			printf("%s %s segment %s: %s\n", garbage ? "would remove" : "keep", type, name, why);
			continue;
		}
		if (!garbage)
			continue;
		if (!still_garbage(e))
			continue; /* changed since we looked: judged again next time */
		int r;
		if (e->in.sysv) {
			r = shmkit_seg_unlink(e->obj, SHMKIT_SEG_SYSV);
		} else {
			/* The lease held across the removal: a process that opens the name
			 * meanwhile waits, then finds the segment deleted (as absent). */
			int fd;
			r = lease_take(e, &fd);
			if (r == 0)
				continue; /* in use after all */
			if (r == 1) {
				r = shmkit_seg_unlink_fd(fd, e->obj);
				lease_drop(fd);
			}
		}
		if (r < 0 && r != -ENOENT) {
			fprintf(stderr, "shmkit gc: %s: %s\n", name, shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
			continue;
		}
		removed++;
		printf("removed %s segment %s (%s, %s)\n", type, name, kind_name(e->in.kind), why);
	}
	if (dry) {
		int n = count_tokens();
		if (n)
			printf("%d liveness token%s: gc removes those of dead processes\n", n,
			       n == 1 ? "" : "s");
	} else {
		int r = shmkit_live_sweep();
		if (r < 0) {
			fprintf(stderr, "shmkit gc: liveness tokens: %s\n", shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
		} else if (r > 0) {
			printf("removed %d liveness token%s of dead processes\n", r, r == 1 ? "" : "s");
		}
		if (!removed)
			printf("no stale segments\n");
	}
	free(l.e);
	return status;
}

int shmkit_cmd_stat(int argc, char **argv)
{
	static const char usage[] = "shmkit stat [--posix|--sysv] [--json] NAME|0xKEY|id:ID";
	char lib_name[NAME_MAX + 2];
	unsigned flags;
	int space, json = 0;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nDescribe one segment: what 'ls' shows, plus a blob's size and\n"
		       "write count, a channel's capacity, use, peers and counters, or a\n"
		       "topic's mode, capacity, publishers, counters and subscribers (each with\n"
		       "its pid, liveness, messages received and lost, and lag).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (name_args(argc, argv, &space, &json) != 1)
		return shmkit__usage_error(usage);
	const char *arg = argv[0];
	int r = resolve_or_say("stat", arg, space, lib_name, sizeof lib_name, &flags);
	if (r)
		return r;
	struct list l = {0};
	if (collect(&l) < 0) {
		fprintf(stderr, "shmkit stat: out of memory\n");
		free(l.e);
		return SHMKIT_EXIT_FAIL;
	}
	struct shmkit_seg_info in;
	struct entry *e = NULL;
	r = shmkit_seg_inspect(lib_name, flags, &in);
	if (r == -ENAMETOOLONG && !(flags & SHMKIT_SEG_SYSV)) {
		/* A 255-byte POSIX name, longer than the library opens: what ls lists. */
		char obj[sizeof lib_name + 1];
		snprintf(obj, sizeof obj, "/%s", lib_name[0] == '/' ? lib_name + 1 : lib_name);
		for (int i = 0; i < l.n && !e; i++)
			if (!l.e[i].in.sysv && !strcmp(l.e[i].obj, obj))
				e = &l.e[i];
		if (e) {
			in = e->in;
			r = 0;
		}
	}
	if (r < 0) {
		fprintf(stderr, "shmkit stat: %s: %s\n", arg, shmkit_strerror(r));
		free(l.e);
		return SHMKIT_EXIT_FAIL;
	}
	for (int i = 0; i < l.n && !e; i++)
		if ((in.sysv && l.e[i].in.sysv && l.e[i].in.shmid == in.shmid) ||
		    (!in.sysv && !l.e[i].in.sysv && !strncmp(l.e[i].obj, in.name, sizeof in.name)))
			e = &l.e[i];
	struct entry one = {.in = in, .users = in.sysv ? in.nattch : -1};
	if (!e) {
		char why[256];
		snprintf(one.name, sizeof one.name, "%.*s", (int)sizeof in.name - 1, in.name);
		one.stale = verdict(&one, 1, why, sizeof why);
		e = &one;
	}
	/* The kind's own figures, through a read-only handle of that kind. */
	char extra[1024] = "", *topic = NULL;
	char name_for_kind[SHMKIT_NAME_MAX + 8];
	/* By what the user named, not by the header's name: a peer may have written
	 * another segment's name there. */
	snprintf(name_for_kind, sizeof name_for_kind, "%s", lib_name);
	if (e->in.kind == SHMKIT_KIND_BLOB && e->in.state == SHMKIT_STATE_READY) {
		shmkit_blob *b;
		if (shmkit_blob_open(name_for_kind, 0, 0, flags | SHMKIT_SEG_RDONLY, &b) == 0) {
			snprintf(extra, sizeof extra,
				 json ? ", \"blob\": {\"size\": %zu, \"writes\": %lld}"
					: "blob size:    %zu bytes\nblob writes:  %lld\n",
				 shmkit_blob_size(b), (long long)shmkit_blob_version(b));
			shmkit_blob_close(b);
		}
	} else if (e->in.kind == SHMKIT_KIND_CHAN && e->in.state == SHMKIT_STATE_READY) {
		shmkit_chan *ch;
		struct shmkit_chan_stats st;
		if (shmkit_chan_open(name_for_kind, SHMKIT_CHAN_OBSERVER, 0, 0, flags, &ch) == 0 &&
		    shmkit_chan_stats(ch, &st) == 0) {
			snprintf(extra, sizeof extra,
				 json ? ", \"chan\": {\"capacity\": %llu, \"used\": %llu, \"max_msg\": %llu, "
					  "\"producer_pid\": %d, \"consumer_pid\": %d, \"msgs_sent\": %llu, "
					  "\"bytes_sent\": %llu, \"msgs_recv\": %llu, \"bytes_recv\": %llu, "
					  "\"producer_sleeps\": %llu, \"consumer_sleeps\": %llu, \"wakes\": %llu, "
					  "\"producer_closed\": %s}"
					: "capacity:     %llu bytes\nused:         %llu bytes\nmax message:  %llu bytes\n"
					  "producer:     pid %d\nconsumer:     pid %d\nsent:         %llu messages, %llu bytes\n"
					  "received:     %llu messages, %llu bytes\nsleeps:       producer %llu, consumer %llu\n"
					  "wakes:        %llu\nclosed:       %s\n",
				 (unsigned long long)st.capacity, (unsigned long long)st.used,
				 (unsigned long long)st.max_msg, st.producer_pid, st.consumer_pid,
				 (unsigned long long)st.msgs_sent, (unsigned long long)st.bytes_sent,
				 (unsigned long long)st.msgs_recv, (unsigned long long)st.bytes_recv,
				 (unsigned long long)st.producer_sleeps, (unsigned long long)st.consumer_sleeps,
				 (unsigned long long)st.wakes,
				 st.producer_closed ? (json ? "true" : "yes") : (json ? "false" : "no"));
		}
		shmkit_chan_close(ch);
	} else if (e->in.kind == SHMKIT_KIND_TOPIC && e->in.state == SHMKIT_STATE_READY) {
		/* A list of subscribers: longer than extra holds. */
		topic = shmkit__topic_describe(name_for_kind, flags, json);
	}
	if (json) {
		json_entry(stdout, e, topic ? topic : extra);
		printf("\n");
	} else {
		char name[SHMKIT_TEXT_MAX];
		shmkit__text_str(name, sizeof name, e->name);
		printf("name:         %s\nbackend:      %s\n", name, e->in.sysv ? "sysv" : "posix");
		if (e->in.sysv)
			printf("key:          0x%08x\nid:           %d\n", (unsigned)e->in.key, e->in.shmid);
		printf("size:         %llu bytes (data %llu)\nmode:         %04o\nowner:        uid %u gid %u\n",
		       (unsigned long long)e->in.total_size, (unsigned long long)e->in.data_size,
		       e->in.mode, e->in.uid, e->in.gid);
		if (e->users >= 0)
			printf("attached:     %s%d processes\n", e->blind ? "at least " : "", e->users);
		else
			printf("attached:     unknown\n");
		if (e->in.kind == SHMKIT_KIND_RAW) {
			printf("shmkit:       no (raw segment)\n");
		} else {
			char when[64] = "?";
			time_t t = (time_t)(e->in.ctime_ns / SHMKIT_SEC);
			struct tm tm;
			if (localtime_r(&t, &tm))
				strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			printf("kind:         %s\nstate:        %s\ncreator:      pid %d (%s)\ncreated:      %s\n"
			       "persistent:   %s\nstale:        %s\n",
			       kind_name(e->in.kind), state_name(e), e->in.creator_pid,
			       e->in.creator_alive == 1 ? "alive" : e->in.creator_alive == 0 ? "dead" : "unknown",
			       when, e->in.persistent ? "yes" : "no", e->stale ? "yes" : "no");
		}
		fputs(topic ? topic : extra, stdout);
	}
	free(topic);
	free(l.e);
	return SHMKIT_EXIT_OK;
}

int shmkit_cmd_create(int argc, char **argv)
{
	static const char usage[] =
	    "shmkit create [--sysv] [--raw] [--temporary] [--mode OCTAL] NAME SIZE";
	unsigned flags = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, mode = 0600;
	int temporary = 0;
	const char *name = NULL, *size_arg = NULL;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nCreate a segment of SIZE data bytes (suffixes k, M, G). It is\n"
		       "persistent, which 'shmkit gc' never removes, unless --temporary: then gc\n"
		       "removes it once its creator is gone and nobody uses it, which for this\n"
		       "command is at once. --raw makes one without a shmkit header, as plain\n"
		       "shm_open/shmget programs and Python do (gc never removes those); --mode\n"
		       "sets its permissions exactly (default 0600).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sysv")) {
			flags |= SHMKIT_SEG_SYSV;
		} else if (!strcmp(argv[i], "--raw")) {
			flags |= SHMKIT_SEG_RAW;
		} else if (!strcmp(argv[i], "--temporary")) {
			temporary = 1;
		} else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			char *end;
			unsigned long m = strtoul(argv[++i], &end, 8);
			if (*end || m > 0777 || m == 0)
				return shmkit__usage_error(usage);
			mode = (unsigned)m;
		} else if (argv[i][0] == '-' || (name && size_arg)) {
			return shmkit__usage_error(usage);
		} else if (!name) {
			name = argv[i];
		} else {
			size_arg = argv[i];
		}
	}
	if (!name || !size_arg)
		return shmkit__usage_error(usage);
	/* Every other command reads these forms as a System V id or key: a POSIX segment
	 * so named would be mistaken for another segment there. */
	if (!(flags & SHMKIT_SEG_SYSV) &&
	    (!strncmp(name, "id:", 3) || (name[0] == '0' && (name[1] == 'x' || name[1] == 'X')))) {
		fprintf(stderr, "shmkit create: %s: names of the form id:N and 0x... reach System V "
				"segments by id or key; give another name (or /%s)\n", name, name);
		return SHMKIT_EXIT_USAGE;
	}
	char *end;
	errno = 0;
	unsigned long long size = strtoull(size_arg, &end, 0);
	unsigned shift = *end == 'k' || *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (errno || *end || size == 0 || size > (SIZE_MAX >> shift) || size_arg[0] == '-')
		return shmkit__usage_error(usage);
	/* A segment made from the shell outlives the command by design: it is data left
	 * for later, never garbage. A raw one has no header to record that in. */
	if (!temporary && !(flags & SHMKIT_SEG_RAW))
		flags |= SHMKIT_SEG_PERSIST;
	shmkit_seg *seg;
	int r = shmkit_seg_open(name, SHMKIT_KIND_DATA, (size_t)(size << shift), mode, flags, &seg);
	if (r < 0) {
		fprintf(stderr, "shmkit create: %s: %s\n", name, shmkit_strerror(r));
		return SHMKIT_EXIT_FAIL;
	}
	struct shmkit_seg_info in;
	if (shmkit_seg_stat(seg, &in) == 0 && in.sysv)
		printf("%s: key 0x%08x id %d\n", name, (unsigned)in.key, in.shmid);
	shmkit_seg_close(seg);
	return SHMKIT_EXIT_OK;
}

/* Opens a data, blob or raw segment for cat/write: a blob through its API (whole
 * snapshots), anything else as bytes. */
struct target {
	shmkit_seg *seg;
	shmkit_blob *blob;
};

/* Returns 0, or the exit code after saying what went wrong. */
static int open_target(const char *arg, int space, int rdonly, struct target *t, const char *cmd)
{
	char name[NAME_MAX + 2];
	unsigned flags;
	struct shmkit_seg_info in;
	const char *hint = "";
	int r = resolve_or_say(cmd, arg, space, name, sizeof name, &flags);
	if (r)
		return r;
	r = shmkit_seg_inspect(name, flags, &in);
	if (r == 0 && rdonly)
		flags |= SHMKIT_SEG_RDONLY;
	if (r == 0 && in.kind == SHMKIT_KIND_BLOB)
		r = shmkit_blob_open(name, 0, 0, flags, &t->blob);
	else if (r == 0 && in.kind == SHMKIT_KIND_CHAN)
		r = -EPROTO, hint = " (a channel: use send/recv)";
	else if (r == 0 && in.kind == SHMKIT_KIND_TOPIC)
		r = -EPROTO, hint = " (a topic: use pub/sub)";
	else if (r == 0)
		r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0,
				    flags | (in.kind == SHMKIT_KIND_RAW ? SHMKIT_SEG_RAW : 0), &t->seg);
	if (r < 0) {
		fprintf(stderr, "shmkit %s: %s: %s%s\n", cmd, arg, shmkit_strerror(r),
			hint);
		return SHMKIT_EXIT_FAIL;
	}
	return 0;
}

int shmkit_cmd_cat(int argc, char **argv)
{
	static const char usage[] = "shmkit cat [--posix|--sysv] NAME|0xKEY|id:ID";
	int space;
	struct target t = {0};
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nWrite a segment's data bytes to standard output (a blob: one\n"
		       "consistent snapshot).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (name_args(argc, argv, &space, NULL) != 1)
		return shmkit__usage_error(usage);
	const char *arg = argv[0];
	int r = open_target(arg, space, 1, &t, "cat");
	if (r)
		return r;
	const void *data;
	size_t size;
	void *copy = NULL;
	if (t.blob) {
		size = shmkit_blob_size(t.blob);
		copy = malloc(size ? size : 1);
		ssize_t n = copy ? shmkit_blob_read(t.blob, copy, size, NULL) : -ENOMEM;
		if (n < 0) {
			fprintf(stderr, "shmkit cat: %s: %s\n", arg, shmkit_strerror((int)n));
			free(copy);
			shmkit_blob_close(t.blob);
			return SHMKIT_EXIT_FAIL;
		}
		data = copy;
	} else {
		data = shmkit_seg_data(t.seg);
		size = shmkit_seg_size(t.seg);
	}
	int status = fwrite(data, 1, size, stdout) == size && fflush(stdout) == 0 ? SHMKIT_EXIT_OK
										 : SHMKIT_EXIT_FAIL;
	if (status)
		fprintf(stderr, "shmkit cat: %s: %s\n", arg, strerror(errno));
	free(copy);
	shmkit_blob_close(t.blob);
	shmkit_seg_close(t.seg);
	return status;
}

int shmkit_cmd_write(int argc, char **argv)
{
	static const char usage[] = "shmkit write [--posix|--sysv] NAME|0xKEY|id:ID < DATA";
	int space;
	struct target t = {0};
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nCopy standard input into a segment's data area, from its start.\n"
		       "Refuses (and writes nothing) when the input is larger than the segment.\n"
		       "A blob gets it as one write that readers see whole.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (name_args(argc, argv, &space, NULL) != 1)
		return shmkit__usage_error(usage);
	const char *arg = argv[0];
	int r = open_target(arg, space, 0, &t, "write");
	if (r)
		return r;
	size_t cap = t.blob ? shmkit_blob_size(t.blob) : shmkit_seg_size(t.seg);
	/* Read everything first: a too-large input must not leave half a write. */
	unsigned char *buf = malloc(cap + 1);
	size_t len = 0;
	int status = SHMKIT_EXIT_OK;
	if (!buf) {
		fprintf(stderr, "shmkit write: %s: out of memory\n", arg);
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	for (;;) {
		size_t n = fread(buf + len, 1, cap + 1 - len, stdin);
		len += n;
		if (n == 0 || len == cap + 1)
			break;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "shmkit write: reading input: %s\n", strerror(errno));
		status = SHMKIT_EXIT_FAIL;
	} else if (len > cap) {
		fprintf(stderr, "shmkit write: %s: input does not fit in %zu bytes; nothing written\n",
			arg, cap);
		status = SHMKIT_EXIT_FAIL;
	} else if (t.blob) {
		r = shmkit_blob_write(t.blob, buf, len);
		if (r < 0) {
			fprintf(stderr, "shmkit write: %s: %s\n", arg, shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
		}
	} else {
		memcpy(shmkit_seg_data(t.seg), buf, len);
	}
out:
	free(buf);
	shmkit_blob_close(t.blob);
	shmkit_seg_close(t.seg);
	return status;
}

/* Options of send and recv. */
struct chan_opts {
	const char *name;
	unsigned flags;
	long count;
	double timeout;
	size_t capacity;
};

static int chan_args(int argc, char **argv, struct chan_opts *o, int recv, const char *usage)
{
	memset(o, 0, sizeof *o);
	o->flags = SHMKIT_SEG_CREATE;
	o->count = -1;
	o->timeout = -1;
	o->capacity = 1 << 20;
	for (int i = 1; i < argc; i++) {
		char *end;
		if (!strcmp(argv[i], "--sysv")) {
			o->flags |= SHMKIT_SEG_SYSV;
		} else if (recv && !strcmp(argv[i], "-n") && i + 1 < argc) {
			o->count = strtol(argv[++i], &end, 10);
			if (*end || o->count < 0)
				return shmkit__usage_error(usage);
		} else if (recv && !strcmp(argv[i], "--timeout") && i + 1 < argc) {
			o->timeout = strtod(argv[++i], &end);
			if (*end || o->timeout < 0)
				return shmkit__usage_error(usage);
		} else if (!strcmp(argv[i], "--capacity") && i + 1 < argc) {
			unsigned long long c = strtoull(argv[++i], &end, 0);
			if (*end || c == 0)
				return shmkit__usage_error(usage);
			o->capacity = (size_t)c;
		} else if (argv[i][0] == '-' || o->name) {
			return shmkit__usage_error(usage);
		} else {
			o->name = argv[i];
		}
	}
	return o->name ? 0 : shmkit__usage_error(usage);
}

static int send_one(void *ch, const char *msg, size_t len)
{
	return shmkit_chan_send(ch, msg, len, SHMKIT_FOREVER);
}

int shmkit_cmd_send(int argc, char **argv)
{
	static const char usage[] = "shmkit send [--sysv] [--capacity BYTES] NAME < LINES";
	struct chan_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nSend each line of standard input (without its newline) as one\n"
		       "message on channel NAME, creating the channel if needed (default 1 MiB\n"
		       "ring). Empty lines are skipped: a message has at least one byte. Closing\n"
		       "at end of input is end-of-stream for the receiver.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = chan_args(argc, argv, &o, 0, usage);
	if (r)
		return r;
	shmkit_chan *ch;
	r = shmkit_chan_open(o.name, SHMKIT_CHAN_PRODUCER, o.capacity, 0600, o.flags, &ch);
	if (r == -EINVAL && o.capacity == 1 << 20) /* exists with another capacity */
		r = shmkit_chan_open(o.name, SHMKIT_CHAN_PRODUCER, 0, 0600, o.flags, &ch);
	if (r < 0) {
		fprintf(stderr, "shmkit send: %s: %s\n", o.name, shmkit_strerror(r));
		return SHMKIT_EXIT_FAIL;
	}
	int status = shmkit__send_lines(stdin, "send", o.name, send_one, ch);
	shmkit_chan_close(ch);
	return status;
}

int shmkit_cmd_recv(int argc, char **argv)
{
	static const char usage[] = "shmkit recv [--sysv] [-n COUNT] [--timeout SECONDS] NAME";
	struct chan_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nReceive messages from channel NAME and print each on its own line,\n"
		       "creating the channel if needed. Stops at end-of-stream (the sender\n"
		       "closed), after COUNT messages, or when no message came for SECONDS\n"
		       "(exit 1 then). A sender that died is an error.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = chan_args(argc, argv, &o, 1, usage);
	if (r)
		return r;
	shmkit_chan *ch;
	r = shmkit_chan_open(o.name, SHMKIT_CHAN_CONSUMER, o.capacity, 0600, o.flags, &ch);
	if (r == -EINVAL)
		r = shmkit_chan_open(o.name, SHMKIT_CHAN_CONSUMER, 0, 0600, o.flags, &ch);
	if (r < 0) {
		fprintf(stderr, "shmkit recv: %s: %s\n", o.name, shmkit_strerror(r));
		return SHMKIT_EXIT_FAIL;
	}
	int64_t timeout = o.timeout < 0 ? SHMKIT_FOREVER : (int64_t)(o.timeout * 1e9);
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	int status = SHMKIT_EXIT_OK;
	for (long got = 0; buf && (o.count < 0 || got < o.count); got++) {
		ssize_t n = shmkit_chan_recv(ch, buf, cap, timeout);
		if (n == -EMSGSIZE) {
			/* The message stays queued: grow to the largest the ring takes. */
			struct shmkit_chan_stats st;
			shmkit_chan_stats(ch, &st);
			char *bigger = realloc(buf, (size_t)st.max_msg);
			if (!bigger)
				break;
			buf = bigger;
			cap = (size_t)st.max_msg;
			got--;
			continue;
		}
		if (n == 0)
			break; /* end-of-stream */
		if (n < 0) {
			fprintf(stderr, "shmkit recv: %s: %s\n", o.name,
				n == -ETIMEDOUT ? "no message before the timeout" : shmkit_strerror((int)n));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		putchar('\n');
		fflush(stdout);
	}
	if (!buf) {
		fprintf(stderr, "shmkit recv: out of memory\n");
		status = SHMKIT_EXIT_FAIL;
	}
	free(buf);
	shmkit_chan_close(ch);
	return status;
}
