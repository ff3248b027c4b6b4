/* shmkit bench — the run as one self-contained SVG chart (--svg FILE).
 *
 * Why it is drawn this way:
 * - Nothing to install and nothing fetched: plain SVG 1.1 elements (rect, line,
 *   polyline, circle, text, title) and a generic font family, so the file renders alike
 *   in a browser, in rsvg-convert and embedded in a README, on a machine with no
 *   network.
 * - Fed from the structures the table prints from, through report.c's medians and
 *   per-round ratios, so that the chart and the table cannot disagree.
 * - Driven by the data: every case the run measured is drawn, grouped by its kind and
 *   message size and coloured by its family (shmkit, the textbook ring, the kernel's
 *   mechanisms), so a case added to the table in bench.h appears here with no change.
 *   A limit (a case that is its own limit: cache-line round trip, futex wake, memcpy)
 *   is a line across its panel, not a bar: it is the floor or ceiling the bars are read
 *   against.
 * - Log scales where the figures span decades: a round trip ranges from ~100 ns
 *   (spinning) to ~100 µs (sleeping), throughput from MB/s (a pipe at 64 B) to tens
 *   of GB/s (1 MiB copies). A linear axis would leave all but the largest bar flat.
 * - Every text is escaped: the CPU model comes from /proc/cpuinfo, which a hypervisor
 *   fills as it likes (markup, control bytes, bytes that are not UTF-8). Texts go
 *   through the tool's one text escape (tools/json.c), then XML's five characters.
 * - The body is drawn into memory first: the SVG's height, written in its first
 *   element, is known only once every panel has been laid out. */
#include "bench.h"
#include "json.h"

#include <ctype.h>
#include <stdarg.h>

#define W 960.0	    /* the chart's width, px */
#define MARGIN 20.0 /* left and right */
#define FONT 11	    /* body text, px */
#define C_LIMIT "#d62728"
#define C_GRID "#e3e3e3"
#define C_AXIS "#555555"
#define C_TEXT "#222222"
#define C_PASS "#1a7f37"
#define C_MISS "#c62828"

enum family { F_SHMKIT, F_RING, F_KERNEL, F_N };

/* Colours by family, one shade per series: blues for shmkit, oranges for the textbook
 * ring, greys, greens and purples for everything else. */
static const char *const palette[F_N][6] = {
    {"#1f5fbf", "#6fa8ec", "#0b3d91", "#a9c9f2", "#3c82d8", "#16457f"},
    {"#e6710f", "#f5a25a", "#a94f07", "#f8c89b", "#cf8a3c", "#7a3a05"},
    {"#6b6b6b", "#2f9e5a", "#8e5cc4", "#b0b0b0", "#b8860b", "#3f9f9f"},
};

#define MAX_SERIES 48

struct series {
	const char *label;
	const char *color;
};

struct chart {
	FILE *f;  /* the body, in memory */
	double y; /* where the next block starts */
	const struct cfg *cfg;
	const struct result *res;
	struct series ser[MAX_SERIES];
	int nser, nfam[F_N];
	int lo_ser, hi_ser; /* the series a legend lists: [lo_ser, hi_ser) */
};

/* ---- text ---- */

/* s as XML character data or an attribute value: the tool's text escape first (valid
 * UTF-8 kept; control characters and bytes that are not UTF-8 as \xXX, so nothing
 * invisible and nothing XML forbids gets through), then &, <, >, " and ' as entities.
 * U+FFFE and U+FFFF, valid UTF-8 that XML still forbids, become U+FFFD. */
static void put_text(FILE *f, const char *s)
{
	char safe[2048];
	size_t n = shmkit__text_str(safe, sizeof safe, s ? s : "");

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)safe[i];
		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&#39;", f);
		else if (c == 0xef && i + 2 < n && (unsigned char)safe[i + 1] == 0xbf &&
			 ((unsigned char)safe[i + 2] & 0xfe) == 0xbe) {
			fputs("\xef\xbf\xbd", f);
			i += 2;
		} else {
			fputc(c, f);
		}
	}
}

/* A <text> at (x, y). attrs are the code's own attributes (anchor, size, colour),
 * never data; the content is formatted, then escaped. */
__attribute__((format(printf, 5, 6))) static void text(FILE *f, double x, double y,
						       const char *attrs, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
	put_text(f, buf);
	fputs("</text>\n", f);
}

/* A <title> child (a browser's tooltip) with escaped, formatted content. */
__attribute__((format(printf, 2, 3))) static void title(FILE *f, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fputs("<title>", f);
	put_text(f, buf);
	fputs("</title>", f);
}

/* id="case-ID" or id="limit-ID": what a test (or a reader's script) finds a case by. */
static void put_id(FILE *f, const char *prefix, const char *id)
{
	fprintf(f, " id=\"%s-", prefix);
	put_text(f, id);
	fputc('"', f);
}

static const char *fmt_size(char *b, size_t n, size_t sz)
{
	if (sz >= MIB && sz % MIB == 0)
		snprintf(b, n, "%zu MiB", sz / MIB);
	else if (sz >= KIB && sz % KIB == 0)
		snprintf(b, n, "%zu KiB", sz / KIB);
	else
		snprintf(b, n, "%zu B", sz);
	return b;
}

