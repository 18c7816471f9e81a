#!/bin/sh
# sanitize.sh: the test suite in an ASan/UBSan build (halt on the first report).
set -eu
cd "$(dirname "$0")/.."
dir=build-sanitize
meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    --reconfigure >/dev/null 2>&1 || \
    meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C "$dir"
CONC_N=100 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" \
    meson test -C "$dir" --print-errorlogs
