#!/bin/sh
# make valgrind, second step: read memcheck's per-process logs (vg.PID.log in $1).
# Memory errors already failed their test (--error-exitcode); this prints them again
# with their process. Leaks count in every process that exits as a program would:
# a test's main process, or a program it executed (examples, the tool). A child forked
# from a test exits on purpose holding what it was given or opened (tests simulate
# processes that die holding roles, and a fork copies the parent's heap), so its
# "leaks" are not the program's and are only counted here, not failed.
dir=$1
fail=0
children=0
cmd_of() { sed -n 's/^==[0-9]*== Command: //p' "$1" | head -n 1; }
for f in "$dir"/vg.*.log; do
	[ -f "$f" ] || continue
	if grep -q "ERROR SUMMARY: [1-9]" "$f"; then
		echo "make valgrind: memory errors in $(cmd_of "$f") ($f):"
		grep -v "^==[0-9]*== *$" "$f" | sed -n '/Invalid\|uninitialised\|Syscall param\|Mismatched\|overlap\|free/,/^==[0-9]*== *$/p' | head -n 40
		fail=1
	fi
	grep -q "definitely lost in\|indirectly lost in" "$f" || continue
	ppid=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\)$/\1/p' "$f" | head -n 1)
	parent="$dir/vg.$ppid.log"
	if [ -f "$parent" ] && [ "$(cmd_of "$parent")" = "$(cmd_of "$f")" ]; then
		children=$((children + 1))
		continue
	fi
	echo "make valgrind: leak in $(cmd_of "$f") ($f):"
	sed -n '/lost in loss record/,/^==[0-9]*== *$/p' "$f" | head -n 60
	fail=1
done
echo "make valgrind: $(ls "$dir" | wc -l) processes checked; $children forked children exited holding memory (not counted)"
exit $fail
