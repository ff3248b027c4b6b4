#!/bin/sh
# svg_test.sh TOOL: `shmkit bench --quick --svg OUT` writes a chart that
#  - is well-formed XML, an <svg> of SVG 1.1 elements only, self-contained (no script,
#    image, style sheet, link or url(), generic font families only);
#  - draws every case the run measured and nothing else: the --json output of the same
#    run names them (a bar or point "case-ID" each, a line "limit-ID" for a limit),
#    with the machine's CPU in its title and every target's ratio;
#  - escapes what it is given: a CPU model with markup, quotes, control bytes and bytes
#    that are not UTF-8 (a fake /proc/cpuinfo bind-mounted in a private mount namespace;
#    that part is skipped, saying so, where unshare is not permitted);
#  - draws the topic section (topic vs channel, the fan-out) when it ran;
#  - is an error (exit 1) when it cannot be written;
#  - renders: rsvg-convert (Debian's librsvg2-bin, installed when root and missing)
#    makes a non-empty PNG of it without a word on stderr.
# No figure is asserted. Exit 0 pass, 1 fail, 77 skip (python3, or rsvg-convert and no
# way to install it).
set -u
tool=${1:?usage: svg_test.sh TOOL}

if ! command -v python3 >/dev/null 2>&1; then
	echo "svg_test: skipped: python3 not found (it checks the XML)"
	exit 77
fi
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM
fail=0
bad() {
	echo "svg_test: FAIL: $*" >&2
	fail=1
}

# check.py SVG JSON [EXPECT_CPU]: the XML checks, in one place for every run.
cat >"$dir/check.py" <<'EOF'
import json, math, re, sys
import xml.dom.minidom

svg_path, json_path = sys.argv[1], sys.argv[2]
expect_cpu = sys.argv[3] if len(sys.argv) > 3 else None
errors = []
def bad(msg):
    errors.append(msg)

try:
    doc = xml.dom.minidom.parse(svg_path)
except Exception as e:
    print("svg_test: FAIL: %s is not well-formed XML: %s" % (svg_path, e))
    sys.exit(1)
root = doc.documentElement
if root.tagName != "svg" or root.getAttribute("xmlns") != "http://www.w3.org/2000/svg":
    bad("the root is not an <svg> in the SVG namespace")
if root.getAttribute("version") != "1.1":
    bad("version is not 1.1")
for a in ("width", "height"):
    try:
        if float(root.getAttribute(a)) <= 0:
            bad("%s is not positive" % a)
    except ValueError:
        bad("%s is not a number" % a)

allowed = {"svg", "title", "desc", "g", "rect", "line", "polyline", "circle", "text"}
generic = {"sans-serif", "serif", "monospace"}
ids, texts = {}, []
for el in root.getElementsByTagName("*"):
    if el.tagName not in allowed:
        bad("element <%s> (only plain SVG 1.1 shapes and text)" % el.tagName)
    for name, value in el.attributes.items():
        low = value.lower()
        if "href" in name or "url(" in low or "@import" in low or \
           (name != "xmlns" and ("http:" in low or "https:" in low or "data:" in low)):
            bad("external reference: %s=%r" % (name, value))
        if name == "font-family" and value not in generic:
            bad("font-family %r is not generic" % value)
        if name == "style":
            bad("style attribute %r" % value)
    if el.getAttribute("id"):
        if el.getAttribute("id") in ids:
            bad("id %s twice" % el.getAttribute("id"))
        ids[el.getAttribute("id")] = el
    if el.tagName in ("text", "title", "desc"):
        texts.append("".join(n.data for n in el.childNodes if n.nodeType == n.TEXT_NODE))
alltext = "\n".join(texts)

with open(json_path) as f:
    data = json.load(f)
cpu = data.get("machine", {}).get("cpu")
if expect_cpu is not None:
    cpu = expect_cpu
if cpu and cpu not in alltext:
    bad("the CPU %r is not in the chart's text" % cpu)

def measured(c, keys):
    return c.get("status") == "ok" and any(
        isinstance(c.get(k), (int, float)) and math.isfinite(c[k]) and c[k] > 0 for k in keys)

want = set()
for c in data.get("cases", []):
    if measured(c, ("typical_ns", "gb_per_s")):
        want.add(("limit-" if c.get("limit") == c["id"] else "case-") + c["id"])
for a in data.get("acceptance", []):
    if a["what"] not in alltext:
        bad("target %r is not in the chart" % a["what"])
topic = data.get("topic") or {}
fan_ids = set()
for c in topic.get("cases", []):
    if c["id"].startswith("topic.fanout.") and measured(c, ("deliveries_per_s",)):
        fan_ids.add("case-" + c["id"])
        want.add("case-" + c["id"])
drawn = {i for i in ids if i.startswith("case-") or i.startswith("limit-")}
for i in sorted(want - drawn):
    bad("measured case %s is not drawn" % i)
for i in sorted(drawn - want):
    bad("%s is drawn but was not measured" % i)
if data.get("cases") and want and "the machine's limit" not in alltext:
    bad("no legend")
if topic.get("cases"):
    chan = {c["id"]: c for c in topic["cases"]}
    for c in topic["cases"]:
        m = re.match(r"topic\.(rtt|tput)\.topic(\.\d+)?$", c["id"])
        if not m:
            continue
        p = chan.get("topic.%s.chan%s" % (m.group(1), m.group(2) or ""))
        key = "typical_ns" if m.group(1) == "rtt" else "gb_per_s"
        if measured(c, (key,)) and p and measured(p, (key,)) and "ratio-" + c["id"] not in ids:
            bad("topic vs channel: %s is not drawn" % c["id"])
    if fan_ids and "Fan-out of 64 B messages" not in alltext:
        bad("no fan-out panel")