/* v with an SI prefix and unit: three significant digits ("40.5 M/s", "2.59 GB/s"),
 * or as few as it needs for an axis tick ("10 GB/s"). */
static const char *fmt_si(char *b, size_t n, double v, const char *unit, int tick)
{
	static const char *const pre[] = {"", "k", "M", "G", "T", "P"};
	int k = 0;
	while (fabs(v) >= 999.5 && k < 5) {
		v /= 1000;
		k++;
	}
	if (tick)
		snprintf(b, n, "%g %s%s", v, pre[k], unit);
	else
		snprintf(b, n,
			 fabs(v) >= 99.95   ? "%.0f %s%s"
			 : fabs(v) >= 9.995 ? "%.1f %s%s"
					    : "%.2f %s%s",
			 v, pre[k], unit);
	return b;
}

/* A time in ns as ns, µs or ms. */
static const char *fmt_time(char *b, size_t n, double ns, int tick)
{
	if (ns < 999.5)
		snprintf(b, n, tick ? "%g ns" : "%.0f ns", ns);
	else if (ns < 999.5e3)
		snprintf(b, n,
			 tick		? "%g µs"
			 : ns < 9.995e3 ? "%.2f µs"
			 : ns < 99.95e3 ? "%.1f µs"
					: "%.0f µs",
			 ns / 1e3);
	else
		snprintf(b, n, tick ? "%g ms" : "%.2f ms", ns / 1e6);
	return b;
}

static const char *fmt_bps(char *b, size_t n, double v, int tick)
{
	return fmt_si(b, n, v, "B/s", tick);
}

static const char *fmt_per_s(char *b, size_t n, double v, int tick)
{
	return fmt_si(b, n, v, "/s", tick);
}

static const char *fmt_times(char *b, size_t n, double v, int tick)
{
	snprintf(b, n, tick ? "%g×" : v >= 9.995 ? "%.1f×" : "%.2f×", v);
	return b;
}

/* A label without the table's " [limit]" mark: the chart says it by drawing a line. */
static const char *plain_label(char *b, size_t n, const char *label)
{
	const char *mark = strstr(label, " [limit]");
	snprintf(b, n, "%.*s", mark ? (int)(mark - label) : (int)strlen(label), label);
	return b;
}

/* ---- series and families ---- */

static enum family family_of(const char *id, const char *label)
{
	if (strstr(id, "ring"))
		return F_RING;
	if (!strncmp(label, "shmkit", 6))
		return F_SHMKIT;
	return F_KERNEL;
}

/* The colour of the series a label names, given on first sight. */
static const char *series_color(struct chart *c, const char *id, const char *label)
{
	enum family fam;
	for (int i = 0; i < c->nser; i++)
		if (!strcmp(c->ser[i].label, label))
			return c->ser[i].color;
	fam = family_of(id, label);
	if (c->nser == MAX_SERIES)
		return palette[fam][0];
	c->ser[c->nser].label = label;
	c->ser[c->nser].color = palette[fam][c->nfam[fam]++ % 6];
	return c->ser[c->nser++].color;
}

static int find_case(const char *id)
{
	for (size_t i = 0; id && i < NCASES; i++)
		if (!strcmp(cases[i].id, id))
			return (int)i;
	return -1;
}

static int is_limit(size_t i)
{
	return cases[i].limit && !strcmp(cases[i].limit, cases[i].id);
}

/* Case i's figure (median over rounds), or NAN when it has none to draw. */
static double fig(const struct chart *c, size_t i)
{
	double v;
	if (c->res[i].state != ST_OK)
		return NAN;
	v = shmkit__bench_median(c->res[i].val, c->cfg->rounds);
	return isfinite(v) && v > 0 ? v : NAN;
}

/* ---- axes ---- */

struct axis {
	double lo, hi; /* values at p0 and p1 */
	double p0, p1; /* pixels */
	int log;
	const char *(*fmt)(char *, size_t, double, int);
};

/* Fits the axis to [mn, mx]: logarithmic, whole decades, when the figures span a
 * decade or more; otherwise linear from 0 with room above the largest. */
static void ax_fit(struct axis *a, double mn, double mx)
{
	a->log = mn > 0 && mx / mn >= 10;
	if (a->log) {
		a->lo = pow(10, floor(log10(mn)));
		a->hi = pow(10, ceil(log10(mx)));
		if (a->hi <= a->lo)
			a->hi = a->lo * 10;
	} else {
		double step = pow(10, floor(log10(mx * 1.15)));
		a->lo = 0;
		a->hi = ceil(mx * 1.15 / step) * step;
		if (!(a->hi > 0))
			a->hi = 1;
	}
}

static double ax_pos(const struct axis *a, double v)
{
	double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
			  : (v - a->lo) / (a->hi - a->lo);
	if (!isfinite(t) || t < 0)
		t = 0;
	if (t > 1)
		t = 1;
	return a->p0 + t * (a->p1 - a->p0);
}

/* Grid lines and tick labels: every decade (and faint lines at 2..9 of each) on a log
 * axis, about five steps of 1, 2 or 5 on a linear one. vertical: the axis runs up the
 * page (ticks to its left at x = at); otherwise along it (ticks below y = at). The grid
 * spans [g0, g1] across. */
