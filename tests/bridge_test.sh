#!/bin/sh
# bridge_test.sh SHMKIT: `shmkit bridge` between two simulated hosts on loopback.
# Two nats-server processes clustered on free loopback ports, one bridge per "host"
# (host ids haPID and hbPID; host A's topics are /a-*, host B's /b-*, so the two sides never
# share memory); then a third host whose server is down when its bridge starts.
# Skips (77) when nats-server is not installed or the tool was built without libnats.
# Every server and bridge is killed at the end, whatever happened.
set -u
S=${1:?usage: bridge_test.sh SHMKIT}
. "$(dirname "$0")/tool_lib.sh"

if ! command -v nats-server >/dev/null 2>&1; then
	echo "SKIP: nats-server is not installed (apt-get install nats-server)"
	exit 77
fi
if ! "$S" bridge --help >/dev/null 2>&1; then
	echo "SKIP: shmkit was built without libnats: no bridge (apt-get install libnats-dev)"
	exit 77
fi

scale=${SHMKIT_TEST_SCALE:-1}
N=$((2000 * scale))
T=$(mktemp -d)
P=$$
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	for n in /a-t$P /b-t$P /a-u$P /b-u$P /c-t$P /d-t$P /shmkit-bridge-ha$P /shmkit-bridge-hb$P \
		/shmkit-bridge-hc$P /shmkit-bridge-hd$P /j-c$P /shmkit-bridge-hj$P; do "$S" rm "$n" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/bridge_lib.sh"
free_port PA; free_port PB; free_port CA; free_port CB; free_port PC

# --- two clustered servers -------------------------------------------------------
nats-server -a 127.0.0.1 -p "$PA" --cluster_name shmkit-t --cluster "nats://127.0.0.1:$CA" \
	--routes "nats://127.0.0.1:$CB" >"$T/na.log" 2>&1 &
pids="$pids $!"
nats-server -a 127.0.0.1 -p "$PB" --cluster_name shmkit-t --cluster "nats://127.0.0.1:$CB" \
	--routes "nats://127.0.0.1:$CA" >"$T/nb.log" 2>&1 &
pids="$pids $!"
routed() { grep -q 'Route connection created' "$T/na.log" && grep -q 'Route connection created' "$T/nb.log"; }
if ! wait_for 15 routed; then
	cat "$T/na.log" "$T/nb.log" >&2
	fail "the two nats-servers did not form a cluster"
	echo "$passes passed, $fails failed"
	exit 1
fi
ok

# Host A from a config file (also what --config reads), host B from options. Each
# bridges /x-u both ways on subject shmkit.test.u$P, for the loop test.
cat >"$T/a.conf" <<EOF
# host A
server nats://127.0.0.1:$PA
host-id ha$P
topic-out /a-t$P=shmkit.test.t$P

topic-out /a-u$P=shmkit.test.u$P
topic-in shmkit.test.u$P=/a-u$P
EOF
"$S" bridge --config "$T/a.conf" 2>"$T/ba.err" &
ba=$!
pids="$pids $ba"
"$S" bridge --server "nats://127.0.0.1:$PB" --server "nats://127.0.0.1:$PA" --host-id hb$P \
	--topic-in "shmkit.test.t$P=/b-t$P" --topic-out "/b-u$P=shmkit.test.u$P" \
	--topic-in "shmkit.test.u$P=/b-u$P" 2>"$T/bb.err" &
pids="$pids $!"
check "bridge A connects" wait_for 15 connected ha$P
check "bridge B connects" wait_for 15 connected hb$P

# --- A → B: in order, intact, nothing lost ----------------------------------------
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) {
	s = sprintf("m %06d ", i); for (j = 0; j < 90; j++) s = s sprintf("%c", 33 + (i * 31 + j * 7) % 90)
	print s } }' >"$T/sent"
check "A → B interest propagates" warm ha$P "/a-t$P" hb$P "/b-t$P"
"$S" sub --timeout 3 "/b-t$P" >"$T/got.raw" 2>"$T/sub.err" &
sub=$!
pids="$pids $sub"
sleep 0.3
"$S" pub "/a-t$P" <"$T/sent"
wait "$sub"
grep -v '^warm ' "$T/got.raw" >"$T/got"
check "A → B: $N messages in order and intact ($(cksum <"$T/sent" | cut -d' ' -f1))" \
	cmp -s "$T/sent" "$T/got"
check "A → B: the subscriber lost nothing" sh -c "! grep -q lost '$T/sub.err'"
sleep 0.4 # one status refresh
check "A → B: bridge A dropped nothing" test "$(counter ha$P out /a-t$P dropped)" = 0
check "A → B: bridge B dropped nothing" test "$(counter hb$P in /b-t$P dropped)" = 0
fa=$(counter ha$P out /a-t$P forwarded)
check "A → B: bridge A forwarded at least $N (got $fa)" test "${fa:-0}" -ge "$N"
"$S" top --once --json --interval 0.1 >"$T/top.json" 2>/dev/null
check "top shows bridge A running and connected, with what it forwarded" python3 - "$T/top.json" "/a-t$P" "$N" "ha$P" <<'PY'
import json, sys
rows = [s for s in json.load(open(sys.argv[1]))["segments"] if s.get("bridge") and s["bridge"]["host"] == sys.argv[4]]
assert len(rows) == 1, rows
b = rows[0]["bridge"]
assert b["running"] and b["connected"], b
m = [x for x in b["mappings"] if x["direction"] == "out" and x["local"] == sys.argv[2]]
assert len(m) == 1 and m[0]["forwarded"] >= int(sys.argv[3]) and m[0]["dropped"] == 0, b
PY

