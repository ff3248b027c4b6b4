#!/bin/sh
# symbols_test.sh LIBPATH [SRC_DIR [VERSIONED]]: the shared library exports exactly the
# public API and nothing internal, and its SONAME is libshmkit.so.0.
# - Every defined dynamic symbol is shmkit_*, shmem_* or fshm_*, or one of shmfile's own
#   names (shmfile_get_version, _fshm_printCopyrightVersion) that its programs call;
#   never shmkit__*, never a linker or compiler symbol such as __start_shmkit_guarded.
# With SRC_DIR:
# - the exports are exactly the functions declared SHMKIT_API in include/shmkit/*.h
#   (a declared call that is not exported, or an export that no header declares, fails);
# - src/shmkit.map lists exactly those functions, each once.
# With VERSIONED=1 (the build linked with src/shmkit.map; CMake's
# SHMKIT_HAVE_VERSION_SCRIPT):
# - every export carries a default symbol version (name@@SHMKIT_M.N), the version of
#   the map node that lists it, and every version the library defines is SHMKIT_M.N.
# Exit 0 pass, 1 fail, 77 skip (nm or readelf missing).
set -u
lib=${1:?usage: symbols_test.sh LIBPATH [SRC_DIR [VERSIONED]]}
src=${2:-}
versioned=${3:-0}

for tool in nm readelf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "symbols_test: $tool not found: skipped"
		exit 77
	fi
done
if [ ! -f "$lib" ]; then
	echo "symbols_test: $lib: no such file" >&2
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-symbols-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

fail=0
bad() {
	echo "symbols_test: FAIL: $*" >&2
	fail=1
}

# Defined dynamic symbols as "NAME VERSION" (VERSION "-" when unversioned), and the
# version definitions (nm shows each as an absolute symbol: "0 A SHMKIT_0.2").
nm -D --defined-only "$lib" >"$tmp/nm" || {
	echo "symbols_test: nm -D failed on $lib" >&2
	exit 1
}
awk 'NF >= 3 && $2 == "A" && $3 !~ /@/ { print $3 }' "$tmp/nm" | sort >"$tmp/verdefs"
awk 'NF >= 3 && !($2 == "A" && $3 !~ /@/) {
	n = $3; v = "-"; i = index(n, "@")
	if (i) { v = substr(n, i); n = substr(n, 1, i - 1) }
	print n, v
}' "$tmp/nm" | sort >"$tmp/exports"
cut -d' ' -f1 "$tmp/exports" >"$tmp/names"
[ -s "$tmp/names" ] || bad "no defined dynamic symbols in $lib"

while read -r s; do
	case $s in
	shmkit__*) bad "internal symbol exported: $s" ;;
	shmkit_* | shmem_* | fshm_*) ;;
	shmfile_get_version | _fshm_printCopyrightVersion) ;; # shmfile's names, for its programs
	*) bad "symbol outside the public prefixes exported: $s" ;;
	esac
done <"$tmp/names"
dups=$(uniq -d "$tmp/names")
[ -z "$dups" ] || bad "exported more than once (several versions): $dups"

# The seed APIs and the basics must be there whatever else happens.
for s in shmem_open shmem_close shmem_read shmem_write shmem_delete \
	fshm_open fshm_force_destroy fshm_create fshm_guest_open fshm_chmod fshm_chgrp \
	shmfile_get_version _fshm_printCopyrightVersion shmkit_strerror shmkit_version shmkit_version_string \
	shmkit_seg_open shmkit_blob_open shmkit_mutex_lock shmkit_event_wait; do
	grep -qx "$s" "$tmp/names" || bad "missing export: $s"
done