static void ax_draw(FILE *f, const struct axis *a, int vertical, double at, double g0, double g1)
{
	char b[64];
	double step = 0, v;
	int every = 1, k = 0;

	if (!a->log) {
		double raw = (a->hi - a->lo) / 5, mag = pow(10, floor(log10(raw)));
		step = raw / mag >= 5 ? 5 * mag : raw / mag >= 2 ? 2 * mag : mag;
	} else {
		/* a label every decade while they fit, else every other (or third) */
		double per = fabs(a->p1 - a->p0) / log10(a->hi / a->lo);
		every = (int)ceil((vertical ? 16 : 46) / per);
	}
	for (v = a->lo; v <= a->hi * 1.0001; v = a->log ? v * 10 : v + step, k++) {
		double p = ax_pos(a, v);
		if (a->log && v < a->hi)
			for (int m = 2; m < 10; m++) {
				double q = ax_pos(a, v * m);
				if (vertical)
					fprintf(
					    f,
					    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
					    "stroke=\"%s\" stroke-width=\"0.5\"/>\n",
					    g0, q, g1, q, C_GRID);
				else
					fprintf(
					    f,
					    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
					    "stroke=\"%s\" stroke-width=\"0.5\"/>\n",
					    q, g0, q, g1, C_GRID);
			}
		a->fmt(b, sizeof b, v, 1);
		if (k % every)
			b[0] = '\0';
		if (vertical) {
			fprintf(f,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				"stroke=\"#c8c8c8\"/>\n",
				g0, p, g1, p);
			if (b[0])
				text(f, at - 5, p + 4,
				     "text-anchor=\"end\" font-size=\"10\" fill=\"" C_AXIS "\"",
				     "%s", b);
		} else {
			fprintf(f,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				"stroke=\"#c8c8c8\"/>\n",
				p, g0, p, g1);
			if (b[0])
				text(f, p, at + 14,
				     "text-anchor=\"middle\" font-size=\"10\" fill=\"" C_AXIS "\"",
				     "%s", b);
		}
	}
}

static void panel_title(FILE *f, double x, double y, const char *head, const char *sub)
{
	text(f, x, y + 14, "font-size=\"13\" font-weight=\"bold\" fill=\"" C_TEXT "\"", "%s", head);
	if (sub)
		text(f, x, y + 29, "font-size=\"10\" fill=\"" C_AXIS "\"", "%s", sub);
}

static void no_data(FILE *f, double x, double y, double w, double h)
{
	text(f, x + w / 2, y + h / 2, "text-anchor=\"middle\" font-size=\"12\" fill=\"#888888\"",
	     "not measured in this run");
}

/* Characters (not bytes) in s: for a text's width, about 0.56 em each in sans-serif. */
static size_t nchars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* A limit: a dashed line from (x1, y1) to (x2, y2), its label at (tx, ty) on a white
 * ground, so that no grid line runs through it. A label away from its line (swatch)
 * starts with a piece of the line's dashes. */
static void limit_line(FILE *f, const char *id, double x1, double y1, double x2, double y2,
		       double tx, double ty, const char *anchor, int swatch, const char *label,
		       const char *value)
{
	double tw = 5.6 * (double)(nchars("limit:  ") + nchars(label) + nchars(value));
	double left = !strcmp(anchor, "end") ? tx - tw : tx;
	fprintf(f, "<g");
	put_id(f, "limit", id);
	fprintf(f,
		"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
		"stroke-width=\"1.5\" stroke-dasharray=\"6,3\">",
		x1, y1, x2, y2, C_LIMIT);
	title(f, "limit: %s, %s", label, value);
	fprintf(f, "</line>\n");
	fprintf(f,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"#ffffff\" "
		"fill-opacity=\"0.85\"/>\n",
		left - 2 - (swatch ? 22 : 0), ty - 9.5, tw + 4 + (swatch ? 22 : 0));
	if (swatch)
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			"stroke-width=\"1.5\" stroke-dasharray=\"6,3\"/>\n",
			left - 20, ty - 3.5, left - 4, ty - 3.5, C_LIMIT);
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"10\" fill=\"%s\">",
		tx, ty, anchor, C_LIMIT);
	put_text(f, "limit: ");
	put_text(f, label);
	put_text(f, " ");
	put_text(f, value);
	fputs("</text></g>\n", f);
}

/* A bar's value at (x, y), rotated to run up the page from there when up, on a white
 * halo (the text drawn twice, first as a wide white stroke: SVG 1.1 has no
 * paint-order) so that a limit's line or a grid line never hides a digit. */
static void value_text(FILE *f, double x, double y, int up, const char *s)
{
	char at[128];
	if (up) /* rotated about (x, y); the baseline 3.5 px right of x centres the glyphs */
		snprintf(at, sizeof at, "x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-90 %.1f %.1f)\"",
			 x, y + 3.5, x, y);
	else
		snprintf(at, sizeof at, "x=\"%.1f\" y=\"%.1f\"", x, y);
	fprintf(f,
		"<text %s font-size=\"10\" fill=\"#ffffff\" stroke=\"#ffffff\" "
		"stroke-width=\"3\" stroke-linejoin=\"round\">",
		at);
	put_text(f, s);
	fprintf(f, "</text>\n<text %s font-size=\"10\" fill=\"%s\">", at, C_TEXT);
	put_text(f, s);
	fputs("</text>\n", f);
}

