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

/* ---- what ls, stat and gc know about a segment: struct entry, in cmd.h ---- */

#define LEASE_UNTRIED 2

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
int shmkit__collect(struct list *l)
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

const char *shmkit__kind_name(unsigned k)
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
			shmkit__kind_name(e->in.kind), state_name(e), e->in.creator_pid,
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
	if (shmkit__collect(&l) < 0) {
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
			       cpid, alive_name(e->in.creator_alive), users,
			       shmkit__kind_name(e->in.kind), state_name(e),
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
	if (shmkit__collect(&l) < 0) {
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
		printf("removed %s segment %s (%s, %s)\n", type, name,
		       shmkit__kind_name(e->in.kind), why);
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
		printf("usage: %s\n\nDescribe one segment: what 'ls' shows, plus a data segment's bytes\n"
		       "in use, a blob's size and write count, a channel's capacity, use, peers\n"
		       "and counters, or a topic's mode, capacity, publishers, counters and\n"
		       "subscribers (each with its pid, liveness, messages received and lost,\n"
		       "and lag).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (name_args(argc, argv, &space, &json) != 1)
		return shmkit__usage_error(usage);
	const char *arg = argv[0];
	int r = resolve_or_say("stat", arg, space, lib_name, sizeof lib_name, &flags);
	if (r)
		return r;
	struct list l = {0};
	if (shmkit__collect(&l) < 0) {
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
	if (e != &one && !e->in.sysv && e->in.kind != SHMKIT_KIND_RAW && e->users <= 0) {
		/* A /proc scan cannot see every process (root cannot read pid 1's maps in a
		 * container): ask the kernel, as gc does, so that stat says stale exactly
		 * when gc --dry-run would remove it. The lease is dropped at once; SIGIO, as
		 * in gc, is not needed. */
		char why[256];
		signal(SIGIO, SIG_IGN);
		e->lease = probe_unused(e);
		e->stale = verdict(e, 1, why, sizeof why);
	}
	/* The kind's own figures, through a read-only handle of that kind. */
	char extra[1024] = "", *topic = NULL;
	struct shmkit__figures fig = {0};
	char name_for_kind[SHMKIT_NAME_MAX + 8];
	/* By what the user named, not by the header's name: a peer may have written
	 * another segment's name there. */
	snprintf(name_for_kind, sizeof name_for_kind, "%s", lib_name);
	if (e->in.kind == SHMKIT_KIND_DATA && e->in.state == SHMKIT_STATE_READY) {
		shmkit_seg *d;
		if (shmkit_seg_open(name_for_kind, SHMKIT_KIND_DATA, 0, 0, flags | SHMKIT_SEG_RDONLY,
				    &d) == 0)
			snprintf(extra, sizeof extra,
				 json ? ", \"used\": %zu" : "used:         %zu bytes (what cat prints)\n",
				 shmkit_seg_used(d));
		shmkit_seg_close(d);
	} else if (e->in.kind == SHMKIT_KIND_BLOB && e->in.state == SHMKIT_STATE_READY) {
		if (shmkit__figures_read(name_for_kind, flags, SHMKIT_KIND_BLOB, &fig) == 0)
			snprintf(extra, sizeof extra,
				 json ? ", \"blob\": {\"size\": %zu, \"writes\": %lld}"
					: "blob size:    %zu bytes\nblob writes:  %lld\n",
				 fig.blob_size, (long long)fig.blob_version);
	} else if (e->in.kind == SHMKIT_KIND_CHAN && e->in.state == SHMKIT_STATE_READY) {
		if (shmkit__figures_read(name_for_kind, flags, SHMKIT_KIND_CHAN, &fig) == 0) {
			const struct shmkit_chan_stats st = fig.chan;
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
	} else if (e->in.kind == SHMKIT_KIND_TOPIC && e->in.state == SHMKIT_STATE_READY) {
		/* A list of subscribers: longer than extra holds. */
		topic = shmkit__topic_describe(name_for_kind, flags, json);
	}
	char why[128];
	if (!topic && !extra[0] &&
	    shmkit__strerror_at(-EPROTO, lib_name, flags, why, sizeof why) == why)
		/* Another shmkit's layout: its figures cannot be read, and that is why. */
		snprintf(extra, sizeof extra, json ? ", \"layout\": \"%s\"" : "layout:       %s\n",
			 why);
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
			       shmkit__kind_name(e->in.kind), state_name(e), e->in.creator_pid,
			       e->in.creator_alive == 1 ? "alive" : e->in.creator_alive == 0 ? "dead" : "unknown",
			       when, e->in.persistent ? "yes" : "no", e->stale ? "yes" : "no");
		}
		fputs(topic ? topic : extra, stdout);
	}
	free(topic);
	free(l.e);
	return SHMKIT_EXIT_OK;
}

/* ---- saying what is wrong with an argument ---- */

/* "a channel", for "/x is a channel, not a data segment". */
const char *shmkit__kind_noun(unsigned k)
{
	switch (k) {
	case SHMKIT_KIND_DATA:
		return "a data segment";
	case SHMKIT_KIND_BLOB:
		return "a blob";
	case SHMKIT_KIND_CHAN:
		return "a channel";
	case SHMKIT_KIND_TOPIC:
		return "a topic";
	case SHMKIT_KIND_RAW:
		return "a raw segment (not shmkit's)";
	default:
		return "a segment of an unknown kind";
	}
}

/* Which of the library's naming rules (shmkit_seg_open(3)) name breaks, or NULL.
 * flags: SHMKIT_SEG_SYSV, SHMKIT_SEG_CREATE and SHMKIT_SEG_RAW as the command will
 * open it. The library is the judge; this only puts its -EINVAL into words first. */
static const char *name_problem(const char *name, unsigned flags)
{
	if (!name[0])
		return "an empty name";
	if (flags & SHMKIT_SEG_SYSV) {
		if (strlen(name) > SHMKIT_NAME_MAX)
			return "a System V name has at most 255 bytes";
		int id = !strncmp(name, "id:", 3);
		int key = name[0] == '0' && (name[1] == 'x' || name[1] == 'X');
		if (id) {
			size_t d = strspn(name + 3, "0123456789");
			if (d == 0 || d > 10 || name[3 + d] || strtoll(name + 3, NULL, 10) > INT_MAX)
				return "id:N needs a System V id: decimal digits, at most 2147483647";
			if (flags & SHMKIT_SEG_CREATE)
				return "id:N names a segment that exists; it cannot be created";
		}
		if (key) {
			size_t d = strspn(name + 2, "0123456789abcdefABCDEF");
			if (d == 0 || d > 8 || name[2 + d] || strtoul(name + 2, NULL, 16) == 0)
				return "0x... needs a System V key: 1 to 8 hex digits, not all zero";
			if ((flags & SHMKIT_SEG_CREATE) && !(flags & SHMKIT_SEG_RAW))
				return "a shmkit segment is found again by its name, so it is created "
				       "with a name, not a key (a key only with --raw)";
		}
		return NULL;
	}
	const char *p = name[0] == '/' ? name + 1 : name;
	if (!p[0])
		return "a POSIX name needs a character after its '/'";
	if (strchr(p, '/'))
		return "a POSIX name is one component: a '/' at its start, no other";
	if (!strcmp(p, ".") || !strcmp(p, ".."))
		return "'.' and '..' are not names";
	if (strlen(p) > SHMKIT_NAME_MAX - 1)
		return "a POSIX name has at most 254 bytes after its '/'";
	return NULL;
}

/* An argument that is not what the option wants: "shmkit CMD: WHAT: WHY", then the
 * usage line. */
static int bad_arg(const char *cmd, const char *what, const char *why, const char *usage)
{
	fprintf(stderr, "shmkit %s: %s: %s\n", cmd, what, why);
	return shmkit__usage_error(usage);
}

/* A size in bytes with an optional k, M or G suffix (powers of 1024), at least 1 and
 * at most limit: 0, or the exit code after saying what is wrong. */
static int parse_size(const char *cmd, const char *opt, const char *arg, uint64_t limit,
		      const char *usage, uint64_t *out)
{
	char what[64], why[128];
	char *end;
	snprintf(what, sizeof what, "%s '%.32s'", opt, arg);
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	unsigned shift = *end == 'k' || *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (end == arg || *end || arg[0] == '-' || arg[0] == '+' || (errno && errno != ERANGE))
		return bad_arg(cmd, what, "not a size in bytes (digits, then k, M or G for KiB, "
					  "MiB, GiB)", usage);
	if (v == 0)
		return bad_arg(cmd, what, "a size must be at least 1 byte", usage);
	if (errno == ERANGE || v > (limit >> shift)) {
		snprintf(why, sizeof why, "larger than the most, %llu bytes",
			 (unsigned long long)limit);
		return bad_arg(cmd, what, why, usage);
	}
	*out = (uint64_t)v << shift;
	return 0;
}

/* A number with no sign: 0, or the exit code after saying what is wrong. */
static int parse_count(const char *cmd, const char *opt, const char *arg, const char *usage,
		       unsigned long long *out)
{
	char what[64];
	char *end;
	snprintf(what, sizeof what, "%s '%.32s'", opt, arg);
	errno = 0;
	*out = strtoull(arg, &end, 10);
	if (end == arg || *end || arg[0] == '-' || arg[0] == '+' || errno)
		return bad_arg(cmd, what, "not a whole number (decimal digits)", usage);
	return 0;
}

/* The largest segment the library makes: 64 TiB of data (seg.c's SIZE_LIMIT). */
#define SEG_SIZE_MAX ((uint64_t)1 << 46)

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
	for (int i = 1, opts = 1; i < argc; i++) {
		const char *a = argv[i];
		char what[64];
		if (opts && !strcmp(a, "--")) {
			opts = 0;
		} else if (opts && !strcmp(a, "--sysv")) {
			flags |= SHMKIT_SEG_SYSV;
		} else if (opts && !strcmp(a, "--raw")) {
			flags |= SHMKIT_SEG_RAW;
		} else if (opts && !strcmp(a, "--temporary")) {
			temporary = 1;
		} else if (opts && !strcmp(a, "--mode")) {
			char *end;
			if (i + 1 == argc)
				return bad_arg("create", "--mode", "needs a value", usage);
			const char *m_arg = argv[++i];
			snprintf(what, sizeof what, "--mode '%.32s'", m_arg);
			errno = 0;
			unsigned long m = strtoul(m_arg, &end, 8);
			if (end == m_arg || *end || m_arg[0] == '-' || m_arg[0] == '+' || errno ||
			    m > 0777 || m == 0)
				return bad_arg("create", what,
					       "not a permission mode: octal digits, 1 to 0777", usage);
			mode = (unsigned)m;
		} else if (opts && a[0] == '-' && a[1]) {
			snprintf(what, sizeof what, "'%.32s'", a);
			return bad_arg("create", what, "no such option", usage);
		} else if (!name) {
			name = a;
		} else if (!size_arg) {
			size_arg = a;
		} else {
			snprintf(what, sizeof what, "'%.32s'", a);
			return bad_arg("create", what, "one argument too many", usage);
		}
	}
	if (!name || !size_arg)
		return bad_arg("create", name ? "SIZE" : "NAME and SIZE", "missing", usage);
	/* Every other command reads these forms as a System V id or key: a POSIX segment
	 * so named would be mistaken for another segment there. */
	if (!(flags & SHMKIT_SEG_SYSV) &&
	    (!strncmp(name, "id:", 3) || (name[0] == '0' && (name[1] == 'x' || name[1] == 'X')))) {
		fprintf(stderr, "shmkit create: %s: names of the form id:N and 0x... reach System V "
				"segments by id or key; give another name (or /%s)\n", name, name);
		return SHMKIT_EXIT_USAGE;
	}
	const char *rule = name_problem(name, flags);
	if (rule) {
		fprintf(stderr, "shmkit create: %s: %s\n", name, rule);
		return SHMKIT_EXIT_USAGE;
	}
	uint64_t size;
	int r = parse_size("create", "SIZE", size_arg, SEG_SIZE_MAX, usage, &size);
	if (r)
		return r;
	/* A segment made from the shell outlives the command by design: it is data left
	 * for later, never garbage. A raw one has no header to record that in. */
	if (!temporary && !(flags & SHMKIT_SEG_RAW))
		flags |= SHMKIT_SEG_PERSIST;
	shmkit_seg *seg;
	r = shmkit_seg_open(name, SHMKIT_KIND_DATA, (size_t)size, mode, flags, &seg);
	if (r < 0) {
		fprintf(stderr, "shmkit create: %s: %s\n", name,
			r == -EEXIST ? "a segment of this name exists" : shmkit_strerror(r));
		return SHMKIT_EXIT_FAIL;
	}
	struct shmkit_seg_info in;
	if (shmkit_seg_stat(seg, &in) == 0 && in.sysv)
		printf("%s: key 0x%08x id %d\n", name, (unsigned)in.key, in.shmid);
	shmkit_seg_close(seg);
	return SHMKIT_EXIT_OK;
}

