/* shmkit(1) — the subcommands that see, make, use and clean segments: ls, stat, rm, gc,
 * create, cat, write, send, recv. Over the public API, plus /proc for what only the
 * kernel knows (System V segments, which processes map a POSIX one). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shmkit/shmkit.h>
#include "cmd.h"

/* ---- what ls and stat know about a segment ---- */

struct entry {
	struct shmkit_seg_info in;
	char obj[SHMKIT_NAME_MAX + 1]; /* POSIX object name, or "id:N" for System V */
	int users;                     /* processes mapping or holding it; -1 unknown */
	int stale;                     /* shmkit segment whose creator is dead, unused */
};

/* POSIX segments have no attach count: count the processes whose mappings or open
 * descriptors name /dev/shm/NAME. One pass over /proc serves every segment. */
struct users {
	char (*names)[SHMKIT_NAME_MAX + 1];
	int *count;
	int n;
};

static void users_add(struct users *u, const char *path, int *seen)
{
	if (strncmp(path, "/dev/shm/", 9) != 0)
		return;
	const char *name = path + 8; /* keeps the leading '/' */
	size_t len = strcspn(name, " \n");
	for (int i = 0; i < u->n; i++)
		if (strlen(u->names[i]) == len && !strncmp(u->names[i], name, len) && !seen[i]) {
			seen[i] = 1;
			u->count[i]++;
		}
}

static void users_scan(struct users *u)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int *seen = calloc((size_t)u->n + 1, sizeof *seen);
	if (!proc || !seen) {
		if (proc)
			closedir(proc);
		free(seen);
		for (int i = 0; i < u->n; i++)
			u->count[i] = -1;
		return;
	}
	while ((de = readdir(proc))) {
		char path[PATH_MAX], line[PATH_MAX + 256];
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		memset(seen, 0, sizeof *seen * (size_t)u->n);
		snprintf(path, sizeof path, "/proc/%s/maps", de->d_name);
		FILE *f = fopen(path, "re");
		if (f) {
			while (fgets(line, sizeof line, f)) {
				char *p = strstr(line, "/dev/shm/");
				if (p && !strstr(p, "(deleted)"))
					users_add(u, p, seen);
			}
			fclose(f);
		}
		snprintf(path, sizeof path, "/proc/%s/fd", de->d_name);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(dirfd(fds), fe->d_name, target, sizeof target - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			if (!strstr(target, "(deleted)"))
				users_add(u, target, seen);
		}
		closedir(fds);
	}
	closedir(proc);
	free(seen);
}

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
	return &l->e[l->n++];
}

static int is_stale(const struct entry *e)
{
	/* A creator proven dead (not "unknown"), and nobody mapping it. */
	return e->in.kind != SHMKIT_KIND_RAW && e->in.creator_alive == 0 && e->users == 0;
}

