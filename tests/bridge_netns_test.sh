#!/bin/sh
# bridge_netns_test.sh SHMKIT: `shmkit bridge` between two hosts that have networks of
# their own: two network namespaces joined by a veth pair (10.231.7.1 and 10.231.7.2),
# a JetStream-enabled nats-server in each, clustered over that link, and one bridge per
# namespace, which reaches its own server only (the servers are not on the machine's
# loopback). Shared memory is the machine's, as the segment-name prefixes /nsa- and
# /nsb- keep the two hosts' apart. A topic and a channel go from A to B; then the link
# goes down for two seconds while the channel's producer keeps sending, and every
# message still arrives once, in order.
# Skips (77) without root, ip(8), network namespaces, nats-server or the bridge.
set -u
S=${1:?usage: bridge_netns_test.sh SHMKIT}
. "$(dirname "$0")/tool_lib.sh"

skip() { echo "SKIPPED: $*"; exit 77; }
command -v nats-server >/dev/null 2>&1 || skip "nats-server is not installed (apt-get install nats-server)"
"$S" bridge --help >/dev/null 2>&1 || skip "shmkit was built without libnats: no bridge"
[ "$(id -u)" = 0 ] || skip "not root: network namespaces need it"
command -v ip >/dev/null 2>&1 || skip "ip(8) is not installed (apt-get install iproute2)"

P=$$
NA=shmkit-na$P
NB=shmkit-nb$P
VA=skna$P
VB=sknb$P
T=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	ip netns del "$NA" 2>/dev/null
	ip netns del "$NB" 2>/dev/null
	for n in /nsa-t$P /nsb-t$P /nsa-c$P /nsb-c$P /nsb-c$P.jsmark /shmkit-bridge-na$P \
		/shmkit-bridge-nb$P; do "$S" rm "$n" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
. "$(dirname "$0")/bridge_lib.sh"

# --- two hosts: namespaces, a veth pair between them -----------------------------
if ! ip netns add "$NA" 2>"$T/ip.err" || ! ip netns add "$NB" 2>>"$T/ip.err" ||
	! ip link add "$VA" type veth peer name "$VB" 2>>"$T/ip.err"; then
	skip "network namespaces or veth not allowed here: $(head -n 1 "$T/ip.err")"
fi
ip link set "$VA" netns "$NA" && ip link set "$VB" netns "$NB" &&
	ip -n "$NA" addr add 10.231.7.1/24 dev "$VA" && ip -n "$NB" addr add 10.231.7.2/24 dev "$VB" &&
	ip -n "$NA" link set "$VA" up && ip -n "$NB" link set "$VB" up &&
	ip -n "$NA" link set lo up && ip -n "$NB" link set lo up ||
	{ fail "setting up the veth pair"; echo "$passes passed, $fails failed"; exit 1; }

# --- a server in each, clustered over the link ------------------------------------
# Ports are the namespaces' own: fixed ones cannot collide with another run's.
ip netns exec "$NA" nats-server -a 10.231.7.1 -p 4222 -js -sd "$T/ja" --cluster_name shmkit-ns \
	--cluster nats://10.231.7.1:6222 --routes nats://10.231.7.2:6222 --server_name na \
	>"$T/na.log" 2>&1 &
pids="$pids $!"
ip netns exec "$NB" nats-server -a 10.231.7.2 -p 4222 -js -sd "$T/jb" --cluster_name shmkit-ns \
	--cluster nats://10.231.7.2:6222 --routes nats://10.231.7.1:6222 --server_name nb \
	>"$T/nb.log" 2>&1 &
pids="$pids $!"
routed() { grep -q 'Route connection created' "$T/na.log" && grep -q 'Route connection created' "$T/nb.log"; }
if ! wait_for 20 routed; then
	cat "$T/na.log" "$T/nb.log" >&2
	fail "the two nats-servers did not form a cluster over the veth pair"
	echo "$passes passed, $fails failed"
	exit 1
fi
ok

# --- one bridge per host, in its namespace ----------------------------------------
ip netns exec "$NA" "$S" bridge --server nats://10.231.7.1:4222 --host-id na$P \
	--topic-out "/nsa-t$P=shmkit.ns.t$P" --chan-out "/nsa-c$P=NS$P" 2>"$T/ba.err" &
pids="$pids $!"
ip netns exec "$NB" "$S" bridge --server nats://10.231.7.2:4222 --host-id nb$P \
	--topic-in "shmkit.ns.t$P=/nsb-t$P" --chan-in "NS$P=/nsb-c$P" 2>"$T/bb.err" &
pids="$pids $!"
check "bridge A connects to its host's server" wait_for 20 connected na$P
check "bridge B connects to its host's server" wait_for 20 connected nb$P

# --- a topic, A → B ---------------------------------------------------------------
N=1000
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "t %06d over the veth pair\n", i }' >"$T/tsent"
check "A → B interest propagates" warm na$P "/nsa-t$P" nb$P "/nsb-t$P"
"$S" sub --timeout 3 "/nsb-t$P" >"$T/tgot.raw" 2>"$T/sub.err" &
sub=$!
pids="$pids $sub"
sleep 0.3
"$S" pub "/nsa-t$P" <"$T/tsent"
wait "$sub"
grep -v '^warm ' "$T/tgot.raw" >"$T/tgot"
check "topic: $N messages from host A's namespace to host B's, in order, nothing lost" \
	cmp -s "$T/tsent" "$T/tgot"

# --- a channel, A → B, through a link that goes down -------------------------------
M=4000
awk -v n="$M" 'BEGIN { for (i = 1; i <= n; i++) printf "c %06d exactly once\n", i }' >"$T/csent"
"$S" recv --create -n "$M" "/nsb-c$P" >"$T/cgot" 2>"$T/recv.err" &
recv=$!
pids="$pids $recv"
# The producer sends the first half, then the second while the link is down for 2 s.
head -n $((M / 2)) "$T/csent" >"$T/c1"
tail -n $((M / 2)) "$T/csent" >"$T/c2"
(
	cat "$T/c1"
	while [ ! -f "$T/down" ]; do sleep 0.05; done
	cat "$T/c2"
) | "$S" send "/nsa-c$P" 2>"$T/send.err" &
send=$!
pids="$pids $send"
wait_for 20 sh -c "[ \"\$(wc -l <'$T/cgot')\" -ge $((M / 4)) ]" ||
	fail "channel: nothing arrived on host B before the link went down"
ip -n "$NA" link set "$VA" down
: >"$T/down"
sleep 2
ip -n "$NA" link set "$VA" up
wait_for 60 sh -c "! kill -0 $recv 2>/dev/null"
kill "$recv" 2>/dev/null
wait "$send" 2>/dev/null
check "channel: $M messages, sent across a link down for 2 s, each once and in order" \
	cmp -s "$T/csent" "$T/cgot"
echo "channel: bridge A resent $(counter na$P out /nsa-c$P resent), errors $(counter na$P out /nsa-c$P errors); bridge B errors $(counter nb$P in /nsb-c$P errors), skipped $(counter nb$P in /nsb-c$P skipped)"
if [ "$fails" -gt 0 ]; then
	echo "--- received $(wc -l <"$T/cgot") lines; first difference:" >&2
	cmp "$T/csent" "$T/cgot" >&2
	for f in ba.err bb.err send.err recv.err; do echo "--- $f" >&2; tail -n 5 "$T/$f" >&2; done
	"$S" bridge --status --host-id na$P >&2
	"$S" bridge --status --host-id nb$P >&2
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