/* Removes option opt (with its value when value is not NULL) from argv, before any
 * "--": 1 found, 0 not, -1 given without its value. */
static int pull_option(int *argc, char **argv, const char *opt, const char **value)
{
	for (int i = 1; i < *argc && strcmp(argv[i], "--"); i++) {
		if (strcmp(argv[i], opt))
			continue;
		int n = value ? 2 : 1;
		if (i + n > *argc)
			return -1;
		if (value)
			*value = argv[i + 1];
		memmove(&argv[i], &argv[i + n], (size_t)(*argc - i - n) * sizeof *argv);
		*argc -= n;
		return 1;
	}
	return 0;
}

/* Opens a data, blob or raw segment for cat/write: a blob through its API (whole
 * snapshots), anything else as bytes. */
struct target {
	shmkit_seg *seg;
	shmkit_blob *blob;
	unsigned kind;
};

/* Returns 0, or the exit code after saying what went wrong. */
static int open_target(const char *arg, int space, int rdonly, struct target *t, const char *cmd)
{
	char name[NAME_MAX + 2];
	unsigned flags;
	struct shmkit_seg_info in;
	int r = resolve(arg, space, name, sizeof name, &flags);
	if (r == -ENOENT) {
		fprintf(stderr, "shmkit %s: %s: no such segment\n", cmd, arg);
		return SHMKIT_EXIT_FAIL;
	}
	if (r)
		return resolve_or_say(cmd, arg, space, name, sizeof name, &flags);
	r = shmkit_seg_inspect(name, flags, &in);
	if (r == 0 && (in.kind == SHMKIT_KIND_CHAN || in.kind == SHMKIT_KIND_TOPIC)) {
		fprintf(stderr, "shmkit %s: %s is %s, not a data segment (use %s)\n", cmd, arg,
			shmkit__kind_noun(in.kind), in.kind == SHMKIT_KIND_CHAN ? "send and recv" : "pub and sub");
		return SHMKIT_EXIT_FAIL;
	}
	if (r == 0 && rdonly)
		flags |= SHMKIT_SEG_RDONLY;
	if (r == 0)
		t->kind = in.kind;
	if (r == 0 && in.kind == SHMKIT_KIND_BLOB)
		r = shmkit_blob_open(name, 0, 0, flags, &t->blob);
	else if (r == 0 && in.kind == SHMKIT_KIND_RAW && in.layout)
		r = -EPROTO; /* a shmkit header of another layout: not raw bytes to us */
	else if (r == 0)
		r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0,
				    flags | (in.kind == SHMKIT_KIND_RAW ? SHMKIT_SEG_RAW : 0), &t->seg);
	if (r < 0) {
		char why[128];
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, arg,
			shmkit__strerror_at(r, name, flags, why, sizeof why));
		return SHMKIT_EXIT_FAIL;
	}
	return 0;
}

