/* shmkit bridge — the command over the bridge library (include/shmkit/bridge.h):
 * options or a config file into mappings, then run until SIGINT/SIGTERM. Built only
 * where libnats is found (SHMKIT_HAVE_BRIDGE). Exit: 0 stopped by a signal, 1
 * failure, 2 usage (bad option, mapping, subject or config file). */
#define _GNU_SOURCE /* getline() */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include <shmkit/bridge.h>

static const char usage_line[] =
	"shmkit bridge [--server URL]... [--topic-out LOCAL=SUBJECT]... "
	"[--topic-in SUBJECT=LOCAL]... [--chan-out LOCAL=STREAM|SUBJECT]... "
	"[--chan-in STREAM|SUBJECT=LOCAL]... [--stream-max-bytes N] "
	"[--stream-duplicates SECONDS] [--stream-replicas N] [--config FILE] [--host-id ID] "
	"[TLS and credential options] | "
	"shmkit bridge --status [--host-id ID]";

/* TLS and credentials: options (--KEY VALUE) and config keys (KEY VALUE) alike,
 * passed to nats.c through struct shmkit_bridge_opts. Secrets never come from the
 * command line, where ps shows them: a token and a password are read from a file or
 * the environment. */
enum { TLS_CA, TLS_CERT, TLS_KEY, TLS_HOSTNAME, CREDS, NKEY, NKEY_SEED, TOKEN_FILE, USER,
       PASSWORD_FILE, NCRED };
static const char *const cred_keys[NCRED] = {
	[TLS_CA] = "tls-ca", [TLS_CERT] = "tls-cert", [TLS_KEY] = "tls-key",
	[TLS_HOSTNAME] = "tls-hostname", [CREDS] = "creds", [NKEY] = "nkey",
	[NKEY_SEED] = "nkey-seed", [TOKEN_FILE] = "token-file", [USER] = "user",
	[PASSWORD_FILE] = "password-file",
};
#define SECRET_MAX 4096

struct cfg {
	const char **servers;
	size_t nservers;
	struct shmkit_bridge_map *maps;
	size_t nmaps;
	char **owned; /* strings to free */
	size_t nowned;
	const char *host_id;
	const char *cred[NCRED]; /* indexed as cred_keys */
	unsigned tls_flags;
	/* Stream settings, for every channel mapping (applied once all are read). */
	uint64_t max_bytes;
	int64_t dup_window_ns;
	unsigned replicas;
};

/* Reads a secret (token, password) from @path: the whole file but a last newline.
 * Returns 0, or prints why naming the file and returns SHMKIT_EXIT_USAGE. */
static int read_secret(const char *what, const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "shmkit bridge: %s %s: %s\n", what, path, strerror(errno));
		return SHMKIT_EXIT_USAGE;
	}
	size_t n = fread(out, 1, cap, f);
	int bad = ferror(f), more = n == cap;
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	const char *why = bad ? "cannot be read" : more ? "is too long (4 KiB at most)" :
			  n == 0 ? "is empty" : memchr(out, '\0', n) ? "holds a NUL byte" : NULL;
	if (why) {
		fprintf(stderr, "shmkit bridge: %s %s %s\n", what, path, why);
		explicit_bzero(out, cap);
		return SHMKIT_EXIT_USAGE;
	}
	out[n] = '\0';
	return 0;
}

/* Fills @o's TLS and credential fields from @c, reading the secrets into @token and
 * @password (SECRET_MAX + 1 bytes each). Returns 0 or SHMKIT_EXIT_USAGE. */
