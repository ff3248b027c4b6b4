/* shmkit bench — statistics over the rounds, the machine's description, and the two
 * outputs: an aligned table for people and JSON for scripts. */
#include "bench.h"

static double h_value(unsigned i)
{
	unsigned shift;
	if (i < H_SUB)
		return i;
	shift = i / H_SUB - 1;
	return (double)((uint64_t)(H_SUB + i % H_SUB) << shift) +
	       (double)(((uint64_t)1 << shift) - 1) / 2;
}

static double h_quantile(const struct hist *h, double q)
{
	uint64_t want, acc = 0;
	if (!h || !h->n)
		return NAN;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < H_N; i++) {
		acc += h->c[i];
		if (acc >= want)
			return h_value(i);
	}
	return h_value(H_N - 1);
}

static int find_case(const char *id)
{
	for (size_t i = 0; id && i < NCASES; i++)
		if (!strcmp(cases[i].id, id))
			return (int)i;
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median over rounds of per-round values (NAN: that round has none). */
static double median_of(const double *per_round, int rounds)
{
	double v[rounds];
	int n = 0;
	for (int r = 0; r < rounds; r++)
		if (isfinite(per_round[r]))
			v[n++] = per_round[r];
	return median(v, n);
}

/* Median over rounds of a case's figure. */
static double figure(const struct result *res, int rounds)
{
	return median_of(res->val, rounds);
}

/* Quantile q (0.5: the median) over rounds of a's figure / b's figure in the same
 * round; *used: the rounds that had both. */
static double ratio_q(const struct result *res, int a, int b, int rounds, double q, int *used)
{
	double v[rounds], pos;
	int n = 0, k;
	if (a >= 0 && b >= 0)
		for (int r = 0; r < rounds; r++)
			if (isfinite(res[a].val[r]) && isfinite(res[b].val[r]) && res[b].val[r] > 0)
				v[n++] = res[a].val[r] / res[b].val[r];
	if (used)
		*used = n;
	if (q == 0.5 || n == 0)
		return median(v, n);
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	pos = q * (n - 1);
	k = (int)pos;
	return k + 1 < n ? v[k] + (v[k + 1] - v[k]) * (pos - k) : v[k];
}

/* Median over rounds of a's figure / b's figure in the same round. */
static double ratio(const struct result *res, int a, int b, int rounds, int *used)
{
	return ratio_q(res, a, b, rounds, 0.5, used);
}

/* How many times faster shmkit is than case i: time ratio for round trips, rate ratio
 * for throughput. */
static double shmkit_factor(const struct result *res, int i, int ref, int rounds)
{
	if (cases[i].kind == K_RTT)
		return ratio(res, i, ref, rounds, NULL);
	return ratio(res, ref, i, rounds, NULL);
}

double shmkit__bench_loadavg(void)
{
	double v = NAN;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = NAN;
		fclose(f);
	}
	return v;
}

/* The value of a "key : value" line of /proc/cpuinfo, trimmed, or NULL. */
static char *cpuinfo_value(char *line, const char *key)
{
	char *colon = strchr(line, ':');
	size_t n = strlen(key);
	if (!colon || strncmp(line, key, n) || (line[n] != ' ' && line[n] != '\t'))
		return NULL;
	colon++;
	while (*colon == ' ' || *colon == '\t')
		colon++;
	colon[strcspn(colon, "\n")] = '\0';
	return colon;
}

