#!/bin/sh
# man_test.sh SRC_DIR: every page in man/ renders on its own, as `man -l PAGE` renders
# a file that is not installed: no warning, no failed request, a NAME section. An alias
# page is a symbolic link to the page that documents it (a ".so" request names a path
# relative to a man tree, which `man -l` cannot resolve), and that page's NAME lists the
# alias. Every function declared in a public header has a page of its own name.
# Renders with man(1) when installed, else with groff(1); exit 77 (skip) with neither.
set -u
src=${1:?usage: man_test.sh SRC_DIR}

if command -v man >/dev/null 2>&1; then
	render() { MANWIDTH=80 MAN_KEEP_FORMATTING= man -l "$1"; }
	how="man -l"
elif command -v groff >/dev/null 2>&1; then
	render() { groff -man -Tutf8 -ww -P-cbou "$1"; }
	how="groff -man"
else
	echo "man_test: neither man nor groff is installed: skipped"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-man-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

fail=0
bad() {
	echo "man_test: FAIL: $*" >&2
	fail=1
}

n=0
aliases=0
for page in "$src"/man/*.[0-9]; do
	[ -e "$page" ] || [ -L "$page" ] || continue
	n=$((n + 1))
	base=${page##*/}
	name=${base%.*}
	if [ -L "$page" ]; then
		aliases=$((aliases + 1))
		target=$(readlink "$page")
		case $target in
		*/*) bad "$base -> $target: an alias links to a page in the same directory" ;;
		esac
		[ -f "$page" ] || bad "$base -> $target: no such page"
	fi
	if head -n 1 "$page" 2>/dev/null | grep -q '^\.so '; then
		bad "$base: a .so alias, which man -l cannot render: make it a symbolic link to its page"
		continue
	fi
	if ! render "$page" >"$tmp/out" 2>"$tmp/err"; then
		bad "$base: $how failed: $(cat "$tmp/err")"
		continue
	fi
	if [ -s "$tmp/err" ]; then
		bad "$base: $how warns: $(head -n 3 "$tmp/err")"
	fi
	# The NAME section: from its heading to the next one.
	sed -n '/^NAME/,/^[A-Z]/p' "$tmp/out" | sed '1d;$d' >"$tmp/name"
	if [ ! -s "$tmp/name" ]; then
		bad "$base: renders without a NAME section"
	elif ! tr ',' '\n' <"$tmp/name" | grep -qw -- "$name"; then
		bad "$base: its NAME section does not list $name: $(tr -s ' \n' ' ' <"$tmp/name")"
	fi
done
[ "$n" -gt 0 ] || bad "no page in $src/man"

# Every public function has a page under its own name (its family's, through a link),
# the bridge library's (SHMKIT_BRIDGE_API) too.
for f in $(grep -h '^SHMKIT_\(BRIDGE_\)\{0,1\}API' "$src"/include/shmkit/*.h |
	sed -n 's/^SHMKIT_[A-Z_]*API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p'); do
	[ -e "$src/man/$f.3" ] || bad "no page for $f: add man/$f.3 (a link to its family's page)"
done

[ "$fail" -eq 0 ] || exit 1
echo "man_test: $n pages ($aliases aliases) render with $how: ok"
exit 0