/* ---- the channel section ---- */

/* Round trips: one horizontal bar per case, the limits as vertical lines. */
static void panel_rtt(struct chart *c, double x, double y, double w, double h)
{
	FILE *f = c->f;
	int rows[NCASES], lims[NCASES], nrows = 0, nlims = 0;
	double mn = INFINITY, mx = 0, x0 = x + 180, x1 = x + w - 62, y0 = y + 62, y1 = y + h - 26,
	       row;
	struct axis ax = {.p0 = x0, .p1 = x1, .fmt = fmt_time};
	char b[64], s[32], lb[200];

	panel_title(f, x, y, "Round trip, one message each way",
		    "typical time per round trip; log scale; shorter is faster");
	for (size_t i = 0; i < NCASES; i++) {
		double v = fig(c, i);
		if (cases[i].kind != K_RTT || !isfinite(v))
			continue;
		if (is_limit(i))
			lims[nlims++] = (int)i;
		else
			rows[nrows++] = (int)i;
		mn = fmin(mn, v);
		mx = fmax(mx, v);
	}
	if (!nrows && !nlims) {
		no_data(f, x, y, w, h);
		return;
	}
	ax_fit(&ax, mn, mx);
	ax_draw(f, &ax, 0, y1, y0, y1);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0,
		y0, x0, y1, C_AXIS);
	/* The limits behind the bars, their labels above them, stacked when two would run
	 * into each other. */
	for (int k = 0; k < nlims; k++) {
		size_t i = (size_t)lims[k];
		double v = fig(c, i), xl = ax_pos(&ax, v), ty = y0 - 6 - 13 * (k % 2);
		int right = xl > (x0 + x1) / 2;
		limit_line(f, cases[i].id, xl, ty + 3, xl, y1, right ? xl - 3 : xl + 3, ty,
			   right ? "end" : "start", 0, plain_label(lb, sizeof lb, cases[i].label),
			   fmt_time(b, sizeof b, v, 0));
	}
	row = nrows ? (y1 - y0) / nrows : 0;
	for (int k = 0; k < nrows; k++) {
		size_t i = (size_t)rows[k];
		double v = fig(c, i), cy = y0 + row * (k + 0.5), bh = fmin(18, row * 0.7),
		       xe = ax_pos(&ax, v);
		const char *col = series_color(c, cases[i].id, cases[i].label);
		fmt_time(b, sizeof b, v, 0);
		if (cases[i].size != RTT_BYTES)
			snprintf(lb, sizeof lb, "%s, %s", cases[i].label,
				 fmt_size(s, sizeof s, cases[i].size));
		else
			snprintf(lb, sizeof lb, "%s", cases[i].label);
		text(f, x0 - 6, cy + 4,
		     "text-anchor=\"end\" font-size=\""
		     "11"
		     "\" fill=\"" C_TEXT "\"",
		     "%s", lb);
		fprintf(f, "<rect");
		put_id(f, "case", cases[i].id);
		fprintf(f, " x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">", x0,
			cy - bh / 2, fmax(xe - x0, 1), bh, col);
		title(f, "%s, %s messages: %s typical round trip", lb,
		      fmt_size(s, sizeof s, cases[i].size), b);
		fputs("</rect>\n", f);
		value_text(f, fmax(xe, x0 + 1) + 4, cy + 4, 0, b);
	}
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Throughput: bars grouped by message size (GB/s, labelled msgs/s), the bandwidth
 * limits as horizontal lines. */