static int cred_opts(const struct cfg *c, struct shmkit_bridge_opts *o, char *token, char *password)
{
	o->tls_flags = c->tls_flags;
	o->tls_ca = c->cred[TLS_CA];
	o->tls_cert = c->cred[TLS_CERT];
	o->tls_key = c->cred[TLS_KEY];
	o->tls_hostname = c->cred[TLS_HOSTNAME];
	o->creds = c->cred[CREDS];
	o->nkey = c->cred[NKEY];
	o->nkey_seed = c->cred[NKEY_SEED];
	o->user = c->cred[USER];
	const char *env;
	if (c->cred[TOKEN_FILE]) {
		if (read_secret("token file", c->cred[TOKEN_FILE], token, SECRET_MAX))
			return SHMKIT_EXIT_USAGE;
		o->token = token;
	} else if ((env = getenv("SHMKIT_NATS_TOKEN")) && *env) {
		o->token = env;
	}
	if (c->cred[PASSWORD_FILE]) {
		if (!o->user) {
			fprintf(stderr, "shmkit bridge: --password-file needs --user\n");
			return SHMKIT_EXIT_USAGE;
		}
		if (read_secret("password file", c->cred[PASSWORD_FILE], password, SECRET_MAX))
			return SHMKIT_EXIT_USAGE;
		o->password = password;
	} else if (o->user && (env = getenv("SHMKIT_NATS_PASSWORD"))) {
		o->password = env;
	}
	return 0;
}

/* A channel mapping's far side: a stream name (no '.') whose subject is then
 * "shmkit.chan.NAME", or a subject (with a '.') that names the stream after itself. */
static const char *chan_target(struct shmkit_bridge_map *m, const char *v)
{
	if (!strchr(v, '.')) {
		if (!shmkit_bridge_valid_stream(v))
			return "not a stream name (1 to 255 of A-Z a-z 0-9 _ -) nor a NATS "
			       "subject (tokens separated by '.', no spaces, no wildcards)";
		m->stream = v;
		return NULL;
	}
	if (!shmkit_bridge_valid_subject(v, 0) || strlen(v) > 255)
		return "not a NATS subject for a stream (tokens separated by '.', no spaces, "
		       "no wildcards, at most 255 bytes)";
	m->subject = v;
	return NULL;
}

/* A number for a stream setting: @v decimal (seconds may have a fraction) within
 * [@min, @max]. Returns 0 or -1. */
static int number(const char *v, double min, double max, double *out)
{
	char *end = NULL;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= min && d <= max))
		return -1;
	*out = d;
	return 0;
}