/* Every POSIX and System V segment on the machine. */
static int collect(struct list *l)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *de;
	if (d) {
		while ((de = readdir(d))) {
			char name[SHMKIT_NAME_MAX + 2];
			struct stat st;
			if (de->d_name[0] == '.' || strlen(de->d_name) >= SHMKIT_NAME_MAX)
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			snprintf(name, sizeof name, "/%s", de->d_name);
			struct entry *e = list_add(l);
			if (!e)
				return -ENOMEM;
			if (shmkit_seg_inspect(name, 0, &e->in) < 0) {
				/* Unreadable to us: still show what stat(2) says. */
				memset(&e->in, 0, sizeof e->in);
				e->in.kind = SHMKIT_KIND_RAW;
				e->in.total_size = (uint64_t)st.st_size;
				e->in.mode = st.st_mode & 0777;
				e->in.uid = st.st_uid;
				e->in.creator_alive = -1;
				e->in.shmid = -1;
				strcpy(e->in.name, name);
			}
			strcpy(e->obj, name);
		}
		closedir(d);
	}
	FILE *f = fopen("/proc/sysvipc/shm", "re");
	if (f) {
		char line[512];
		if (!fgets(line, sizeof line, f)) /* the column titles */
			line[0] = '\0';
		while (fgets(line, sizeof line, f)) {
			int key, id;
			unsigned mode;
			unsigned long long size;
			if (sscanf(line, "%d %d %o %llu", &key, &id, &mode, &size) != 4)
				continue;
			struct entry *e = list_add(l);
			if (!e) {
				fclose(f);
				return -ENOMEM;
			}
			snprintf(e->obj, sizeof e->obj, "id:%d", id);
			if (shmkit_seg_inspect(e->obj, SHMKIT_SEG_SYSV, &e->in) < 0) {
				e->in.sysv = 1;
				e->in.kind = SHMKIT_KIND_RAW;
				e->in.shmid = id;
				e->in.key = key;
				e->in.total_size = size;
				e->in.mode = mode & 0777;
				e->in.creator_alive = -1;
				e->in.nattch = -1;
				snprintf(e->in.name, sizeof e->in.name, "0x%08x", (unsigned)key);
			} else if (e->in.kind == SHMKIT_KIND_RAW) {
				snprintf(e->in.name, sizeof e->in.name, "0x%08x", (unsigned)e->in.key);
			}
		}
		fclose(f);
	}
	/* Attach counts: System V keeps one; POSIX users are found in /proc. */
	struct users u = {.n = 0};
	u.names = calloc((size_t)l->n + 1, sizeof *u.names);
	u.count = calloc((size_t)l->n + 1, sizeof *u.count);
	int *map = calloc((size_t)l->n + 1, sizeof *map);
	if (!u.names || !u.count || !map) {
		free(u.names), free(u.count), free(map);
		return -ENOMEM;
	}
	for (int i = 0; i < l->n; i++)
		if (!l->e[i].in.sysv) {
			strcpy(u.names[u.n], l->e[i].obj);
			map[u.n++] = i;
		}
	users_scan(&u);
	for (int i = 0; i < l->n; i++)
		l->e[i].users = l->e[i].in.sysv ? l->e[i].in.nattch : -1;
	for (int j = 0; j < u.n; j++)
		l->e[map[j]].users = u.count[j];
	for (int i = 0; i < l->n; i++)
		l->e[i].stale = is_stale(&l->e[i]);
	free(u.names), free(u.count), free(map);
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

/* JSON strings: names may hold any byte but NUL. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* One segment as a JSON object; extra (members, each starting with ", ") goes
 * before the closing brace. */
static void json_entry(FILE *f, const struct entry *e, const char *extra)
{
	fprintf(f, "{\"backend\": \"%s\", \"name\": ", e->in.sysv ? "sysv" : "posix");
	json_str(f, e->in.name);
	if (e->in.sysv)
		fprintf(f, ", \"key\": \"0x%08x\", \"id\": %d", (unsigned)e->in.key, e->in.shmid);
	else
		fprintf(f, ", \"key\": null, \"id\": null");
	fprintf(f, ", \"size\": %llu, \"data_size\": %llu, \"mode\": \"%04o\", \"uid\": %u",
		(unsigned long long)e->in.total_size, (unsigned long long)e->in.data_size,
		e->in.mode, e->in.uid);
	if (e->in.kind == SHMKIT_KIND_RAW)
		fprintf(f, ", \"shmkit\": false, \"kind\": null, \"state\": null, "
			   "\"creator_pid\": null, \"creator_alive\": null");
	else
		fprintf(f, ", \"shmkit\": true, \"kind\": \"%s\", \"state\": \"%s\", "
			   "\"creator_pid\": %d, \"creator_alive\": %s",
			kind_name(e->in.kind), state_name(e), e->in.creator_pid,
			e->in.creator_alive < 0 ? "null" : e->in.creator_alive ? "true" : "false");
	if (e->users >= 0)
		fprintf(f, ", \"attached\": %d", e->users);
	else
		fprintf(f, ", \"attached\": null");
	fprintf(f, ", \"stale\": %s%s}", e->stale ? "true" : "false", extra);
}

static int want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

static int usage_error(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return SHMKIT_EXIT_USAGE;
}