if not want:
    bad("nothing was drawn: the run measured no case")
for e in errors:
    print("svg_test: FAIL: %s: %s" % (svg_path, e))
sys.exit(1 if errors else 0)
EOF

# 1. The channel section, as a test would run it, and its JSON.
if ! "$tool" bench --quick --no-topic --json --svg "$dir/bench.svg" >"$dir/bench.json" \
	2>"$dir/bench.err"; then
	cat "$dir/bench.err" >&2
	bad "shmkit bench --quick --no-topic --json --svg failed"
fi
[ -s "$dir/bench.svg" ] || bad "no SVG written"
python3 "$dir/check.py" "$dir/bench.svg" "$dir/bench.json" || fail=1

# 2. The topic section alone: both of its panels, one round (the 256-subscriber trials
#    make a round ~10 s here). --no-install: no apt-get for ZeroMQ.
if ! "$tool" bench --quick --rounds 1 --topic --no-install --json --svg "$dir/topic.svg" \
	>"$dir/topic.json" 2>"$dir/topic.err"; then
	cat "$dir/topic.err" >&2
	bad "shmkit bench --quick --topic --svg failed"
fi
python3 "$dir/check.py" "$dir/topic.svg" "$dir/topic.json" || fail=1
grep -q 'id="ratio-topic.rtt.topic"' "$dir/topic.svg" || bad "no topic vs channel panel"

# 3. A hostile CPU model: markup, quotes, an XML end of section, ESC and a C0 byte,
#    bytes that are not UTF-8. Only one case runs (the name is what is tested).
printf 'processor\t: 0\nmodel name\t: Evil <b>&amp;</b> "CPU" '"'"'x'"'"' ]]> \001\033[31m \377\376 end\ncpu family\t: 6\nmodel\t\t: 1\n\n' \
	>"$dir/cpuinfo"
if command -v unshare >/dev/null 2>&1 &&
	unshare -m sh -c "mount --bind '$dir/cpuinfo' /proc/cpuinfo" 2>/dev/null; then
	if ! unshare -m sh -c 'mount --bind "$1" /proc/cpuinfo && exec "$2" bench --quick --no-topic --only rtt.cacheline --json --svg "$3"' \
		sh "$dir/cpuinfo" "$tool" "$dir/evil.svg" >"$dir/evil.json" 2>"$dir/evil.err"; then
		cat "$dir/evil.err" >&2
		bad "shmkit bench with a hostile /proc/cpuinfo failed"
	fi
	# What the chart must show: the markup as text, control bytes and bytes that are
	# not UTF-8 as visible \xNN (the tool's text escape), nothing raw.
	python3 "$dir/check.py" "$dir/evil.svg" "$dir/evil.json" \
		'Evil <b>&amp;</b> "CPU" '"'"'x'"'"' ]]> \x01\x1b[31m \xff\xfe end (family 6, model 1)' ||
		fail=1
	if LC_ALL=C grep -q "$(printf '[\001\033\377\376]')" "$dir/evil.svg"; then
		bad "a control byte or a byte that is not UTF-8 reached the SVG raw"
	fi
else
	echo "svg_test: hostile CPU name: skipped (no private mount namespace here)"
fi

# 4. A chart that cannot be written is an error: a directory that does not exist before
#    the run (no case runs), a full device after it.
"$tool" bench --quick --no-topic --only rtt.cacheline --svg "$dir/none/x.svg" >/dev/null 2>&1
[ $? = 1 ] || bad "--svg into a missing directory did not exit 1"
if [ -w /dev/full ]; then
	"$tool" bench --quick --no-topic --only rtt.cacheline --svg /dev/full >/dev/null 2>"$dir/full.err"
	[ $? = 1 ] && grep -q "svg /dev/full" "$dir/full.err" ||
		bad "--svg /dev/full (a write error) did not exit 1 with a message"
fi

# 5. It renders.
if ! command -v rsvg-convert >/dev/null 2>&1 && [ "$(id -u)" = 0 ] &&
	command -v apt-get >/dev/null 2>&1; then
	echo "svg_test: installing librsvg2-bin (rsvg-convert)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q librsvg2-bin >"$dir/apt.log" 2>&1 ||
		{ apt-get update -q >>"$dir/apt.log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q librsvg2-bin \
				>>"$dir/apt.log" 2>&1; }
fi
if ! command -v rsvg-convert >/dev/null 2>&1; then
	[ "$fail" = 0 ] || exit 1
	echo "svg_test: skipped: rsvg-convert not found and librsvg2-bin could not be installed (the XML checks passed)"
	exit 77
fi
for s in bench topic evil; do
	[ -f "$dir/$s.svg" ] || continue
	if ! rsvg-convert -o "$dir/$s.png" "$dir/$s.svg" 2>"$dir/$s.rsvg"; then
		bad "rsvg-convert failed on $s.svg: $(cat "$dir/$s.rsvg")"
	elif [ -s "$dir/$s.rsvg" ]; then
		bad "rsvg-convert complained about $s.svg: $(cat "$dir/$s.rsvg")"
	elif [ ! -s "$dir/$s.png" ] || [ "$(head -c 8 "$dir/$s.png" | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then
		bad "rsvg-convert made no PNG of $s.svg"
	fi
done
[ "$fail" = 0 ] && echo "svg_test: ok"
exit "$fail"