int shmkit_cmd_cat(int argc, char **argv)
{
	static const char usage[] = "shmkit cat [--posix|--sysv] [--all] NAME|0xKEY|id:ID";
	int space;
	struct target t = {0};
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nWrite a segment's data to standard output: of a data segment, the\n"
		       "bytes 'shmkit write' (or shmkit_seg_set_used()) last recorded as used, or\n"
		       "the whole data area with --all or when no length was recorded; of a blob,\n"
		       "one consistent snapshot; of a raw segment, all of it.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int all = pull_option(&argc, argv, "--all", NULL);
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
		/* Clamped by the library: a peer may have written any length there. */
		size = all ? shmkit_seg_size(t.seg) : shmkit_seg_used(t.seg);
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
	static const char usage[] =
	    "shmkit write [--posix|--sysv] [--offset N] NAME|0xKEY|id:ID < DATA";
	int space;
	struct target t = {0};
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nCopy standard input into a segment. A data segment's content is\n"
		       "replaced: the input goes at its start, what was there after it is\n"
		       "cleared, and the input's length is recorded as the bytes in use (what\n"
		       "'shmkit cat' prints). --offset N writes the input at byte N instead,\n"
		       "keeping the rest, and extends the bytes in use to its end if it ends\n"
		       "beyond them. A blob gets the input as one whole snapshot that readers\n"
		       "see at once (the rest of it cleared); a raw segment, at its start or at\n"
		       "N, the rest kept. Refuses (and writes nothing) when the input does not\n"
		       "fit.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	const char *off_arg = NULL;
	int has_off = pull_option(&argc, argv, "--offset", &off_arg);
	if (has_off < 0)
		return bad_arg("write", "--offset", "needs a value", usage);
	unsigned long long off = 0;
	if (has_off && parse_count("write", "--offset", off_arg, usage, &off))
		return SHMKIT_EXIT_USAGE;
	if (name_args(argc, argv, &space, NULL) != 1)
		return shmkit__usage_error(usage);
	const char *arg = argv[0];
	int r = open_target(arg, space, 0, &t, "write");
	if (r)
		return r;
	size_t cap = t.blob ? shmkit_blob_size(t.blob) : shmkit_seg_size(t.seg);
	unsigned char *buf = NULL;
	size_t len = 0;
	int status = SHMKIT_EXIT_OK;
	if (has_off && t.blob) {
		fprintf(stderr, "shmkit write: --offset: %s is a blob, which is written whole\n", arg);
		status = SHMKIT_EXIT_USAGE;
		goto out;
	}
	if (off > cap) {
		fprintf(stderr, "shmkit write: --offset %llu: past the end of %s's %zu-byte data "
				"area\n", off, arg, cap);
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	/* Read everything first: a too-large input must not leave half a write. A blob
	 * gets the whole snapshot, zeros after the input. */
	size_t room = cap - (size_t)off;
	buf = calloc(1, room + 1);
	if (!buf) {
		fprintf(stderr, "shmkit write: %s: out of memory\n", arg);
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	for (;;) {
		size_t n = fread(buf + len, 1, room + 1 - len, stdin);
		len += n;
		if (n == 0 || len == room + 1)
			break;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "shmkit write: reading input: %s\n", strerror(errno));
		status = SHMKIT_EXIT_FAIL;
	} else if (len > room && has_off) {
		fprintf(stderr, "shmkit write: %s: input does not fit in the %zu bytes after offset "
				"%llu; nothing written\n", arg, room, off);
		status = SHMKIT_EXIT_FAIL;
	} else if (len > room) {
		fprintf(stderr, "shmkit write: %s: input does not fit in %zu bytes; nothing written\n",
			arg, cap);
		status = SHMKIT_EXIT_FAIL;
	} else if (t.blob) {
		r = shmkit_blob_write(t.blob, buf, cap);
		if (r < 0) {
			fprintf(stderr, "shmkit write: %s: %s\n", arg, shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
		}
	} else {
		unsigned char *d = shmkit_seg_data(t.seg);
		size_t used = shmkit_seg_used(t.seg), end = (size_t)off + len;
		memcpy(d + off, buf, len);
		if (t.kind == SHMKIT_KIND_DATA) {
			/* Replacing: clear the old content after the new (up to what was in use),
			 * so that --all and programs reading the area see no stale tail. */
			if (!has_off && used > end)
				memset(d + end, 0, used - end);
			r = shmkit_seg_set_used(t.seg, has_off && used > end ? used : end);
			if (r < 0) {
				fprintf(stderr, "shmkit write: %s: recording the length: %s\n", arg,
					shmkit_strerror(r));
				status = SHMKIT_EXIT_FAIL;
			}
		}
	}
out:
	free(buf);
	shmkit_blob_close(t.blob);
	shmkit_seg_close(t.seg);
	return status;
}

/* ---- progress of a transfer (--progress) ---- */

void shmkit__progress_start(struct shmkit__progress *p, const char *cmd, const char *name)
{
	memset(p, 0, sizeof *p);
	p->cmd = cmd;
	p->name = name;
	p->start = p->last = shmkit__mono_ns();
}

void shmkit__progress_add(struct shmkit__progress *p, size_t bytes)
{
	p->msgs++;
	p->bytes += bytes;
	/* The clock only every 64 messages: a line per second is plenty, and a stream of
	 * small messages must not pay a clock read each. */
	if ((p->msgs & 63) != 1)
		return;
	int64_t now = shmkit__mono_ns();
	if (now - p->last < 1000000000)
		return;
	double dt = (double)(now - p->last) / 1e9;
	fprintf(stderr, "shmkit %s: %s: %llu messages, %llu bytes; now %.0f msg/s, %.1f MB/s\n",
		p->cmd, p->name, (unsigned long long)p->msgs, (unsigned long long)p->bytes,
		(double)(p->msgs - p->last_msgs) / dt, (double)(p->bytes - p->last_bytes) / dt / 1e6);
	p->last = now;
	p->last_msgs = p->msgs;
	p->last_bytes = p->bytes;
}

void shmkit__progress_end(struct shmkit__progress *p)
{
	double dt = (double)(shmkit__mono_ns() - p->start) / 1e9;
	if (dt <= 0)
		dt = 1e-9;
	fprintf(stderr, "shmkit %s: %s: %llu messages, %llu bytes in %.2f s (%.0f msg/s, "
			"%.1f MB/s)\n",
		p->cmd, p->name, (unsigned long long)p->msgs, (unsigned long long)p->bytes, dt,
		(double)p->msgs / dt, (double)p->bytes / dt / 1e6);
}

/* ---- send and recv ---- */

/* Options of send and recv. */
struct chan_opts {
	const char *name;
	unsigned flags;
	long long count;
	double timeout;
	size_t capacity;
	int create, once, progress;
};

#define CHAN_CAP_DEFAULT ((size_t)1 << 20)
#define CHAN_CAP_MAX ((uint64_t)1 << 30) /* chan.h: at most 1 GiB */

static int chan_args(int argc, char **argv, struct chan_opts *o, const char *cmd, int recv,
		     const char *usage)
{
	memset(o, 0, sizeof *o);
	o->count = -1;
	o->timeout = -1;
	o->capacity = CHAN_CAP_DEFAULT;
	o->create = !recv; /* a sender makes the channel it needs; a receiver only if asked */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char what[64];
		snprintf(what, sizeof what, "%s '%.32s'", a, v ? v : "");
		if (!strcmp(a, "--sysv")) {
			o->flags |= SHMKIT_SEG_SYSV;
		} else if (!strcmp(a, "--progress")) {
			o->progress = 1;
		} else if (recv && !strcmp(a, "--create")) {
			o->create = 1;
		} else if (recv && !strcmp(a, "--once")) {
			o->once = 1;
		} else if ((recv && (!strcmp(a, "-n") || !strcmp(a, "--timeout"))) ||
			   !strcmp(a, "--capacity")) {
			if (!v)
				return bad_arg(cmd, a, "needs a value", usage);
			i++;
			if (a[1] == 'n') {
				unsigned long long n;
				if (parse_count(cmd, "-n", v, usage, &n))
					return SHMKIT_EXIT_USAGE;
				o->count = n > LLONG_MAX ? LLONG_MAX : (long long)n;
			} else if (a[2] == 't') {
				char *end;
				errno = 0;
				o->timeout = strtod(v, &end);
				if (end == v || *end || errno || !(o->timeout >= 0) || o->timeout > 1e9)
					return bad_arg(cmd, what, "not a number of seconds (0 or more, "
								  "such as 2.5)", usage);
			} else {
				uint64_t c;
				if (parse_size(cmd, "--capacity", v, CHAN_CAP_MAX, usage, &c))
					return SHMKIT_EXIT_USAGE;
				o->capacity = (size_t)c;
			}
		} else if (a[0] == '-' && a[1]) {
			snprintf(what, sizeof what, "'%.32s'", a);
			return bad_arg(cmd, what, "no such option", usage);
		} else if (o->name) {
			snprintf(what, sizeof what, "'%.32s'", a);
			return bad_arg(cmd, what, "one argument too many (one NAME)", usage);
		} else {
			o->name = a;
		}
	}
	if (!o->name)
		return bad_arg(cmd, "NAME", "missing", usage);
	if (o->create)
		o->flags |= SHMKIT_SEG_CREATE;
	const char *rule = name_problem(o->name, o->flags);
	if (rule) {
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, o->name, rule);
		return SHMKIT_EXIT_USAGE;
	}
	return 0;
}