if [ -n "$src" ]; then
	# Functions declared SHMKIT_API: the name before the first '(' of each declaration.
	# The macro's own definition (in base.h) is no declaration.
	grep -h '^SHMKIT_API' "$src"/include/shmkit/*.h |
		sed -n 's/^SHMKIT_API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' | sort >"$tmp/declared"
	[ -s "$tmp/declared" ] || bad "no SHMKIT_API declaration found in $src/include/shmkit"
	comm -23 "$tmp/declared" "$tmp/names" | while read -r s; do
		echo "symbols_test: FAIL: declared SHMKIT_API but not exported: $s" \
			"(listed in src/shmkit.map? defined with its header included?)" >&2
		echo x >>"$tmp/failed"
	done
	comm -13 "$tmp/declared" "$tmp/names" | while read -r s; do
		echo "symbols_test: FAIL: exported but declared in no public header: $s" >&2
		echo x >>"$tmp/failed"
	done

	# The map: "NODE {" opens a node, "NAME;" lists a symbol under it, "local:" ends the
	# node's global list. Printed as "NAME @@NODE".
	map=$src/src/shmkit.map
	if [ -f "$map" ]; then
		sed 's,/\*.*\*/,,; /\/\*/,/\*\//d' "$map" | awk '
			/^[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { node = $1; global = 1; next }
			/local:/ { global = 0; next }
			/global:/ { global = 1; next }
			global && /^[ \t]*[A-Za-z_][A-Za-z0-9_]*;/ {
				gsub(/[ \t;]/, ""); print $0, "@@" node
			}' | sort >"$tmp/mapped"
		cut -d' ' -f1 "$tmp/mapped" >"$tmp/mapped_all"
		dups=$(uniq -d "$tmp/mapped_all")
		[ -z "$dups" ] || bad "src/shmkit.map lists more than once: $dups"
		uniq "$tmp/mapped_all" >"$tmp/mapped_names"
		comm -23 "$tmp/declared" "$tmp/mapped_names" | while read -r s; do
			echo "symbols_test: FAIL: declared SHMKIT_API but not in src/shmkit.map: $s" \
				"(add it to the node of the release that adds it)" >&2
			echo x >>"$tmp/failed"
		done
		comm -13 "$tmp/declared" "$tmp/mapped_names" | while read -r s; do
			echo "symbols_test: FAIL: src/shmkit.map lists $s, which no public header declares" >&2
			echo x >>"$tmp/failed"
		done
	else
		bad "no $map"
	fi
	[ -f "$tmp/failed" ] && fail=1
fi

if [ "$versioned" = 1 ]; then
	[ -s "$tmp/verdefs" ] || bad "no symbol version defined in $lib (linked without src/shmkit.map?)"
	while read -r v; do
		case $v in
		SHMKIT_[0-9]*.[0-9]*) ;;
		*) bad "version '$v' defined: versions are SHMKIT_MAJOR.MINOR" ;;
		esac
	done <"$tmp/verdefs"
	while read -r s v; do
		case $v in
		@@SHMKIT_*) grep -qx "${v#@@}" "$tmp/verdefs" || bad "$s: version ${v#@@} not defined" ;;
		-) bad "unversioned export: $s" ;;
		*) bad "$s: not the default version (${v}): every export is name@@SHMKIT_M.N" ;;
		esac
	done <"$tmp/exports"
	if [ -n "$src" ] && [ -s "$tmp/mapped" ]; then
		# Each export has the version of the node that lists it.
		join "$tmp/exports" "$tmp/mapped" | while read -r s got want; do
			if [ "$got" != "$want" ]; then
				echo "symbols_test: FAIL: $s has version $got, src/shmkit.map says $want" >&2
				echo x >>"$tmp/failed"
			fi
		done
		[ -f "$tmp/failed" ] && fail=1
	fi
	vers=$(tr '\n' ' ' <"$tmp/verdefs")
else
	echo "symbols_test: the library was linked without a version script: versions not checked"
	vers="none"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libshmkit.so.0" ] || bad "SONAME is '$soname', want libshmkit.so.0"

n=$(wc -l <"$tmp/names")
if [ "$fail" -ne 0 ]; then
	echo "symbols_test: exports of $lib:" >&2
	sed 's/^/  /' "$tmp/exports" >&2
	exit 1
fi
echo "symbols_test: $n public symbols, versions ${vers% }, SONAME $soname: ok"
exit 0