# --- a channel mapping on a server without JetStream: the reason, not silence ------
"$S" bridge --server "nats://127.0.0.1:$PA" --host-id hj$P --chan-out "/j-c$P=NOJS$P" \
	2>"$T/bj.err" &
bj=$!
pids="$pids $bj"
check "no JetStream: the bridge connects" wait_for 15 connected hj$P
echo "held" | "$S" send "/j-c$P"
nojs() { "$S" bridge --status --host-id hj$P | grep -q "^error chan-out /j-c$P: .*no JetStream answers (a server run without -js?)"; }
check "no JetStream: --status says why the message stays" wait_for 15 nojs
check "no JetStream: so does stderr" grep -q "shmkit bridge: chan-out /j-c$P: .*no JetStream answers" "$T/bj.err"
kill "$bj"
wait "$bj"

# --- both directions on both hosts: every message exactly once, no loop -----------
M=$((N / 4))
check "A → B on u propagates" warm ha$P "/a-u$P" hb$P "/b-u$P"
check "B → A on u propagates" warm hb$P "/b-u$P" ha$P "/a-u$P"
"$S" sub --timeout 3 "/a-u$P" >"$T/ua.raw" 2>"$T/ua.err" &
sa=$!
"$S" sub --timeout 3 "/b-u$P" >"$T/ub.raw" 2>"$T/ub.err" &
sb=$!
pids="$pids $sa $sb"
sleep 0.3
seq 1 "$M" | sed 's/^/from-a /' >"$T/ua.sent"
seq 1 "$M" | sed 's/^/from-b /' >"$T/ub.sent"
"$S" pub "/a-u$P" <"$T/ua.sent" &
pa=$!
"$S" pub "/b-u$P" <"$T/ub.sent"
wait "$pa"
wait "$sa"
wait "$sb"
for h in a b; do
	for o in a b; do
		grep "^from-$o " "$T/u$h.raw" >"$T/u$h.from$o"
		check "both ways: /$h-u gets host $o's $M messages exactly once, in order" \
			cmp -s "$T/u$o.sent" "$T/u$h.from$o"
	done
	check "both ways: /$h-u's subscriber lost nothing" sh -c "! grep -q lost '$T/u$h.err'"
	check "both ways: /$h-u got nothing else" \
		test "$(grep -cv '^warm ' "$T/u$h.raw")" = $((2 * M))
done
sleep 0.4
sk=$(counter hb$P out /b-u$P skipped)
check "both ways: bridge B did not send A's messages back out (skipped $sk)" \
	test "${sk:-0}" -ge "$M"
sk=$(counter ha$P in /a-u$P skipped)
check "both ways: bridge A dropped its own messages coming back (skipped $sk)" \
	test "${sk:-0}" -ge "$M"

# --- a server down at bridge start ------------------------------------------------
cat >"$T/nc.conf" <<EOF
listen: 127.0.0.1:$PC
max_payload: 4096
EOF
"$S" bridge --server "nats://127.0.0.1:$PC" --host-id hc$P --topic-out "/c-t$P=shmkit.test.c$P" \
	2>"$T/bc.err" &
bc=$!
pids="$pids $bc"
"$S" bridge --server "nats://127.0.0.1:$PC" --host-id hd$P --topic-in "shmkit.test.c$P=/d-t$P" \
	2>"$T/bd.err" &
bd=$!
pids="$pids $bd"
check "server down: the bridge runs and says it is not connected" wait_for 10 sh -c \
	"'$S' bridge --status --host-id hc$P | awk 'NR == 1 && \$4 == 0 { ok = 1 } END { exit !ok }'"
# Far more than the ring holds: a publisher that waited for the bridge would hang here.
big=$((20000 * scale))
seq 1 "$big" | awk '{ printf "down %06d %0200d\n", $1, 0 }' >"$T/down"
start=$(date +%s)
check "server down: a lossy publisher never blocks ($big messages)" timeout 20 "$S" pub "/c-t$P" <"$T/down"
check "server down: the bridge is still running" kill -0 "$bc"
nats-server -c "$T/nc.conf" >"$T/nc.log" 2>&1 &
nc=$!
pids="$pids $nc"
check "server up: bridge C connects" wait_for 15 connected hc$P
check "server up: bridge D connects" wait_for 15 connected hd$P
check "server up: C → D interest propagates" warm hc$P "/c-t$P" hd$P "/d-t$P"
"$S" sub --timeout 3 "/d-t$P" >"$T/d.raw" 2>"$T/d.err" &
sd=$!
pids="$pids $sd"
sleep 0.3
awk 'BEGIN { printf "x"; for (i = 0; i < 5000; i++) printf "o"; printf "\n" }' >"$T/over"
{ echo "before"; cat "$T/over"; echo "after"; } | "$S" pub "/c-t$P"
wait "$sd"
grep -v '^warm \|^down ' "$T/d.raw" >"$T/d.got"
check "server up: C forwards to D; the oversized message is not sent, nor truncated" \
	test "$(cat "$T/d.got" | tr '\n' ' ')" = "before after "
