#!/usr/bin/env bash
# A short libFuzzer run of every tests/fuzz/fuzz_*.c target (about 10 s
# each, FUZZ_SHORT_SECONDS to change), so parser crashes show up in the
# ordinary test suite; `make fuzz` runs them for longer.  New inputs go to
# a scratch corpus, never into tests/fuzz/corpus.
. "$(dirname "$0")/../lib.sh"
need_cmd clang make
setup_tmp
secs=${FUZZ_SHORT_SECONDS:-10}
for src in "$TOP"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	bin=$BUILD/fuzz/$name
	if ! make -C "$TOP" -s "build/fuzz/$name" >"$T/$name.build" 2>&1; then
		not_ok "$name builds with clang -fsanitize=fuzzer,address"
		sed 's/^/#   /' "$T/$name.build" | tail -n 20
		continue
	fi
	ok "$name builds with clang -fsanitize=fuzzer,address"
	mkdir -p "$T/$name"
	seeds=$TOP/tests/fuzz/corpus/$name
	[ -d "$seeds" ] || seeds=
	if (cd "$T" && "$bin" -max_total_time="$secs" -rss_limit_mb=1024 \
	    "$T/$name" $seeds >"$T/$name.log" 2>&1); then
		ok "$name: ${secs}s without a crash ($(grep -o \
		    'Done [0-9]* runs' "$T/$name.log" | head -n 1))"
	else
		not_ok "$name: crashed or leaked"
		grep -E 'ERROR|SUMMARY|Test unit written' "$T/$name.log" |
		    head -n 10 | sed 's/^/#   /'
		cp "$T"/crash-* "$T"/leak-* "$BUILD/fuzz/" 2>/dev/null
	fi
done