void shmkit__bench_describe_machine(struct machine *m)
{
	struct utsname u;
	char line[512], model[160] = "unknown", family[32] = "", number[32] = "", *v;
	FILE *f = fopen("/proc/cpuinfo", "r");

	/* The first processor's model name (x86) or Model (arm), family and model. */
	while (f && fgets(line, sizeof line, f) && line[0] != '\n') {
		if ((v = cpuinfo_value(line, "model name")) || (v = cpuinfo_value(line, "Model")))
			snprintf(model, sizeof model, "%s", v);
		else if ((v = cpuinfo_value(line, "cpu family")))
			snprintf(family, sizeof family, "%s", v);
		else if ((v = cpuinfo_value(line, "model")))
			snprintf(number, sizeof number, "%s", v);
	}
	if (f)
		fclose(f);
	if (family[0])
		snprintf(m->cpu, sizeof m->cpu, "%.100s (family %.8s, model %.8s)", model, family,
			 number);
	else
		snprintf(m->cpu, sizeof m->cpu, "%s", model);
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	m->load_before = shmkit__bench_loadavg();
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
	else
		snprintf(m->kernel, sizeof m->kernel, "unknown");
}

/* Strings and numbers go through the tool's one JSON writer (tools/json.c), so that
 * labels and names are escaped alike everywhere and a missing figure is null. */
#define json_str shmkit__json_str
#define json_num shmkit__json_num

static void json_array(FILE *f, const char *key, const double *v, int n)
{
	fprintf(f, ",\n     \"%s\": [", key);
	for (int k = 0; k < n; k++) {
		fputs(k ? ", " : "", f);
		json_num(f, v[k]);
	}
	fputc(']', f);
}

const char *shmkit__bench_state_name(enum state s)
{
	return s == ST_OK	     ? "ok"
	       : s == ST_UNAVAILABLE ? "unavailable"
	       : s == ST_SKIPPED     ? "skipped"
				     : "failed";
}

static const char *kind_name(enum kind k)
{
	return k == K_RTT ? "round_trip" : k == K_TPUT ? "throughput" : "bandwidth";
}

/* Acceptance verdict: "PASS", "MISS", "SKIP" (a case is missing), or "context" (a
 * reference line that passes or fails nothing). */
const char *shmkit__bench_verdict(const struct accept *a, double v)
{
	if (a->context)
		return "context";
	if (!isfinite(v))
		return "SKIP";
	return (a->le ? v <= a->bound : v >= a->bound) ? "PASS" : "MISS";
}

/* The sleeping case measures sleeping only if the channel does sleep: say so when it
 * mostly did not (the channel may spin briefly even with spin 0). Returns 1 and the
 * note, or 0. */
static int sleep_note(const struct result *res, char *buf, size_t n)
{
	const struct result *r = &res[find_case("rtt.chan_sleep")];
	double per = r->msgs ? (double)r->c_sleeps / (double)r->msgs : NAN;
	if (r->state != ST_OK || !isfinite(per) || per >= 0.5)
		return 0;
	snprintf(buf, n,
		 "the sleeping channel slept on only %.0f%% of its messages (spin 0 still "
		 "spins first): its figures mix a spinning and a sleeping regime",
		 per * 100);
	return 1;
}