static void panel_tput(struct chart *c, double x, double y, double w, double h)
{
	FILE *f = c->f;
	size_t sizes[NCASES];
	int nsizes = 0, nlims = 0;
	double mn = INFINITY, mx = 0, x0 = x + 66, x1 = x + w - 4, y0 = y + 44, y1 = y + h - 36, gw;
	struct axis ax = {.p0 = y1, .p1 = y0, .fmt = fmt_bps};
	char b[64], b2[64], s[32], lb[200];

	panel_title(f, x, y, "One-way throughput per message size",
		    "bytes/s, log scale; bars labelled messages/s; taller is faster");
	for (size_t i = 0; i < NCASES; i++) {
		double v = fig(c, i);
		int seen = 0;
		if (cases[i].kind == K_RTT || !isfinite(v))
			continue;
		mn = fmin(mn, v);
		mx = fmax(mx, v);
		if (cases[i].kind == K_BW || is_limit(i)) {
			nlims++;
			continue;
		}
		for (int k = 0; k < nsizes; k++)
			seen |= sizes[k] == cases[i].size;
		if (!seen)
			sizes[nsizes++] = cases[i].size;
	}
	if (!nsizes && !nlims) {
		no_data(f, x, y, w, h);
		return;
	}
	qsort(sizes, (size_t)nsizes, sizeof *sizes, cmp_size);
	y0 += 13 * nlims;
	ax.p1 = y0;
	ax_fit(&ax, mn, mx);
	/* Room above the tallest bar for its label (58 px): the top of the axis is raised
	 * past its decade as far as that needs. */
	if (ax.log && ax_pos(&ax, mx) < y0 + 58 && y1 - y0 > 116) {
		double lo = log10(ax.lo);
		ax.hi = pow(10, lo + (log10(mx) - lo) * (y1 - y0) / (y1 - y0 - 58));
	}
	ax_draw(f, &ax, 1, x0, x0, x1);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0,
		y1, x1, y1, C_AXIS);
	/* The limits behind the bars, their labels above the plot, where no bar reaches. */
	for (size_t i = 0, k = 0; i < NCASES; i++) {
		double v = fig(c, i), yl;
		if (cases[i].kind == K_RTT || !(cases[i].kind == K_BW || is_limit(i)) ||
		    !isfinite(v))
			continue;
		yl = ax_pos(&ax, v);
		limit_line(f, cases[i].id, x0, yl, x1, yl, x1, y + 44 + 13 * (double)k++, "end", 1,
			   plain_label(lb, sizeof lb, cases[i].label), fmt_bps(b, sizeof b, v, 0));
	}
	gw = nsizes ? (x1 - x0) / nsizes : 0;
	for (int g = 0; g < nsizes; g++) {
		int nb = 0, k = 0;
		double bw, bx;
		for (size_t i = 0; i < NCASES; i++)
			nb += cases[i].kind == K_TPUT && !is_limit(i) &&
			      cases[i].size == sizes[g] && isfinite(fig(c, i));
		bw = fmin(26, (gw - 14) / nb);
		bx = x0 + gw * g + (gw - bw * nb) / 2;
		if (g)
			fprintf(f,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
				"stroke=\"#c8c8c8\" stroke-dasharray=\"2,3\"/>\n",
				x0 + gw * g, y0, x0 + gw * g, y1 + 30);
		text(f, x0 + gw * (g + 0.5), y1 + 30,
		     "text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\" fill=\"" C_TEXT
		     "\"",
		     "%s messages", fmt_size(s, sizeof s, sizes[g]));
		for (size_t i = 0; i < NCASES; i++) {
			double v = fig(c, i), top, cx;
			const char *col;
			if (cases[i].kind != K_TPUT || is_limit(i) || cases[i].size != sizes[g] ||
			    !isfinite(v))
				continue;
			col = series_color(c, cases[i].id, cases[i].label);
			top = ax_pos(&ax, v);
			cx = bx + bw * (k + 0.5);
			fmt_per_s(b, sizeof b, v / (double)cases[i].size, 0);
			fprintf(f, "<rect");
			put_id(f, "case", cases[i].id);
			fprintf(
			    f, " x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">",
			    bx + bw * k + 1, top, bw - 2, fmax(y1 - top, 1), col);
			title(f, "%s, %s messages: %s messages, %s", cases[i].label,
			      fmt_size(s, sizeof s, sizes[g]), b, fmt_bps(b2, sizeof b2, v, 0));
			fputs("</rect>\n", f);
			value_text(f, cx, top - 4, 1, b);
			k++;
		}
	}
}

/* The series drawn since the last legend, in rows of four, and the limits' line. */
static void legend(struct chart *c, int with_limit)
{
	FILE *f = c->f;
	int n = c->hi_ser - c->lo_ser, col = 4, k;
	double cw = (W - 2 * MARGIN) / col, y = c->y;

	for (k = 0; k < n; k++) {
		const struct series *s = &c->ser[c->lo_ser + k];
		double x = MARGIN + cw * (k % col), yy = y + 16 * (k / col);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/>\n",
			x, yy, s->color);
		text(f, x + 17, yy + 9, "font-size=\"11\" fill=\"" C_TEXT "\"", "%s", s->label);
	}
	if (with_limit) {
		double x = MARGIN + cw * (k % col), yy = y + 16 * (k / col);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			"stroke-width=\"1.5\" stroke-dasharray=\"6,3\"/>\n",
			x, yy + 5, x + 12, yy + 5, C_LIMIT);
		text(f, x + 17, yy + 9, "font-size=\"11\" fill=\"" C_TEXT "\"",
		     "the machine's limit");
		k++;
	}
	c->y += 16 * ((k + col - 1) / col) + 8;
	c->lo_ser = c->hi_ser;
}

/* The channel's targets: each ratio as the table gives it, PASS or MISS; a context
 * line (a kernel mechanism's old threshold, which moves with the CPU) is shown grey,
 * "was" its threshold, and judged nothing. */