sleep 0.4
check "oversized: counted" test "$(counter hc$P out /c-t$P oversized)" = 1
check "oversized: reported on stderr" grep -q "max_payload (4096 bytes" "$T/bc.err"

# --- the server restarts: both bridges reconnect by themselves ---------------------
kill "$nc"
wait "$nc"
check "restart: bridge C sees the server gone" wait_for 10 sh -c \
	"'$S' bridge --status --host-id hc$P | awk 'NR == 1 && \$4 == 0 { ok = 1 } END { exit !ok }'"
check "restart: a lossy publisher never blocks meanwhile" timeout 20 "$S" pub "/c-t$P" <"$T/down"
nats-server -c "$T/nc.conf" >"$T/nc2.log" 2>&1 &
pids="$pids $!"
check "restart: bridge C reconnects" wait_for 15 connected hc$P
check "restart: bridge D reconnects" wait_for 15 connected hd$P
sleep 0.3
"$S" sub --timeout 3 "/d-t$P" >"$T/d2.raw" 2>/dev/null &
sd=$!
pids="$pids $sd"
w_i=0 # D's subscription is sent again on reconnect: poll until a line comes through
while [ "$w_i" -lt 50 ] && ! grep -q '^again ' "$T/d2.raw"; do
	echo "again $w_i" | "$S" pub "/c-t$P"
	sleep 0.1
	w_i=$((w_i + 1))
done
wait "$sd"
check "restart: C → D forwards again, without restarting a bridge" grep -q '^again ' "$T/d2.raw"

# --- usage errors: exit 2 with the reason ----------------------------------------
usage2() { # usage2 WHAT PATTERN ARGS...
	u_what=$1; u_pat=$2; shift 2
	"$S" bridge "$@" >"$T/u.out" 2>"$T/u.err"
	u_rc=$?
	if [ "$u_rc" = 2 ] && grep -q -- "$u_pat" "$T/u.err"; then ok; else
		fail "$u_what: exit $u_rc, stderr: $(cat "$T/u.err")"; fi
}
usage2 "unknown option" "unknown option --bogus" --bogus
usage2 "option without value" "needs a value" --topic-out
usage2 "no mapping" "no mapping" --server nats://127.0.0.1:1
usage2 "mapping without =" "expected LOCAL=SUBJECT" --topic-out /x
usage2 "bad subject" "not a NATS subject" --topic-out /x=a..b
usage2 "wildcard on publish" "no wildcards" --topic-out "/x=a.*"
usage2 "bad local name" "a local topic" --topic-in a.b=noslash
usage2 "missing config" "$T/none.conf" --config "$T/none.conf"
printf 'server nats://127.0.0.1:1\n# fine\nbogus-key 1\n' >"$T/bad.conf"
usage2 "bad config key" "bad.conf:3: bogus-key: unknown setting" --config "$T/bad.conf"
printf 'topic-in a b c\n' >"$T/bad2.conf"
usage2 "bad config mapping" "bad2.conf:1: topic-in: expected SUBJECT=LOCAL" --config "$T/bad2.conf"
usage2 "bad host id" "bad host id" --host-id 'a b' --topic-out /x=y
usage2 "--status of a bad host id" "bad host id 'a b'" --status --host-id 'a b'
"$S" bridge --status --host-id nobody-$P >/dev/null 2>"$T/st.err"
check "--status of no bridge: exit 1 and says so" test $? = 1
check "--status of no bridge: the reason" grep -q "no bridge runs with host id" "$T/st.err"

# A bridge stopped by SIGTERM exits 0 (under a sanitizer: with nothing to report) and
# removes its status segment.
for p in "$bc" "$ba"; do
	kill "$p"
	wait "$p"
	check "SIGTERM: the bridge exits 0" test $? = 0
done
check "SIGTERM: its status is gone" sh -c "! '$S' bridge --status --host-id hc$P 2>/dev/null"

# A bridge killed outright leaves its status behind, which --status sees is old.
kill -9 "$bd"
wait "$bd" 2>/dev/null
sleep 2.5
"$S" bridge --status --host-id hd$P >/dev/null 2>"$T/st.err"
check "SIGKILL: --status of a dead bridge: exit 1" test $? = 1
check "SIGKILL: --status of a dead bridge: says it is not running" grep -q "not running" "$T/st.err"

if [ "$fails" -ne 0 ]; then
	for f in ba.err bb.err bc.err bd.err; do echo "== $f"; cat "$T/$f"; done >&2
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
