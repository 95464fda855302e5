#!/bin/sh
# t/fuzz/replay.sh: builds the libFuzzer targets (t/fuzz/build.sh) and runs
# each once over every input of its corpus, without fuzzing: a finding
# kept in a corpus (regress-*, crash inputs turned into seeds) must stay
# fixed, and the seeds must run clean under ASan and UBSan.
#
#   t/fuzz/replay.sh [OUTDIR]        (default: ./fuzz-build)
#
# Corpora: t/fuzz/corpus/NAME/ for the target fuzz_NAME, every one of which
# must have one; fuzz_mime also replays the messages of t/mime/ (*.eml).
# contrib/quickstart check runs this after the test suites.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-fuzz-build}
sh "$src/t/fuzz/build.sh" "$out" >/dev/null
out=$(cd "$out" && pwd)
log="$out/replay.log"
: > "$log"
status=0
for target in "$src"/t/fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	corpus="$src/t/fuzz/corpus/${name#fuzz_}"
	set --
	if [ -d "$corpus" ]; then
		for f in "$corpus"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
	fi
	if [ "$name" = fuzz_mime ]; then
		for f in "$src"/t/mime/*.eml; do
			set -- "$@" "$f"
		done
	fi
	if [ $# -eq 0 ]; then
		echo "replay: $name has no corpus (t/fuzz/corpus/${name#fuzz_}/)" >&2
		status=1
		continue
	fi
	# Given files rather than a directory, libFuzzer runs each once and
	# stops; -timeout turns a hang into a failure.
	if "$out/$name" -timeout=60 "$@" >>"$log" 2>&1; then
		echo "replay: $name ok ($# inputs)"
	else
		echo "replay: $name FAILED; its output:" >&2
		tail -n 60 "$log" >&2
		status=1
	fi
done
exit $status