static void targets(struct chart *c)
{
	FILE *f = c->f;
	char b[64];

	text(f, MARGIN, c->y + 13, "font-size=\"13\" font-weight=\"bold\" fill=\"" C_TEXT "\"",
	     "Targets: the median of per-round ratios, same-round measurements (grey: context, "
	     "not judged)");
	c->y += 20;
	for (size_t i = 0; i < NACCEPTS; i++) {
		const struct accept *a = &accepts[i];
		int p = find_case(a->num), q = find_case(a->den);
		double v = p >= 0 && q >= 0 ? shmkit__bench_ratio_of(c->res[p].val, c->res[q].val,
								     c->cfg->rounds)
					    : NAN;
		const char *vd = a->context				   ? "info"
				 : !isfinite(v)				   ? "SKIP"
				 : (a->le ? v <= a->bound : v >= a->bound) ? "PASS"
									   : "MISS";
		const char *ink = a->context ? "#888888" : C_TEXT;
		double x = MARGIN + (W - 2 * MARGIN) / 2 * (double)(i % 2),
		       y = c->y + 15 * (double)(i / 2) + 11;
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" font-weight=\"bold\" "
			"fill=\"%s\">%s</text>\n",
			x, y,
			vd[0] == 'P'   ? C_PASS
			: vd[0] == 'M' ? C_MISS
				       : "#888888",
			vd);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">", x + 40, y,
			ink);
		put_text(f, a->what);
		fputs("</text>\n", f);
		if (isfinite(v))
			snprintf(b, sizeof b, "%.3g (%s%s %g)", v, a->context ? "was " : "",
				 a->le ? "≤" : "≥", a->bound);
		else
			snprintf(b, sizeof b, "- (%s%s %g)", a->context ? "was " : "",
				 a->le ? "≤" : "≥", a->bound);
		fprintf(f,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
			"font-weight=\"bold\" fill=\"%s\">",
			x + (W - 2 * MARGIN) / 2 - 14, y, ink);
		put_text(f, b);
		fputs("</text>\n", f);
	}
	c->y += 15 * (double)((NACCEPTS + 1) / 2) + 10;
}

/* ---- the topic section ---- */

/* The topic's speed against the channel's, measured by the topic section itself: the
 * round trip (channel's time ÷ topic's) and one-way throughput per size (topic's bytes/s
 * ÷ channel's), each the median of per-round ratios. 1 is as fast as the channel. */
static void panel_topic(struct chart *c, const struct tbench *tb, double x, double y, double w,
			double h)
{
	FILE *f = c->f;
	struct {
		const char *id;
		char label[48];
		double v;
	} bars[16];
	int nb = 0;
	double mx = 1, x0 = x + 40, x1 = x + w - 4, y0 = y + 44, y1 = y + h - 36, bw;
	struct axis ax = {.p0 = y1, .p1 = y0, .fmt = fmt_times};
	const char *id, *label, *id2, *label2;
	const double *val, *val2;
	char want[64], s[32];
	int rounds;

	panel_title(f, x, y, "Topic vs channel, 1 publisher → 1 subscriber",
		    "the topic's speed ÷ the channel's, median of per-round ratios; 1 = as fast");
	for (size_t i = 0; (rounds = shmkit__bench_topic_case(tb, i, &id, &label, &val)) >= 0;
	     i++) {
		const char *kind = id + strlen("topic.");
		size_t sz;
		int rtt;
		if (strncmp(id, "topic.", 6) || nb == 16)
			continue;
		rtt = !strncmp(kind, "rtt.topic", 9) && !kind[9];
		if (!rtt && (strncmp(kind, "tput.topic.", 11) || !isdigit((unsigned char)kind[11])))
			continue;
		if (!rounds)
			continue;
		/* its channel: the same id with chan for topic */
		snprintf(want, sizeof want, "topic.%s.chan%s", rtt ? "rtt" : "tput",
			 rtt ? "" : kind + 10);
		for (size_t j = 0; shmkit__bench_topic_case(tb, j, &id2, &label2, &val2) >= 0;
		     j++) {
			if (strcmp(id2, want) ||
			    !shmkit__bench_topic_case(tb, j, &id2, &label2, &val2))
				continue;
			bars[nb].v = rtt ? shmkit__bench_ratio_of(val2, val, rounds)
					 : shmkit__bench_ratio_of(val, val2, rounds);
			sz = rtt ? 64 : (size_t)strtoull(kind + 11, NULL, 10);
			bars[nb].id = id;
			snprintf(bars[nb].label, sizeof bars[nb].label, "%s %s",
				 rtt ? "round trip" : "throughput", fmt_size(s, sizeof s, sz));
			if (isfinite(bars[nb].v) && bars[nb].v > 0)
				mx = fmax(mx, bars[nb++].v);
		}
	}
	if (!nb) {
		no_data(f, x, y, w, h);
		return;
	}
	ax_fit(&ax, 0, mx * 1.12);
	ax_draw(f, &ax, 1, x0, x0, x1);
	bw = (x1 - x0) / nb;
	for (int k = 0; k < nb; k++) {
		double top = ax_pos(&ax, bars[k].v), bx = x0 + bw * k;
		fprintf(f, "<rect");
		put_id(f, "ratio", bars[k].id);
		fprintf(f, " x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">",
			bx + bw * 0.2, top, bw * 0.6, fmax(y1 - top, 1),
			bars[k].v >= 1 ? palette[F_SHMKIT][0] : palette[F_SHMKIT][1]);
		title(f, "topic ÷ channel, %s: %.3g", bars[k].label, bars[k].v);
		fputs("</rect>\n", f);
		text(f, bx + bw / 2, top - 4,
		     "text-anchor=\"middle\" font-size=\"10\" fill=\"" C_TEXT "\"", "%.2f×",
		     bars[k].v);
		text(f, bx + bw / 2, y1 + 14,
		     "text-anchor=\"middle\" font-size=\"10\" fill=\"" C_TEXT "\"", "%s",
		     bars[k].label);
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0,
		y1, x1, y1, C_AXIS);
	fprintf(f,
		"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
		"stroke-width=\"1.5\" stroke-dasharray=\"6,3\"/>\n",
		x0, ax_pos(&ax, 1), x1, ax_pos(&ax, 1), C_AXIS);
}