/* Opens the channel end for send or recv: 0, or the exit code after saying why not. */
static int open_end(const char *cmd, const struct chan_opts *o, unsigned role, shmkit_chan **ch)
{
	/* Opening an existing channel accepts its capacity, whatever it is; creating one
	 * asks for ours. */
	int r = shmkit_chan_open(o->name, role, o->create ? o->capacity : 0, 0600, o->flags, ch);
	if (r == -EINVAL && o->create) /* it exists, with another capacity */
		r = shmkit_chan_open(o->name, role, 0, 0600, o->flags, ch);
	if (r == 0)
		return 0;
	struct shmkit_seg_info in;
	char why[128];
	/* -EPROTO also means another kind: asked only now, when the segment is complete
	 * (the library waited for its creator), so a System V channel still being made
	 * is never taken for something else. A shmkit of another layout made it: both
	 * layouts are named (a header of another layout is no kind to us). */
	if (r == -EPROTO && shmkit__strerror_at(r, o->name, o->flags, why, sizeof why) == why)
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, o->name, why);
	else if (r == -EPROTO && shmkit_seg_inspect(o->name, o->flags & SHMKIT_SEG_SYSV, &in) == 0 &&
		 in.kind != SHMKIT_KIND_CHAN)
		fprintf(stderr, "shmkit %s: %s is %s, not a channel\n", cmd, o->name, shmkit__kind_noun(in.kind));
	else if (r == -EPROTO)
		fprintf(stderr, "shmkit %s: %s: not a channel this shmkit can read (corrupt, or "
				"made by another version)\n", cmd, o->name);
	else if (r == -ENOENT)
		fprintf(stderr, "shmkit %s: %s: no such channel (recv --create makes one, as send "
				"does)\n", cmd, o->name);
	else if (r == -EBUSY)
		fprintf(stderr, "shmkit %s: %s: another process is the channel's %s (a channel has "
				"one of each)\n", cmd, o->name,
			role == SHMKIT_CHAN_PRODUCER ? "sender" : "receiver");
	else
		fprintf(stderr, "shmkit %s: %s: %s\n", cmd, o->name, shmkit_strerror(r));
	return SHMKIT_EXIT_FAIL;
}

