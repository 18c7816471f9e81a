#!/bin/sh
# fuzz.sh: builds the libFuzzer targets of tests/fuzz/ (clang, ASan, UBSan) and runs one for a while.
#
# usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   TARGET: domain, snapshot, backup, ctl, image, guest, guestfs (or "build" to only build)
# The build goes to build-fuzz/ (or $FUZZ_BUILD); new inputs go to build-fuzz/corpus-TARGET/
# (the seed corpus tests/fuzz/corpus/TARGET/ is read, never written); crashes to
# build-fuzz/artifacts-TARGET/. Exits non-zero when the target found a crash, leak or timeout.
# Needs clang and libclang-rt-14-dev (sh scripts/deps.sh installs them... or apt-get install them).
set -eu
target=${1:?usage: fuzz.sh TARGET SECONDS [libFuzzer options]}
seconds=${2:-60}
[ $# -ge 2 ] && shift 2 || shift $#
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$src/build-fuzz}

command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$src" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args='-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined' \
        -Dc_link_args='-fno-sanitize-recover=undefined' >/dev/null
fi
ninja -C "$build" $(for t in domain snapshot backup ctl image guest guestfs; do echo tests/fuzz/fuzz-$t; done) >/dev/null
[ "$target" = build ] && exit 0

bin=$build/tests/fuzz/fuzz-$target
[ -x "$bin" ] || { echo "fuzz.sh: no target '$target'" >&2; exit 2; }
mkdir -p "$build/corpus-$target" "$build/artifacts-$target"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export G_DEBUG=fatal-criticals
# -rss_limit_mb: qcow2 tables are bounded at 32 MiB of L1 entries; -max_len: XML up to 64 KiB.
exec "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts-$target/" "$@" \
    "$build/corpus-$target" "$src/tests/fuzz/corpus/$target"