void shmkit__bench_print_json(FILE *f, const struct machine *m, const struct cfg *cfg,
			      const struct result *res)
{
	char note[256];

	fprintf(f, "{\n  \"tool\": \"shmkit bench\",\n  \"version\": ");
	json_str(f, shmkit_version_string());
	fprintf(f, ",\n  \"machine\": {\"cpu\": ");
	json_str(f, m->cpu);
	fprintf(f, ", \"nproc\": %ld, \"cpus_allowed\": %d, \"kernel\": ", m->nproc, g_allowed);
	json_str(f, m->kernel);
	fprintf(f,
		", \"pinned\": %s, \"cpu_parent\": %d, \"cpu_child\": %d, \"clock\": \"%s\", "
		"\"loadavg_before\": ",
		g_pinned ? "true" : "false", g_cpu[0], g_cpu[1], CLOCK_NAME);
	json_num(f, m->load_before);
	fprintf(f, ", \"loadavg_after\": ");
	json_num(f, m->load_after);
	fprintf(f, ", \"involuntary_switches\": %ld, \"nice\": %d},\n", m->nivcsw, g_nice);
	fprintf(
	    f,
	    "  \"config\": {\"rounds\": %d, \"trial_ms\": %d, \"quick\": %s, \"rtt_bytes\": %d, "
	    "\"chan_capacity_rtt\": %zu, \"chan_capacity_min\": %zu},\n",
	    cfg->rounds, cfg->trial_ms, cfg->quick ? "true" : "false", RTT_BYTES, CHAN_CAP_RTT,
	    CHAN_CAP_MIN);
	fprintf(f, "  \"method\": \"figures are medians over rounds; ratios are medians of "
		   "per-round ratios of the figures; a round trip's figure is its typical time "
		   "(median over ~10 us batches of the batch mean, no timer inside a batch); "
		   "percentiles are over every round trip of every round, each timed with the "
		   "TSC\",\n");
	fprintf(f, "  \"cases\": [\n");
	for (size_t i = 0; i < NCASES; i++) {
		const struct bcase *bc = &cases[i];
		const struct result *r = &res[i];
		int lim = find_case(bc->limit), ref = find_case(bc->shmkit);
		double fig = figure(r, cfg->rounds);

		fprintf(f, "    {\"id\": ");
		json_str(f, bc->id);
		fprintf(f, ", \"label\": ");
		json_str(f, bc->label);
		fprintf(f, ", \"kind\": \"%s\", \"bytes\": %zu, \"status\": \"%s\", \"error\": ",
			kind_name(bc->kind), bc->size, shmkit__bench_state_name(r->state));
		if (r->state == ST_OK)
			fputs("null", f);
		else
			json_str(f, r->why);
		if (bc->kind == K_RTT) {
			fprintf(f, ",\n     \"typical_ns\": ");
			json_num(f, fig);
			fprintf(f, ", \"mean_ns\": ");
			json_num(f, median_of(r->mean, cfg->rounds));
			fprintf(f, ", \"p50_ns\": ");
			json_num(f, h_quantile(r->hist, 0.50));
			fprintf(f, ", \"p99_ns\": ");
			json_num(f, h_quantile(r->hist, 0.99));
			fprintf(f, ", \"p999_ns\": ");
			json_num(f, h_quantile(r->hist, 0.999));
			fprintf(f, ", \"samples\": %" PRIu64, r->hist->n);
		} else {
			fprintf(f, ",\n     \"msgs_per_s\": ");
			json_num(f, bc->kind == K_TPUT ? fig / (double)bc->size : NAN);
			fprintf(f, ", \"gb_per_s\": ");
			json_num(f, fig / 1e9);
		}
		fprintf(f, ", \"limit\": ");
		json_str(f, bc->limit);
		fprintf(f, ", \"vs_limit\": ");
		json_num(f, ratio(res, (int)i, lim, cfg->rounds, NULL));
		fprintf(f, ", \"shmkit\": ");
		if (bc->shmkit)
			json_str(f, bc->shmkit);
		else
			fputs("null", f);
		fprintf(f, ", \"shmkit_faster\": ");
		json_num(f, ref >= 0 ? shmkit_factor(res, (int)i, ref, cfg->rounds) : NAN);
		if (bc->kind == K_RTT) {
			fprintf(f, ", \"shmkit_sleep_faster\": ");
			json_num(f, shmkit_factor(res, (int)i, find_case("rtt.chan_sleep"),
						  cfg->rounds));
		}
		if (mech_is_chan(bc->mech))
			fprintf(f,
				",\n     \"chan_counters\": {\"msgs\": %" PRIu64
				", \"consumer_sleeps\": %" PRIu64 ", \"producer_sleeps\": %" PRIu64
				", \"wakes\": %" PRIu64 "}",
				r->msgs, r->c_sleeps, r->p_sleeps, r->wakes);
		if (bc->kind == K_RTT) {
			json_array(f, "per_round_typical_ns", r->val, cfg->rounds);
			json_array(f, "per_round_mean_ns", r->mean, cfg->rounds);
		} else {
			json_array(f, "per_round_bytes_per_s", r->val, cfg->rounds);
		}
		fprintf(f, "}%s\n", i + 1 < NCASES ? "," : "");
	}
	fprintf(f, "  ],\n  \"acceptance\": [\n");
	int all = 1;
	for (size_t i = 0; i < NACCEPTS; i++) {
		const struct accept *a = &accepts[i];
		int used;
		double v = ratio(res, find_case(a->num), find_case(a->den), cfg->rounds, &used);
		const char *vd = shmkit__bench_verdict(a, v);
		all &= a->context || !strcmp(vd, "PASS");
		fprintf(f, "    {\"id\": \"%s\", \"what\": ", a->id);
		json_str(f, a->what);
		fprintf(f,
			", \"numerator\": \"%s\", \"denominator\": \"%s\", \"op\": \"%s\", "
			"\"threshold\": ",
			a->num, a->den, a->le ? "<=" : ">=");
		json_num(f, a->bound);
		fprintf(f, ", \"measured\": ");
		json_num(f, v);
		fprintf(f, ", \"p25\": ");
		json_num(
		    f, ratio_q(res, find_case(a->num), find_case(a->den), cfg->rounds, 0.25, NULL));
		fprintf(f, ", \"p75\": ");
		json_num(
		    f, ratio_q(res, find_case(a->num), find_case(a->den), cfg->rounds, 0.75, NULL));
		fprintf(f, ", \"rounds\": %d, \"result\": \"%s\"}%s\n", used, vd,
			i + 1 < NACCEPTS ? "," : "");
	}
	fprintf(f, "  ],\n  \"notes\": [");
	if (sleep_note(res, note, sizeof note))
		json_str(f, note);
	fprintf(f, "],\n  \"all_pass\": %s", all ? "true" : "false");
	if (g_topic) {
		fprintf(f, ",\n  \"topic\": ");
		shmkit__bench_topic_print(f, g_topic, 1, 0);
	}
	if (g_scale) {
		fprintf(f, ",\n  \"scale\": ");
		shmkit__bench_scale_print(f, g_scale, 1, 0);
	}
	fprintf(f, "\n}\n");
}