static int send_one(void *ch, const char *msg, size_t len)
{
	return shmkit_chan_send(ch, msg, len, SHMKIT_FOREVER);
}

/* send's words for a receiver that left (-EPIPE): the lines it sent that nobody
 * received stay in the channel for the next receiver, which a script must know. */
static const char *send_why(void *h, int r, char *buf, size_t len)
{
	struct shmkit_chan_stats st;
	if (r != -EPIPE || shmkit_chan_stats(h, &st) < 0)
		return NULL;
	uint64_t left = st.msgs_sent - st.msgs_recv;
	if (left == 0)
		snprintf(buf, len, "the receiver left (closed or died); every line sent was received");
	else
		snprintf(buf, len, "the receiver left (closed or died); %llu line%s sent and not "
				   "received wait for the next receiver",
			 (unsigned long long)left, left == 1 ? "" : "s");
	return buf;
}

int shmkit_cmd_send(int argc, char **argv)
{
	static const char usage[] =
	    "shmkit send [--sysv] [--capacity BYTES] [--progress] NAME < LINES";
	struct chan_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nSend each line of standard input (without its newline) as one\n"
		       "message on channel NAME, creating the channel if needed (default 1 MiB\n"
		       "ring; the largest message is half the ring). Empty lines are skipped: a\n"
		       "message has at least one byte. Closing at end of input is end-of-stream\n"
		       "for the receiver. Like a FIFO's writer, a sender that fills the ring\n"
		       "waits for a receiver, also when the last one left before it came; a\n"
		       "receiver that leaves while it sends is an error. --progress prints\n"
		       "counts and rates on stderr, each second and at the end.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = chan_args(argc, argv, &o, "send", 0, usage);
	if (r)
		return r;
	shmkit_chan *ch;
	r = open_end("send", &o, SHMKIT_CHAN_PRODUCER, &ch);
	if (r)
		return r;
	struct shmkit_chan_stats st;
	struct shmkit__progress pr;
	struct shmkit__lines how = {.cmd = "send", .name = o.name, .send = send_one, .h = ch,
				    .progress = o.progress ? &pr : NULL, .why = send_why};
	if (shmkit_chan_stats(ch, &st) == 0)
		how.max_msg = (size_t)st.max_msg;
	if (o.progress)
		shmkit__progress_start(&pr, "send", o.name);
	int status = shmkit__send_lines_how(stdin, &how);
	if (o.progress)
		shmkit__progress_end(&pr);
	shmkit_chan_close(ch);
	return status;
}

