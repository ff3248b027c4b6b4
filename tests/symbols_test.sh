#!/bin/sh
# symbols_test.sh LIBPATH [SRC_DIR]: the shared library exports only the public API
# (shmkit_*, shmem_*, fshm_*, and shmfile's shmfile_get_version and
# _fshm_printCopyrightVersion; never the internal shmkit__*),
# every export is declared in a public header (when SRC_DIR is given), and its SONAME
# is libshmkit.so.0.
# Exit 0 pass, 1 fail, 77 skip (nm or readelf missing).
set -u
lib=${1:?usage: symbols_test.sh LIBPATH [SRC_DIR]}
src=${2:-}

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

fail=0
bad() {
	echo "symbols_test: FAIL: $*" >&2
	fail=1
}

# Defined dynamic symbols, names only ("ADDR TYPE NAME"; versioned names keep "@...").
syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }') || {
	echo "symbols_test: nm -D failed on $lib" >&2
	exit 1
}
[ -n "$syms" ] || bad "no defined dynamic symbols in $lib"

for s in $syms; do
	case $s in
	shmkit__*) bad "internal symbol exported: $s" ;;
	shmkit_* | shmem_* | fshm_*) ;;
	shmfile_get_version | _fshm_printCopyrightVersion) ;; # shmfile's names, for its programs
	*) bad "symbol outside the public prefixes exported: $s" ;;
	esac
done

# The seed APIs and the basics must be there.
for s in shmem_open shmem_close shmem_read shmem_write shmem_delete \
	fshm_open fshm_force_destroy fshm_create fshm_guest_open fshm_chmod fshm_chgrp \
	shmfile_get_version _fshm_printCopyrightVersion shmkit_strerror shmkit_version shmkit_version_string \
	shmkit_seg_open shmkit_blob_open shmkit_mutex_lock shmkit_event_wait; do
	printf '%s\n' "$syms" | grep -qx "$s" || bad "missing export: $s"
done

# Every export is part of the documented API: declared in include/shmkit/*.h.
if [ -n "$src" ] && [ -d "$src/include/shmkit" ]; then
	for s in $syms; do
		case $s in
		shmkit__*) continue ;;
		esac
		grep -qw -- "$s" "$src"/include/shmkit/*.h ||
			bad "exported but declared in no public header: $s"
	done
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "libshmkit.so.0" ] || bad "SONAME is '$soname', want libshmkit.so.0"

n=$(printf '%s\n' "$syms" | wc -l)
if [ "$fail" -ne 0 ]; then
	echo "symbols_test: exports of $lib:" >&2
	printf '%s\n' "$syms" | sed 's/^/  /' >&2
	exit 1
fi
echo "symbols_test: $n public symbols, SONAME $soname: ok"
exit 0