/* A ratio in 6 columns, "-" when there is none. */
const char *shmkit__bench_fmt_ratio(char *b, size_t n, double v)
{
	if (!isfinite(v))
		snprintf(b, n, "%6s", "-");
	else if (v >= 100)
		snprintf(b, n, "%6.0f", v);
	else if (v >= 10)
		snprintf(b, n, "%6.1f", v);
	else if (v >= 0.1)
		snprintf(b, n, "%6.2f", v);
	else
		snprintf(b, n, "%6.3f", v);
	return b;
}

static const char *fmt_us(char *b, size_t n, double ns)
{
	if (!isfinite(ns))
		snprintf(b, n, "%8s", "-");
	else
		snprintf(b, n, ns < 1e6 ? "%8.3f" : ns < 1e8 ? "%8.1f" : "%8.0f", ns / 1e3);
	return b;
}

const char *shmkit__bench_fmt_rate(char *b, size_t n, double v)
{
	if (!isfinite(v))
		snprintf(b, n, "%9s", "-");
	else if (v >= 1e6)
		snprintf(b, n, "%7.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(b, n, "%7.2f k", v / 1e3);
	else
		snprintf(b, n, "%9.1f", v);
	return b;
}

static const char *fmt_size(size_t n)
{
	return n >= MIB ? "1 MiB" : n >= 4 * KIB ? "4 KiB" : "64 B";
}

void shmkit__bench_print_table(FILE *f, const struct machine *m, const struct cfg *cfg,
			       const struct result *res)
{
	char b[8][32], note[256];
	int spin = find_case("rtt.chan_spin"), sleep_ = find_case("rtt.chan_sleep");
	int miss = 0, skip = 0;

	fprintf(f, "shmkit bench (shmkit %s)\n", shmkit_version_string());
	fprintf(f, "machine: %s; nproc %ld (%d allowed); %s\n", m->cpu, m->nproc, g_allowed,
		m->kernel);
	fprintf(f,
		"load:    %.2f before, %.2f after (1-minute average); %ld involuntary "
		"context switches\n",
		m->load_before, m->load_after, m->nivcsw);
	if (m->load_before > 0.5)
		fprintf(f, "WARNING: other processes were running; expect noisy figures and "
			   "slow sleeping cases\n");
	if (g_pinned)
		fprintf(f, "pinned:  parent on CPU %d, child on CPU %d; nice %d\n", g_cpu[0],
			g_cpu[1], g_nice);
	else
		fprintf(f, "pinned:  no, only one CPU is available: spinning cases are not "
			   "meaningful\n");
	fprintf(f,
		"method:  %d rounds of %zu cases, %d ms trials, interleaved; a figure is "
		"the median over\n         rounds, a ratio the median of per-round ratios "
		"(same-round measurements)\n\n",
		cfg->rounds, NCASES, cfg->trial_ms);

	fprintf(f, "Round trip, 64 B messages     typical µs  mean µs   p50 µs   p99 µs  p999 µs"
		   "  vs limit  ×spin ×sleep\n");
	for (size_t i = 0; i < NCASES; i++) {
		const struct result *r = &res[i];
		if (cases[i].kind != K_RTT)
			continue;
		fprintf(f, "  %-30s", cases[i].label);
		if (r->state == ST_OK)
			fprintf(
			    f, "%s %s %s %s %s  %s %-2s %s %s\n",
			    fmt_us(b[7], 32, figure(r, cfg->rounds)),
			    fmt_us(b[0], 32, median_of(r->mean, cfg->rounds)),
			    fmt_us(b[1], 32, h_quantile(r->hist, 0.5)),
			    fmt_us(b[2], 32, h_quantile(r->hist, 0.99)),
			    fmt_us(b[3], 32, h_quantile(r->hist, 0.999)),
			    shmkit__bench_fmt_ratio(
				b[4], 32,
				ratio(res, (int)i, find_case(cases[i].limit), cfg->rounds, NULL)),
			    !strcmp(cases[i].limit, "rtt.cacheline") ? "CL" : "FX",
			    shmkit__bench_fmt_ratio(b[5], 32, shmkit_factor(res, (int)i, spin, cfg->rounds)),
			    shmkit__bench_fmt_ratio(b[6], 32, shmkit_factor(res, (int)i, sleep_, cfg->rounds)));
		else
			fprintf(f, "  %s: %s\n", shmkit__bench_state_name(r->state), r->why);
	}
	fprintf(f, "  (typical: median over ~10 µs batches of the batch's mean, no timer inside a "
		   "batch; ratios\n   divide typical times. vs limit: ÷ cache-line (CL) or futex "
		   "(FX) round trip; ×spin,\n   ×sleep: ÷ shmkit's spinning, sleeping round trip. "
		   "Percentiles include a TSC read.)\n\n");

	fprintf(f, "One-way throughput               size     msgs/s     GB/s  vs memcpy  "
		   "shmkit×\n");
	for (size_t i = 0; i < NCASES; i++) {
		const struct result *r = &res[i];
		double fig;
		if (cases[i].kind == K_RTT)
			continue;
		fig = figure(r, cfg->rounds);
		fprintf(f, "  %-30s%-6s", cases[i].label, fmt_size(cases[i].size));
		if (r->state != ST_OK) {
			fprintf(f, "  %s: %s\n", shmkit__bench_state_name(r->state), r->why);
			continue;
		}
		fprintf(
		    f, " %s %8.2f     %s  %s\n",
		    shmkit__bench_fmt_rate(b[0], 32, cases[i].kind == K_TPUT ? fig / (double)cases[i].size : NAN),
		    fig / 1e9,
		    shmkit__bench_fmt_ratio(b[1], 32,
			      ratio(res, (int)i, find_case(cases[i].limit), cfg->rounds, NULL)),
		    shmkit__bench_fmt_ratio(
			b[2], 32,
			cases[i].shmkit
			    ? shmkit_factor(res, (int)i, find_case(cases[i].shmkit), cfg->rounds)
			    : NAN));
	}
	fprintf(f, "  (vs memcpy: ÷ one core's memcpy GB/s; shmkit×: shmkit copy's msgs/s ÷ "
		   "this case's, same size.\n   Textbook ring: one slot per message, as many as "
		   "fit in the channel's ring bytes.\n   copy+fill+check: send/recv with "
		   "zero-copy's payload work, every byte written and read.)\n\n");

	fprintf(f, "%-39s%10s %8s %8s %8s\n%-39s%10s %8s %8s\n", "shmkit's counters, all rounds",
		"messages", "consumer", "producer", "wakes", "(sleeps and wakes per message)", "",
		"sleeps", "sleeps");
	for (size_t i = 0; i < NCASES; i++) {
		const struct result *r = &res[i];
		double k = r->msgs ? 1.0 / (double)r->msgs : NAN;
		if (r->state != ST_OK || !mech_is_chan(cases[i].mech))
			continue;
		fprintf(f, "  %-30s%-6s %10" PRIu64 " %8.3f %8.3f %8.3f\n", cases[i].label,
			cases[i].kind == K_RTT ? "RTT" : fmt_size(cases[i].size), r->msgs,
			(double)r->c_sleeps * k, (double)r->p_sleeps * k, (double)r->wakes * k);
	}
	fputc('\n', f);

	/* The targets first, then the context lines (an old threshold shown, not judged). */
	for (int ctx = 0; ctx < 2; ctx++) {
		fprintf(f, "%s",
			ctx ? "Context (kernel mechanisms and the sleeping path: their speed moves "
			      "2-3 x between CPUs,\n         so the old thresholds are shown, not "
			      "judged)\n"
			    : "Acceptance: the median of the per-round ratios, and their "
			      "quartiles\n");
		for (size_t i = 0; i < NACCEPTS; i++) {
			const struct accept *a = &accepts[i];
			int used, num = find_case(a->num), den = find_case(a->den);
			double v = ratio(res, num, den, cfg->rounds, &used);
			const char *vd = shmkit__bench_verdict(a, v);
			if (a->context != ctx)
				continue;
			miss += !strcmp(vd, "MISS");
			skip += !strcmp(vd, "SKIP");
			fprintf(f,
				"  %-4s  %-38s %s %s %6.3f  measured %s  (quartiles %s %s; %d "
				"rounds)\n",
				ctx ? "" : vd, a->what, ctx ? "was" : "   ", a->le ? "<=" : ">=",
				a->bound, shmkit__bench_fmt_ratio(b[0], 32, v),
				shmkit__bench_fmt_ratio(
				    b[1], 32, ratio_q(res, num, den, cfg->rounds, 0.25, NULL)),
				shmkit__bench_fmt_ratio(
				    b[2], 32, ratio_q(res, num, den, cfg->rounds, 0.75, NULL)),
				used);
		}
		if (!ctx)
			fprintf(f, "%s\n",
				miss   ? "Some thresholds are missed."
				: skip ? "Some thresholds could not be measured."
				       : "All thresholds are met.");
	}
	if (sleep_note(res, note, sizeof note))
		fprintf(f, "NOTE: %s.\n", note);
}

double shmkit__bench_median(const double *per_round, int rounds)
{
	return rounds > 0 ? median_of(per_round, rounds) : NAN;
}

double shmkit__bench_ratio_of(const double *a, const double *b, int rounds)
{
	double v[rounds > 0 ? rounds : 1];
	int n = 0;
	for (int r = 0; a && b && r < rounds; r++)
		if (isfinite(a[r]) && isfinite(b[r]) && b[r] > 0)
			v[n++] = a[r] / b[r];
	return median(v, n);
}