/* recv --once: whether the channel's last end-of-stream was received before we came
 * and no sender has attached since (the library then waits for the next sender). It
 * tells so by a receive that finds nothing although the sender closed: an end that is
 * ours it would have answered with 0. Checked twice around the counters, so that a
 * sender attaching meanwhile is not mistaken for none. */
static int stale_end(shmkit_chan *ch, char *buf, size_t cap, ssize_t *first)
{
	struct shmkit_chan_stats st;
	for (int i = 0; i < 2; i++) {
		*first = shmkit_chan_recv(ch, buf, cap, 0);
		if (*first != -EAGAIN)
			return 0;
		if (shmkit_chan_stats(ch, &st) < 0 || !st.producer_closed || st.producer_pid)
			return 0;
	}
	return 1;
}

int shmkit_cmd_recv(int argc, char **argv)
{
	static const char usage[] = "shmkit recv [--sysv] [--create [--capacity BYTES]] [--once] "
				    "[-n COUNT] [--timeout SECONDS] [--progress] NAME";
	struct chan_opts o;
	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\nReceive messages from channel NAME and print each on its own line,\n"
		       "like the reader of a named FIFO. Stops at end-of-stream (the sender\n"
		       "closed), after COUNT messages, or when no message came for SECONDS\n"
		       "(exit 1 then). A sender that died is an error. The channel must exist\n"
		       "unless --create (then it is made if missing, as send does). When the\n"
		       "last sender's end-of-stream was already received (by an earlier recv),\n"
		       "recv waits for the next sender and prints its stream; with --once it\n"
		       "says so and exits 1 instead. --progress prints counts and rates on\n"
		       "stderr, each second and at the end.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	int r = chan_args(argc, argv, &o, "recv", 1, usage);
	if (r)
		return r;
	shmkit_chan *ch;
	r = open_end("recv", &o, SHMKIT_CHAN_CONSUMER, &ch);
	if (r)
		return r;
	int64_t timeout = o.timeout < 0 ? SHMKIT_FOREVER : (int64_t)(o.timeout * 1e9);
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	int status = SHMKIT_EXIT_OK;
	ssize_t n = 0;
	int have = 0; /* n holds a result not handled yet */
	struct shmkit__progress pr;
	if (o.progress)
		shmkit__progress_start(&pr, "recv", o.name);
	if (buf && o.once && o.count != 0) {
		if (stale_end(ch, buf, cap, &n)) {
			fprintf(stderr, "shmkit recv: %s: the last sender's end-of-stream was already "
					"received, and no sender came since (without --once, recv waits "
					"for one)\n", o.name);
			status = SHMKIT_EXIT_FAIL;
			goto out;
		}
		have = n != -EAGAIN;
	}
	for (long long got = 0; buf && (o.count < 0 || got < o.count); got++) {
		if (!have) {
			/* Output is flushed only before a wait: a line per write(2) would
			 * cost more than the channel (5 x on a stream of short lines). */
			n = shmkit_chan_recv(ch, buf, cap, 0);
			if (n == -EAGAIN) {
				fflush(stdout);
				n = shmkit_chan_recv(ch, buf, cap, timeout);
			}
		}
		have = 0;
		if (n == -EMSGSIZE) {
			/* The message stays queued: grow to the largest the ring takes. */
			struct shmkit_chan_stats st;
			shmkit_chan_stats(ch, &st);
			char *bigger = realloc(buf, (size_t)st.max_msg);
			if (!bigger) {
				fprintf(stderr, "shmkit recv: out of memory\n");
				status = SHMKIT_EXIT_FAIL;
				break;
			}
			buf = bigger;
			cap = (size_t)st.max_msg;
			got--;
			continue;
		}
		if (n == 0)
			break; /* end-of-stream */
		if (n < 0) {
			fprintf(stderr, "shmkit recv: %s: %s\n", o.name,
				n == -ETIMEDOUT ? "no message before the timeout"
				: n == -EPIPE	? "the sender died (everything it sent was received)"
				: n == -EIDRM	? "the channel was removed"
						: shmkit_strerror((int)n));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		putchar('\n');
		if (o.progress)
			shmkit__progress_add(&pr, (size_t)n);
	}
	if (!buf) {
		fprintf(stderr, "shmkit recv: out of memory\n");
		status = SHMKIT_EXIT_FAIL;
	}
out:
	if (fflush(stdout) != 0 && status == SHMKIT_EXIT_OK) {
		fprintf(stderr, "shmkit recv: writing output: %s\n", strerror(errno));
		status = SHMKIT_EXIT_FAIL;
	}
	if (o.progress)
		shmkit__progress_end(&pr);
	free(buf);
	shmkit_chan_close(ch);
	return status;
}