int shmkit_cmd_ls(int argc, char **argv)
{
	static const char usage[] = "shmkit ls [--json]";
	int json = 0;
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nList every POSIX (/dev/shm) and System V shared-memory segment,\n"
		       "shmkit's or not. STALE marks a shmkit segment whose creator is dead and\n"
		       "that no process uses: 'shmkit gc' removes those.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else
			return usage_error(usage);
	}
	struct list l = {0};
	if (collect(&l) < 0) {
		fprintf(stderr, "shmkit ls: out of memory\n");
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
		printf("%-5s %-32s %-10s %-7s %12s %-4s %-8s %7s %5s %6s %-4s %-7s %s\n", "TYPE",
		       "NAME", "KEY", "ID", "SIZE", "MODE", "OWNER", "CPID", "ALIVE", "ATTACH", "KIND",
		       "STATE", "STALE");
		for (int i = 0; i < l.n; i++) {
			const struct entry *e = &l.e[i];
			char key[16] = "-", id[16] = "-", users[16] = "-", cpid[16] = "-";
			if (e->in.sysv) {
				snprintf(key, sizeof key, "0x%08x", (unsigned)e->in.key);
				snprintf(id, sizeof id, "%d", e->in.shmid);
			}
			if (e->users >= 0)
				snprintf(users, sizeof users, "%d", e->users);
			if (e->in.creator_pid > 0)
				snprintf(cpid, sizeof cpid, "%d", e->in.creator_pid);
			printf("%-5s %-32s %-10s %-7s %12llu %04o %-8s %7s %5s %6s %-4s %-7s %s\n",
			       e->in.sysv ? "sysv" : "posix", e->in.name, key, id,
			       (unsigned long long)e->in.total_size, e->in.mode, owner_name(e->in.uid),
			       cpid, alive_name(e->in.creator_alive), users, kind_name(e->in.kind),
			       state_name(e), e->stale ? "stale" : "");
		}
	}
	free(l.e);
	return SHMKIT_EXIT_OK;
}

/* The command line of the commands that name one segment: [--sysv] [--json] ARG
 * (--json only where json is not NULL). Returns 0, or -1 for a usage error. */
static int one_arg(int argc, char **argv, const char **arg, int *sysv, int *json)
{
	*arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sysv"))
			*sysv = 1;
		else if (json && !strcmp(argv[i], "--json"))
			*json = 1;
		else if (argv[i][0] == '-' || *arg)
			return -1;
		else
			*arg = argv[i];
	}
	return *arg ? 0 : -1;
}

/* NAME, 0xKEY or a decimal System V id: returns the name to pass to the library and
 * whether it is System V. */
static int resolve(const char *arg, int sysv, char *out, size_t cap, unsigned *flags)
{
	size_t digits = strspn(arg, "0123456789");
	if (arg[0] && digits == strlen(arg)) {
		snprintf(out, cap, "id:%s", arg);
		*flags = SHMKIT_SEG_SYSV;
	} else if (arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X')) {
		snprintf(out, cap, "%s", arg);
		*flags = SHMKIT_SEG_SYSV;
	} else {
		if (strlen(arg) >= cap)
			return -ENAMETOOLONG;
		snprintf(out, cap, "%s", arg);
		*flags = sysv ? SHMKIT_SEG_SYSV : 0;
	}
	return 0;
}

int shmkit_cmd_rm(int argc, char **argv)
{
	static const char usage[] = "shmkit rm [--sysv] NAME|0xKEY|ID...";
	int sysv = 0, status = SHMKIT_EXIT_OK, n = 0;
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nRemove segments: a POSIX name (or, with --sysv, a System V\n"
		       "name), a System V key (0x...) or a System V id (decimal). shmkit\n"
		       "segments are marked deleted first, so their users get EIDRM.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--sysv"))
			sysv = 1;
	for (int i = 1; i < argc; i++) {
		char name[SHMKIT_NAME_MAX + 8];
		unsigned flags;
		if (!strcmp(argv[i], "--sysv"))
			continue;
		if (argv[i][0] == '-' && argv[i][1])
			return usage_error(usage);
		n++;
		int r = resolve(argv[i], sysv, name, sizeof name, &flags);
		if (r == 0)
			r = shmkit_seg_unlink(name, flags);
		if (r < 0) {
			fprintf(stderr, "shmkit rm: %s: %s\n", argv[i], shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
		}
	}
	return n ? status : usage_error(usage);
}