static int grow(void **p, size_t n, size_t size)
{
	void *q = realloc(*p, (n + 1) * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	return 0;
}

static char *keep(struct cfg *c, const char *s)
{
	char *d = strdup(s);
	if (!d || grow((void **)&c->owned, c->nowned, sizeof *c->owned)) {
		free(d);
		return NULL;
	}
	c->owned[c->nowned++] = d;
	return d;
}

/* One setting, from an option or a config line: "what" names it for errors. Returns
 * NULL or the reason it is refused. */
static const char *add_setting(struct cfg *c, const char *key, const char *val)
{
	if (!strcmp(key, "server")) {
		char *u = keep(c, val);
		if (!*val)
			return "empty server URL";
		if (!u || grow((void **)&c->servers, c->nservers, sizeof *c->servers))
			return "out of memory";
		c->servers[c->nservers++] = u;
		return NULL;
	}
	if (!strcmp(key, "host-id")) {
		if (!(c->host_id = keep(c, val)))
			return "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < NCRED; i++) {
		if (strcmp(key, cred_keys[i]))
			continue;
		if (!*val)
			return "empty value";
		if (!(c->cred[i] = keep(c, val)))
			return "out of memory";
		return NULL;
	}
	if (!strcmp(key, "tls") || !strcmp(key, "tls-no-verify")) {
		unsigned bit = key[3] ? SHMKIT_BRIDGE_TLS_NO_VERIFY : SHMKIT_BRIDGE_TLS;
		if (!strcmp(val, "yes"))
			c->tls_flags |= bit;
		else if (!strcmp(val, "no"))
			c->tls_flags &= ~bit;
		else
			return "expected yes or no";
		return NULL;
	}
	double d;
	if (!strcmp(key, "stream-max-bytes")) {
		if (number(val, 1024, 9.0e18, &d) || d != (double)(uint64_t)d)
			return "expected a number of bytes (at least 1024)";
		c->max_bytes = (uint64_t)d;
		return NULL;
	}
	if (!strcmp(key, "stream-duplicates")) {
		if (number(val, 0.001, 86400.0 * 365, &d))
			return "expected seconds (0.001 to a year)";
		c->dup_window_ns = (int64_t)(d * 1e9);
		return NULL;
	}
	if (!strcmp(key, "stream-replicas")) {
		if (number(val, 1, 5, &d) || d != (double)(unsigned)d)
			return "expected 1 to 5";
		c->replicas = (unsigned)d;
		return NULL;
	}
	int chan = !strcmp(key, "chan-out") || !strcmp(key, "chan-in");
	int out = !strcmp(key, "topic-out") || !strcmp(key, "chan-out");
	if (!chan && !out && strcmp(key, "topic-in"))
		return "unknown setting";
	char *s = keep(c, val);
	if (!s)
		return "out of memory";
	char *eq = strchr(s, '=');
	if (!eq && chan)
		return out ? "expected LOCAL=STREAM (or LOCAL=SUBJECT)"
			   : "expected STREAM=LOCAL (or SUBJECT=LOCAL)";
	if (!eq)
		return out ? "expected LOCAL=SUBJECT" : "expected SUBJECT=LOCAL";
	*eq = '\0';
	const char *local = out ? s : eq + 1, *subject = out ? eq + 1 : s;
	if (local[0] != '/' || strlen(local) < 2 || strchr(local + 1, '/'))
		return chan ? "a local channel is a name like /name"
			    : "a local topic is a name like /name";
	if (chan) {
		struct shmkit_bridge_map m = {
			.dir = out ? SHMKIT_BRIDGE_CHAN_OUT : SHMKIT_BRIDGE_CHAN_IN, .local = local};
		const char *why = chan_target(&m, subject);
		if (why)
			return why;
		if (grow((void **)&c->maps, c->nmaps, sizeof *c->maps))
			return "out of memory";
		c->maps[c->nmaps++] = m;
		return NULL;
	}
	if (!shmkit_bridge_valid_subject(subject, !out))
		return out ? "not a NATS subject to publish on (tokens separated by '.', "
			     "no spaces, no wildcards)"
			   : "not a NATS subject (tokens separated by '.', no spaces; '*' "
			     "and a last '>' as whole tokens)";
	if (grow((void **)&c->maps, c->nmaps, sizeof *c->maps))
		return "out of memory";
	c->maps[c->nmaps] = (struct shmkit_bridge_map){
		.dir = out ? SHMKIT_BRIDGE_TOPIC_OUT : SHMKIT_BRIDGE_TOPIC_IN,
		.local = local, .subject = subject};
	c->nmaps++;
	return NULL;
}

/* The config file: one setting a line, "KEY VALUE" with the keys of the options
 * (server, topic-out, topic-in, chan-out, chan-in, stream-max-bytes,
 * stream-duplicates, stream-replicas, host-id, and the TLS and credential ones; tls and
 * tls-no-verify take yes or no); '#' starts a comment line; blank lines are skipped.
 * Returns 0, or prints "FILE:LINE: reason" and returns the exit code. */
static int read_config(struct cfg *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "shmkit bridge: %s: %s\n", path, strerror(errno));
		return SHMKIT_EXIT_USAGE;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int status = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
				 line[n - 1] == '\t'))
			line[--n] = '\0';
		char *k = line + strspn(line, " \t");
		if (!*k || *k == '#')
			continue;
		char *sp = k + strcspn(k, " \t");
		const char *why;
		if (!*sp) {
			why = "expected KEY VALUE";
		} else {
			*sp = '\0';
			char *v = sp + 1 + strspn(sp + 1, " \t");
			why = add_setting(c, k, v);
		}
		if (why) {
			fprintf(stderr, "shmkit bridge: %s:%ld: %s: %s\n", path, lineno, k, why);
			status = SHMKIT_EXIT_USAGE;
			break;
		}
	}
	free(line);
	fclose(f);
	return status;
}