/* Fan-out: aggregate deliveries per second against the number of subscribers, one
 * line per mechanism. Ids are topic.fanout.MECH.N. */
static void panel_fanout(struct chart *c, const struct tbench *tb, double x, double y, double w,
			 double h)
{
	FILE *f = c->f;
	int subs[16], nsubs = 0, rounds;
	const char *id, *label, *mechs[16];
	const double *val;
	size_t nmech = 0;
	double mn = INFINITY, mx = 0, x0 = x + 66, x1 = x + w - 10, y0 = y + 44, y1 = y + h - 36,
	       gw;
	struct axis ax = {.p0 = y1, .p1 = y0, .fmt = fmt_per_s};
	char b[64];

	panel_title(f, x, y, "Fan-out of 64 B messages",
		    "deliveries/s summed over the subscribers; log scale; higher is faster");
	/* The subscriber counts (x) and the mechanisms (lines) the run has figures for. */
	for (size_t i = 0; (rounds = shmkit__bench_topic_case(tb, i, &id, &label, &val)) >= 0;
	     i++) {
		const char *m = id + strlen("topic.fanout."), *dot;
		double v;
		int n, seen = 0;
		size_t k;
		if (strncmp(id, "topic.fanout.", 13) || !rounds || !(dot = strrchr(m, '.')))
			continue;
		v = shmkit__bench_median(val, rounds);
		if (!isfinite(v) || v <= 0)
			continue;
		mn = fmin(mn, v);
		mx = fmax(mx, v);
		n = atoi(dot + 1);
		for (int k2 = 0; k2 < nsubs; k2++)
			seen |= subs[k2] == n;
		if (!seen && nsubs < 16)
			subs[nsubs++] = n;
		for (k = 0; k < nmech; k++)
			if (!strncmp(mechs[k], m, (size_t)(dot - m)) && mechs[k][dot - m] == '.')
				break;
		if (k == nmech && nmech < 16)
			mechs[nmech++] = m;
	}
	if (!nsubs) {
		no_data(f, x, y, w, h);
		return;
	}
	for (int i = 1; i < nsubs; i++) /* ascending */
		for (int j = i; j > 0 && subs[j - 1] > subs[j]; j--) {
			int t = subs[j];
			subs[j] = subs[j - 1];
			subs[j - 1] = t;
		}
	ax_fit(&ax, mn, mx);
	ax_draw(f, &ax, 1, x0, x0, x1);
	fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x0,
		y1, x1, y1, C_AXIS);
	gw = (x1 - x0) / nsubs;
	for (int k = 0; k < nsubs; k++)
		text(f, x0 + gw * (k + 0.5), y1 + 14,
		     "text-anchor=\"middle\" font-size=\"10\" fill=\"" C_TEXT "\"",
		     "%d subscriber%s", subs[k], subs[k] > 1 ? "s" : "");
	text(f, (x0 + x1) / 2, y1 + 30,
	     "text-anchor=\"middle\" font-size=\"10\" fill=\"" C_AXIS "\"",
	     "%d CPU%s for subscribers: more subscribers than that share them", g_allowed - 1,
	     g_allowed - 1 == 1 ? "" : "s");
	for (size_t m = 0; m < nmech; m++) {
		const char *dot = strrchr(mechs[m], '.');
		size_t mlen = (size_t)(dot - mechs[m]);
		const char *col = NULL;
		char pts[16][32];
		int np = 0;
		for (int k = 0; k < nsubs; k++) {
			char want[96];
			const char *id2, *l2;
			const double *v2;
			int r2;
			snprintf(want, sizeof want, "topic.fanout.%.*s.%d", (int)mlen, mechs[m],
				 subs[k]);
			for (size_t j = 0;
			     (r2 = shmkit__bench_topic_case(tb, j, &id2, &l2, &v2)) >= 0; j++) {
				double v, px, py;
				if (strcmp(id2, want) || !r2)
					continue;
				v = shmkit__bench_median(v2, r2);
				if (!isfinite(v) || v <= 0)
					continue;
				col = series_color(c, id2, l2);
				px = x0 + gw * (k + 0.5);
				py = ax_pos(&ax, v);
				snprintf(pts[np++], sizeof pts[0], "%.1f,%.1f", px, py);
				fprintf(f, "<circle");
				put_id(f, "case", id2);
				fprintf(f, " cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\">", px,
					py, col);
				title(f, "%s, %d subscriber%s: %s deliveries", l2, subs[k],
				      subs[k] > 1 ? "s" : "", fmt_per_s(b, sizeof b, v, 0));
				fputs("</circle>\n", f);
			}
		}
		if (np > 1) {
			fprintf(
			    f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
			    col);
			for (int k = 0; k < np; k++)
				fprintf(f, "%s%s", k ? " " : "", pts[k]);
			fputs("\"/>\n", f);
		}
	}
}

/* ---- the whole ---- */

static int any_ring(const struct chart *c)
{
	for (size_t i = 0; i < NCASES; i++)
		if (strstr(cases[i].id, "ring") && isfinite(fig(c, i)))
			return 1;
	return 0;
}