int shmkit_cmd_gc(int argc, char **argv)
{
	static const char usage[] = "shmkit gc [--dry-run]";
	int dry = 0, status = SHMKIT_EXIT_OK, removed = 0;
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nRemove stale shmkit segments: their creator is dead and no\n"
		       "process maps or attaches them. Segments shmkit did not create are never\n"
		       "touched. Says what it removed (or, with --dry-run, would remove).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n"))
			dry = 1;
		else
			return usage_error(usage);
	}
	struct list l = {0};
	if (collect(&l) < 0) {
		fprintf(stderr, "shmkit gc: out of memory\n");
		return SHMKIT_EXIT_FAIL;
	}
	for (int i = 0; i < l.n; i++) {
		const struct entry *e = &l.e[i];
		if (!e->stale)
			continue;
		const char *label = e->in.name;
		if (!dry) {
			int r = shmkit_seg_unlink(e->obj, e->in.sysv ? SHMKIT_SEG_SYSV : 0);
			if (r < 0 && r != -ENOENT) {
				fprintf(stderr, "shmkit gc: %s: %s\n", label, shmkit_strerror(r));
				status = SHMKIT_EXIT_FAIL;
				continue;
			}
		}
		removed++;
		printf("%s %s segment %s (%s, creator pid %d dead)\n", dry ? "would remove" : "removed",
		       e->in.sysv ? "sysv" : "posix", label, kind_name(e->in.kind), e->in.creator_pid);
	}
	if (!removed)
		printf("no stale segments\n");
	free(l.e);
	return status;
}

/* Common options of the commands that name one segment. */
struct one {
	const char *arg;
	char name[SHMKIT_NAME_MAX + 8];
	unsigned flags;
	int json;
};