static int show_status(const char *host_id)
{
	char buf[1 << 16];
	ssize_t n = shmkit_bridge_status_read(host_id, buf, sizeof buf);
	if (n == -ENOENT) {
		fprintf(stderr, "shmkit bridge: no bridge runs with host id %s\n", host_id);
		return SHMKIT_EXIT_FAIL;
	}
	if (n == -EINVAL) { /* the only argument it checks: the id */
		fprintf(stderr, "shmkit bridge: bad host id '%s' (1 to 64 of A-Z a-z 0-9 . _ -)\n",
			host_id);
		return SHMKIT_EXIT_USAGE;
	}
	if (n < 0) {
		fprintf(stderr, "shmkit bridge: status of %s: %s\n", host_id, shmkit_strerror((int)n));
		return SHMKIT_EXIT_FAIL;
	}
	fputs(buf, stdout);
	/* The bridge rewrites it every 250 ms: an old one was left by a bridge that died. */
	long long written = 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long age = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (sscanf(buf, "shmkit-bridge %*d %*s %*d %*s %lld", &written) == 1 &&
	    (age -= written) > 2000) {
		fprintf(stderr, "shmkit bridge: the status of %s was last written %.1f s ago: "
				"that bridge is not running\n", host_id, (double)age / 1000);
		return SHMKIT_EXIT_FAIL;
	}
	return SHMKIT_EXIT_OK;
}

/* Says on stderr, once per new batch, that messages were too large to send. */
static void report_oversized(shmkit_bridge *b, const struct cfg *c, uint64_t *seen)
{
	for (size_t i = 0; i < c->nmaps; i++) {
		struct shmkit_bridge_counts k;
		if (shmkit_bridge_counts(b, i, &k) || k.oversized == seen[i])
			continue;
		if (c->maps[i].dir == SHMKIT_BRIDGE_CHAN_OUT)
			fprintf(stderr,
				"shmkit bridge: %s: a message is larger than the server's "
				"max_payload (%" PRId64 " bytes, headers included): this channel "
				"stops there; the message stays in %s, neither truncated nor "
				"skipped\n", c->maps[i].local, shmkit_bridge_max_payload(b),
				c->maps[i].local);
		else if (c->maps[i].dir == SHMKIT_BRIDGE_CHAN_IN)
			fprintf(stderr,
				"shmkit bridge: %s: a stream message is larger than the channel's "
				"largest message: this channel stops there; the message stays in "
				"the stream\n", c->maps[i].local);
		else
		fprintf(stderr,
			"shmkit bridge: %s: %" PRIu64 " message(s) larger than the server's "
			"max_payload (%" PRId64 " bytes, headers included) not sent\n",
			c->maps[i].local, k.oversized - seen[i], shmkit_bridge_max_payload(b));
		seen[i] = k.oversized;
	}
}

/* Says on stderr why the bridge is not connected, each time the reason changes, and
 * that it connected after one. @last: the reason said last. Returns 1 when the
 * connection has ended (run() returned -EPERM or -ECONNABORTED), else 0. */
static int report_error(shmkit_bridge *b, char *last, size_t cap, int r)
{
	char now[512];
	ssize_t n = shmkit_bridge_last_error(b, now, sizeof now);
	if (r == -EPERM || r == -ECONNABORTED) {
		fprintf(stderr, "shmkit bridge: %s: %s\n",
			r == -EPERM ? "the server refused the credentials" : "nats.c closed the connection",
			n > 0 ? now : shmkit_strerror(r));
		return 1;
	}
	/* A channel mapping's reason ("chan-out LOCAL: ...") comes while connected. */
	int mapping = !strncmp(now, "chan-", 5), was_mapping = !strncmp(last, "chan-", 5);
	if (n > 0 && strcmp(now, last)) {
		fprintf(stderr, "shmkit bridge: %s%s\n", mapping ? "" : "not connected: ", now);
		snprintf(last, cap, "%s", now);
	} else if (n == 0 && last[0] && shmkit_bridge_connected(b)) {
		fprintf(stderr, "shmkit bridge: %s\n",
			was_mapping ? "the channel mappings move again" : "connected");
		last[0] = '\0';
	}
	return 0;
}

