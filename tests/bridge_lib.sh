# Sourced by the bridge's shell tests (bridge_test.sh, bridge_netns_test.sh,
# bridge_tls_test.sh): free ports, waiting, and a running bridge's counters read from
# its --status. Needs $S (the shmkit tool) and $P (a number of this run).

# A TCP port nobody listens on now (nothing in /proc/net/tcp{,6} has it as local port).
used_ports() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk 'NR > 1 { split($2, a, ":"); print a[2] }'
}
next_try=$(( (P * 7919) % 30000 ))
taken=""
# free_port VAR: sets VAR to such a port, not given out before.
free_port() {
	while :; do
		next_try=$(( (next_try + 137) % 30000 ))
		port=$((20000 + next_try))
		hex=$(printf '%04X' "$port")
		if ! used_ports | grep -qx "$hex" && ! echo " $taken " | grep -q " $port "; then
			taken="$taken $port"
			eval "$1=$port"
			return
		fi
	done
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
	w_end=$(( $1 * 10 )); shift
	w_i=0
	while [ "$w_i" -lt "$w_end" ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.1
		w_i=$((w_i + 1))
	done
	return 1
}
# counter HOST DIR LOCAL FIELD: a mapping's counter from the bridge's status.
counter() {
	"$S" bridge --status --host-id "$1" 2>/dev/null |
		awk -v d="$2" -v l="$3" -v f="$4" '$1 == d && $2 == l {
			for (i = 4; i < NF; i += 2) if ($i == f) print $(i + 1) }'
}
connected() { "$S" bridge --status --host-id "$1" 2>/dev/null | awk 'NR == 1 && $4 == 1 { ok = 1 } END { exit !ok }'; }
gt0() { v=$(counter "$@"); [ -n "$v" ] && [ "$v" -gt 0 ]; }
# warm HOST-PUB TOPIC HOST-IN LOCAL: publish "warm" lines on TOPIC until the far
# bridge has published one into LOCAL: the cluster knows the subscription's interest.
warm() {
	w_i=0
	while [ "$w_i" -lt 100 ]; do
		echo "warm $w_i" | "$S" pub "$2" >/dev/null 2>&1
		gt0 "$3" in "$4" forwarded && return 0
		sleep 0.1
		w_i=$((w_i + 1))
	done
	return 1
}