int shmkit_cmd_stat(int argc, char **argv)
{
	static const char usage[] = "shmkit stat [--sysv] [--json] NAME|0xKEY|ID";
	struct one o = {0};
	int sysv = 0;
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nDescribe one segment: what 'ls' shows, plus a blob's size and\n"
		       "write count, or a channel's capacity, use, peers and counters.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (one_arg(argc, argv, &o.arg, &sysv, &o.json) < 0)
		return usage_error(usage);
	struct list l = {0};
	if (resolve(o.arg, sysv, o.name, sizeof o.name, &o.flags) < 0 || collect(&l) < 0) {
		fprintf(stderr, "shmkit stat: %s: %s\n", o.arg, shmkit_strerror(-ENAMETOOLONG));
		return SHMKIT_EXIT_FAIL;
	}
	struct shmkit_seg_info in;
	int r = shmkit_seg_inspect(o.name, o.flags, &in);
	if (r < 0) {
		fprintf(stderr, "shmkit stat: %s: %s\n", o.arg, shmkit_strerror(r));
		free(l.e);
		return SHMKIT_EXIT_FAIL;
	}
	struct entry *e = NULL;
	for (int i = 0; i < l.n; i++)
		if ((in.sysv && l.e[i].in.sysv && l.e[i].in.shmid == in.shmid) ||
		    (!in.sysv && !l.e[i].in.sysv && !strcmp(l.e[i].obj, in.name)))
			e = &l.e[i];
	struct entry one = {.in = in, .users = in.sysv ? in.nattch : -1};
	if (!e) {
		one.stale = is_stale(&one);
		e = &one;
	}
	/* The kind's own figures, through a read-only handle of that kind. */
	char extra[1024] = "";
	char name_for_kind[SHMKIT_NAME_MAX + 8];
	snprintf(name_for_kind, sizeof name_for_kind, "%s", in.sysv ? in.name : o.name);
	if (e->in.kind == SHMKIT_KIND_BLOB && e->in.state == SHMKIT_STATE_READY) {
		shmkit_blob *b;
		if (shmkit_blob_open(name_for_kind, 0, 0, o.flags | SHMKIT_SEG_RDONLY, &b) == 0) {
			snprintf(extra, sizeof extra,
				 o.json ? ", \"blob\": {\"size\": %zu, \"writes\": %lld}"
					: "blob size:    %zu bytes\nblob writes:  %lld\n",
				 shmkit_blob_size(b), (long long)shmkit_blob_version(b));
			shmkit_blob_close(b);
		}
	} else if (e->in.kind == SHMKIT_KIND_CHAN && e->in.state == SHMKIT_STATE_READY) {
		shmkit_chan *ch;
		struct shmkit_chan_stats st;
		if (shmkit_chan_open(name_for_kind, SHMKIT_CHAN_OBSERVER, 0, 0, o.flags, &ch) == 0 &&
		    shmkit_chan_stats(ch, &st) == 0) {
			snprintf(extra, sizeof extra,
				 o.json ? ", \"chan\": {\"capacity\": %llu, \"used\": %llu, \"max_msg\": %llu, "
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
				 st.producer_closed ? (o.json ? "true" : "yes") : (o.json ? "false" : "no"));
		}
		shmkit_chan_close(ch);
	}
	if (o.json) {
		json_entry(stdout, e, extra);
		printf("\n");
	} else {
		printf("name:         %s\nbackend:      %s\n", e->in.name, e->in.sysv ? "sysv" : "posix");
		if (e->in.sysv)
			printf("key:          0x%08x\nid:           %d\n", (unsigned)e->in.key, e->in.shmid);
		printf("size:         %llu bytes (data %llu)\nmode:         %04o\nowner:        uid %u gid %u\n",
		       (unsigned long long)e->in.total_size, (unsigned long long)e->in.data_size,
		       e->in.mode, e->in.uid, e->in.gid);
		if (e->users >= 0)
			printf("attached:     %d processes\n", e->users);
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
			       "stale:        %s\n",
			       kind_name(e->in.kind), state_name(e), e->in.creator_pid,
			       e->in.creator_alive == 1 ? "alive" : e->in.creator_alive == 0 ? "dead" : "unknown",
			       when, e->stale ? "yes" : "no");
		}
		fputs(extra, stdout);
	}
	free(l.e);
	return SHMKIT_EXIT_OK;
}

int shmkit_cmd_create(int argc, char **argv)
{
	static const char usage[] = "shmkit create [--sysv] [--raw] [--mode OCTAL] NAME SIZE";
	unsigned flags = SHMKIT_SEG_CREATE | SHMKIT_SEG_EXCL, mode = 0600;
	const char *name = NULL, *size_arg = NULL;
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nCreate a segment of SIZE data bytes (suffixes k, M, G). --raw makes\n"
		       "one without a shmkit header, as plain shm_open/shmget programs and Python\n"
		       "do; --mode sets its permissions exactly (default 0600).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sysv")) {
			flags |= SHMKIT_SEG_SYSV;
		} else if (!strcmp(argv[i], "--raw")) {
			flags |= SHMKIT_SEG_RAW;
		} else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			char *end;
			unsigned long m = strtoul(argv[++i], &end, 8);
			if (*end || m > 0777 || m == 0)
				return usage_error(usage);
			mode = (unsigned)m;
		} else if (argv[i][0] == '-' || (name && size_arg)) {
			return usage_error(usage);
		} else if (!name) {
			name = argv[i];
		} else {
			size_arg = argv[i];
		}
	}
	if (!name || !size_arg)
		return usage_error(usage);
	char *end;
	errno = 0;
	unsigned long long size = strtoull(size_arg, &end, 0);
	unsigned shift = *end == 'k' || *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (errno || *end || size == 0 || size > (SIZE_MAX >> shift) || size_arg[0] == '-')
		return usage_error(usage);
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