int shmkit_cmd_bridge(int argc, char **argv)
{
	struct cfg c = {0};
	char host[256], token[SECRET_MAX + 1], password[SECRET_MAX + 1];
	int status = SHMKIT_EXIT_OK, want_status = 0;
	shmkit_bridge *b = NULL;
	uint64_t *seen = NULL;

	if (shmkit__want_help(argc, argv)) {
		printf("usage: %s\n\n"
		       "Carry local topics over NATS: every message published on LOCAL goes out on\n"
		       "SUBJECT (--topic-out) with headers Shmkit-Origin (the host id) and\n"
		       "Shmkit-Seq; every message on SUBJECT comes into LOCAL (--topic-in) unless\n"
		       "it left from this host id. --server may be given once per cluster member\n"
		       "(default nats://127.0.0.1:4222). The bridge waits for an unreachable server\n"
		       "and reconnects by itself; a local publisher never waits for it.\n"
		       "--config FILE: one 'KEY VALUE' a line with KEY server, topic-out, topic-in,\n"
		       "chan-out, chan-in, stream-max-bytes, stream-duplicates, stream-replicas,\n"
		       "host-id or a TLS and credential option's name (tls and tls-no-verify take\n"
		       "yes or no); '#' comments. --host-id defaults to the host name.\n"
		       "--chan-out carries a local channel into a JetStream stream, --chan-in a\n"
		       "stream into a local channel, exactly once: the bridge is the channel's\n"
		       "consumer (out) or producer (in). STREAM names the stream (subject\n"
		       "shmkit.chan.STREAM); a SUBJECT (with a '.') names it after the subject.\n"
		       "The bridge creates a missing stream: WorkQueue, discard new, file storage,\n"
		       "--stream-max-bytes (default 64 MiB: a full stream makes the channel's\n"
		       "producer wait), --stream-duplicates seconds of de-duplication (default\n"
		       "30), --stream-replicas (default 1).\n"
		       "--status prints the running bridge's counters per mapping, and why it is\n"
		       "not connected.\n\n"
		       "TLS and credentials (passed to nats.c):\n"
		       "  --tls                 use TLS, trusting the system's CA certificates\n"
		       "  --tls-ca FILE         PEM CA certificates the server's must chain to\n"
		       "  --tls-cert FILE --tls-key FILE   PEM client certificate and its key\n"
		       "  --tls-hostname NAME   the name the server's certificate must carry\n"
		       "  --tls-no-verify       do not verify the server (tests only)\n"
		       "  --creds FILE          NATS credentials file (user JWT and NKey seed)\n"
		       "  --nkey PUBKEY --nkey-seed FILE   NKey and the file holding its seed\n"
		       "  --token-file FILE     token (else $SHMKIT_NATS_TOKEN)\n"
		       "  --user USER [--password-file FILE]   password from the file, else\n"
		       "                        $SHMKIT_NATS_PASSWORD\n"
		       "A missing or unreadable file is a usage error (exit 2). A handshake the\n"
		       "server refuses is retried every 2 s and shown by --status; credentials the\n"
		       "server refuses stop the bridge (exit 1).\n",
		       usage_line);
		return SHMKIT_EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *key = NULL;
		if (!strcmp(a, "--status")) {
			want_status = 1;
			continue;
		}
		if (!strcmp(a, "--tls") || !strcmp(a, "--tls-no-verify")) {
			c.tls_flags |= a[5] ? SHMKIT_BRIDGE_TLS_NO_VERIFY : SHMKIT_BRIDGE_TLS;
			continue;
		}
		for (size_t k = 0; k < NCRED && !key; k++)
			if (!strncmp(a, "--", 2) && !strcmp(a + 2, cred_keys[k]))
				key = cred_keys[k];
		if (!strcmp(a, "--server"))
			key = "server";
		else if (!strcmp(a, "--topic-out"))
			key = "topic-out";
		else if (!strcmp(a, "--topic-in"))
			key = "topic-in";
		else if (!strcmp(a, "--chan-out"))
			key = "chan-out";
		else if (!strcmp(a, "--chan-in"))
			key = "chan-in";
		else if (!strcmp(a, "--stream-max-bytes"))
			key = "stream-max-bytes";
		else if (!strcmp(a, "--stream-duplicates"))
			key = "stream-duplicates";
		else if (!strcmp(a, "--stream-replicas"))
			key = "stream-replicas";
		else if (!strcmp(a, "--host-id"))
			key = "host-id";
		else if (!strcmp(a, "--config"))
			key = "config";
		if (!key) {
			fprintf(stderr, "shmkit bridge: unknown option %s\n", a);
			status = shmkit__usage_error(usage_line);
			goto out;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "shmkit bridge: %s needs a value\n", a);
			status = shmkit__usage_error(usage_line);
			goto out;
		}
		const char *v = argv[++i];
		if (!strcmp(key, "config")) {
			if ((status = read_config(&c, v)))
				goto out;
			continue;
		}
		const char *why = add_setting(&c, key, v);
		if (why) {
			fprintf(stderr, "shmkit bridge: %s %s: %s\n", a, v, why);
			status = SHMKIT_EXIT_USAGE;
			goto out;
		}
	}
	if (!c.host_id) {
		if (gethostname(host, sizeof host - 1) < 0)
			strcpy(host, "localhost");
		host[sizeof host - 1] = '\0';
		c.host_id = host;
	}
	if (want_status) {
		if (c.nmaps || c.nservers) {
			fprintf(stderr, "shmkit bridge: --status takes only --host-id\n");
			status = shmkit__usage_error(usage_line);
			goto out;
		}
		status = show_status(c.host_id);
		goto out;
	}
	if (c.nmaps == 0) {
		fprintf(stderr, "shmkit bridge: no mapping (--topic-out, --topic-in, --chan-out, "
				"--chan-in or --config)\n");
		status = shmkit__usage_error(usage_line);
		goto out;
	}
	if (c.nservers == 0 && add_setting(&c, "server", "nats://127.0.0.1:4222")) {
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < c.nmaps; i++) {
		if (c.maps[i].dir != SHMKIT_BRIDGE_CHAN_OUT && c.maps[i].dir != SHMKIT_BRIDGE_CHAN_IN)
			continue;
		c.maps[i].max_bytes = c.max_bytes;
		c.maps[i].dup_window_ns = c.dup_window_ns;
		c.maps[i].replicas = c.replicas;
	}
	char why[512] = "";
	struct shmkit_bridge_opts o = {.servers = c.servers, .nservers = c.nservers,
				       .maps = c.maps, .nmaps = c.nmaps, .host_id = c.host_id,
				       .errbuf = why, .errcap = sizeof why};
	if ((status = cred_opts(&c, &o, token, password)))
		goto out;
	int r = shmkit_bridge_open(&o, &b);
	/* nats.c holds its own copies now */
	explicit_bzero(token, sizeof token);
	explicit_bzero(password, sizeof password);
	if (r == -EINVAL && why[0]) {
		fprintf(stderr, "shmkit bridge: %s\n", why);
		status = SHMKIT_EXIT_USAGE;
		goto out;
	}
	if (r == -EPERM) {
		fprintf(stderr, "shmkit bridge: the server refused the credentials: %s\n", why);
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	if (r == -EINVAL) {
		fprintf(stderr, "shmkit bridge: the bridge refused these options\n");
		status = SHMKIT_EXIT_USAGE;
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "shmkit bridge: %s\n", why[0] ? why : shmkit_strerror(r));
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	seen = calloc(c.nmaps, sizeof *seen);
	if (!seen) {
		status = SHMKIT_EXIT_FAIL;
		goto out;
	}
	shmkit__catch_stop();
	signal(SIGPIPE, SIG_IGN); /* a server gone mid-write is nats.c's to handle, not fatal */
	fprintf(stderr, "shmkit bridge: host id %s, %zu mapping(s), %s\n", c.host_id, c.nmaps,
		shmkit_bridge_connected(b) ? "connected" : "waiting for a server");
	while (!shmkit__stop) {
		r = shmkit_bridge_run(b, 200 * SHMKIT_MSEC);
		report_oversized(b, &c, seen);
		if (report_error(b, why, sizeof why, r)) {
			status = SHMKIT_EXIT_FAIL;
			break;
		}
	}
out:
	explicit_bzero(token, sizeof token);
	explicit_bzero(password, sizeof password);
	shmkit_bridge_close(b);
	free(seen);
	for (size_t i = 0; i < c.nowned; i++)
		free(c.owned[i]);
	free(c.owned);
	free(c.servers);
	free(c.maps);
	return status;
}