static int any_channel(const struct chart *c)
{
	for (size_t i = 0; i < NCASES; i++)
		if (isfinite(fig(c, i)))
			return 1;
	return 0;
}

static int any_topic(const struct tbench *tb)
{
	const char *id, *label;
	const double *val;
	int rounds;
	for (size_t i = 0; (rounds = shmkit__bench_topic_case(tb, i, &id, &label, &val)) >= 0; i++)
		if (rounds > 0 && isfinite(shmkit__bench_median(val, rounds)))
			return 1;
	return 0;
}

static void header(struct chart *c, const struct machine *m)
{
	FILE *f = c->f;
	char date[64] = "unknown date";
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm))
		strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
	if (any_channel(c))
		text(f, MARGIN, 28, "font-size=\"18\" font-weight=\"bold\" fill=\"" C_TEXT "\"",
		     "shmkit bench: the channel against %s",
		     any_ring(c) ? "a textbook ring and the kernel's IPC" : "the kernel's IPC");
	else
		text(f, MARGIN, 28, "font-size=\"18\" font-weight=\"bold\" fill=\"" C_TEXT "\"",
		     "shmkit bench: topics against the channel, ZeroMQ and UNIX datagrams");
	text(f, MARGIN, 48, "font-size=\"12\" fill=\"" C_TEXT "\"",
	     "CPU: %s; %ld CPUs online, %d allowed", m->cpu, m->nproc, g_allowed);
	text(f, MARGIN, 64, "font-size=\"11\" fill=\"" C_AXIS "\"",
	     "%s; %s; shmkit %s; %d rounds of %d ms trials, interleaved%s", date, m->kernel,
	     shmkit_version_string(), c->cfg->rounds, c->cfg->trial_ms,
	     c->cfg->quick ? " (--quick: noisy)" : "");
	text(f, MARGIN, 79, "font-size=\"11\" fill=\"" C_AXIS "\"",
	     "load %.2f before, %.2f after (1-minute average)%s", m->load_before, m->load_after,
	     !g_pinned		    ? "; unpinned (one CPU): spinning figures are not meaningful"
	     : m->load_before > 0.5 ? "; other processes were running: expect noisy figures"
				    : "");
	c->y = 94;
}

static void footer(struct chart *c)
{
	FILE *f = c->f;
	int missing = 0;
	for (size_t i = 0; i < NCASES; i++)
		missing += !isfinite(fig(c, i));
	text(
	    f, MARGIN, c->y + 12, "font-size=\"10\" fill=\"" C_AXIS "\"",
	    "Each figure is the median over the rounds; each ratio the median of per-round ratios. "
	    "Only ratios are claims: absolute figures move with the machine and its load.");
	text(f, MARGIN, c->y + 26, "font-size=\"10\" fill=\"" C_AXIS "\"",
	     "Bars on a log scale start at the axis' lowest decade. %s",
	     !any_channel(c) ? "The channel section did not run."
	     : missing	     ? "Cases not measured (skipped, unavailable or failed) are not drawn: "
			       "see the table."
			     : "Every case of the channel section was measured.");
	c->y += 36;
}

int shmkit__bench_write_svg(FILE *out, const struct machine *m, const struct cfg *cfg,
			    const struct result *res, const struct tbench *tb)
{
	struct chart c;
	char *body = NULL;
	size_t len = 0;
	int r = 0;
	const double ph = 380, pw = (W - 2 * MARGIN - 30) / 2;

	memset(&c, 0, sizeof c);
	c.cfg = cfg;
	c.res = res;
	c.f = open_memstream(&body, &len);
	if (!c.f)
		return -errno;

	header(&c, m);
	if (any_channel(&c) || !any_topic(tb)) {
		panel_rtt(&c, MARGIN, c.y, pw, ph);
		panel_tput(&c, MARGIN + pw + 30, c.y, pw, ph);
		c.y += ph + 14;
		c.hi_ser = c.nser;
		legend(&c, 1);
		targets(&c);
	}
	if (any_topic(tb)) {
		const double th = 300;
		fprintf(
		    c.f,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbbbbb\"/>\n",
		    MARGIN, c.y, W - MARGIN, c.y);
		c.y += 10;
		panel_topic(&c, tb, MARGIN, c.y, pw, th);
		panel_fanout(&c, tb, MARGIN + pw + 30, c.y, pw, th);
		c.y += th + 10;
		c.hi_ser = c.nser;
		legend(&c, 0);
	}
	footer(&c);
	if (fclose(c.f)) {
		free(body);
		return -ENOMEM;
	}

	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
		"height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
		"font-size=\"%d\">\n",
		W, c.y, W, c.y, FONT);
	fputs("<title>", out);
	put_text(out, "shmkit bench: ");
	put_text(out, m->cpu);
	fputs("</title>\n<desc>", out);
	put_text(out, "Written by shmkit bench --svg: round trips and one-way throughput of the "
		      "shmkit channel against the kernel's IPC, with the machine's limits as "
		      "lines.");
	fputs("</desc>\n", out);
	fprintf(out, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", W, c.y);
	fwrite(body, 1, len, out);
	fputs("</svg>\n", out);
	free(body);
	if (fflush(out) || ferror(out))
		r = -EIO;
	return r;
}