static int open_target(const char *arg, int sysv, int rdonly, struct target *t, const char *cmd)
{
	char name[SHMKIT_NAME_MAX + 8];
	unsigned flags;
	struct shmkit_seg_info in;
	int r = resolve(arg, sysv, name, sizeof name, &flags);
	if (r == 0)
		r = shmkit_seg_inspect(name, flags, &in);
	if (r == 0 && rdonly)
		flags |= SHMKIT_SEG_RDONLY;
	if (r == 0 && in.kind == SHMKIT_KIND_BLOB)
		r = shmkit_blob_open(in.sysv ? in.name : name, 0, 0, flags, &t->blob);
	else if (r == 0 && in.kind == SHMKIT_KIND_CHAN)
		r = -EPROTO;
	else if (r == 0)
		r = shmkit_seg_open(name, SHMKIT_KIND_ANY, 0, 0,
				    flags | (in.kind == SHMKIT_KIND_RAW ? SHMKIT_SEG_RAW : 0), &t->seg);
	if (r < 0) {
		fprintf(stderr, "shmkit %s: %s: %s%s\n", cmd, arg, shmkit_strerror(r),
			r == -EPROTO ? " (a channel: use send/recv)" : "");
		return -1;
	}
	return 0;
}

int shmkit_cmd_cat(int argc, char **argv)
{
	static const char usage[] = "shmkit cat [--sysv] NAME|0xKEY|ID";
	const char *arg = NULL;
	int sysv = 0;
	struct target t = {0};
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nWrite a segment's data bytes to standard output (a blob: one\n"
		       "consistent snapshot).\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (one_arg(argc, argv, &arg, &sysv, NULL) < 0)
		return usage_error(usage);
	if (open_target(arg, sysv, 1, &t, "cat") < 0)
		return SHMKIT_EXIT_FAIL;
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
	static const char usage[] = "shmkit write [--sysv] NAME|0xKEY|ID < DATA";
	const char *arg = NULL;
	int sysv = 0;
	struct target t = {0};
	if (want_help(argc, argv)) {
		printf("usage: %s\n\nCopy standard input into a segment's data area, from its start.\n"
		       "Refuses (and writes nothing) when the input is larger than the segment.\n"
		       "A blob gets it as one write that readers see whole.\n", usage);
		return SHMKIT_EXIT_OK;
	}
	if (one_arg(argc, argv, &arg, &sysv, NULL) < 0)
		return usage_error(usage);
	if (open_target(arg, sysv, 0, &t, "write") < 0)
		return SHMKIT_EXIT_FAIL;
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
		int r = shmkit_blob_write(t.blob, buf, len);
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
				return usage_error(usage);
		} else if (recv && !strcmp(argv[i], "--timeout") && i + 1 < argc) {
			o->timeout = strtod(argv[++i], &end);
			if (*end || o->timeout < 0)
				return usage_error(usage);
		} else if (!strcmp(argv[i], "--capacity") && i + 1 < argc) {
			unsigned long long c = strtoull(argv[++i], &end, 0);
			if (*end || c == 0)
				return usage_error(usage);
			o->capacity = (size_t)c;
		} else if (argv[i][0] == '-' || o->name) {
			return usage_error(usage);
		} else {
			o->name = argv[i];
		}
	}
	return o->name ? 0 : usage_error(usage);
}

int shmkit_cmd_send(int argc, char **argv)
{
	static const char usage[] = "shmkit send [--sysv] [--capacity BYTES] NAME < LINES";
	struct chan_opts o;
	if (want_help(argc, argv)) {
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
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = SHMKIT_EXIT_OK;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			n--;
		if (n == 0)
			continue;
		r = shmkit_chan_send(ch, line, (size_t)n, SHMKIT_FOREVER);
		if (r < 0) {
			fprintf(stderr, "shmkit send: %s: %s\n", o.name, shmkit_strerror(r));
			status = SHMKIT_EXIT_FAIL;
			break;
		}
	}
	free(line);
	shmkit_chan_close(ch);
	return status;
}

int shmkit_cmd_recv(int argc, char **argv)
{
	static const char usage[] = "shmkit recv [--sysv] [-n COUNT] [--timeout SECONDS] NAME";
	struct chan_opts o;
	if (want_help(argc, argv)) {
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
