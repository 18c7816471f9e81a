#!/bin/sh
# tsan.sh: the tests where requests race (race.sh, concurrent.sh, guest.sh) in a ThreadSanitizer
# build: any data race reported in the daemon fails them (its log is checked, and TSan
# makes it exit non-zero). libfuse and glib are not instrumented: tests/tsan.supp.
# G_SLICE=always-malloc: GSlice hands blocks freed in one thread to another through its
# own magazines, an order TSan cannot see; malloc's it can.
set -eu
cd "$(dirname "$0")/.."
dir=build-tsan
meson setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug \
    --reconfigure >/dev/null 2>&1 || \
    meson setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug
ninja -C "$dir"
G_SLICE=always-malloc CONC_N=50 RACE_N=4 RACE_FLIPS=300 TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:second_deadlock_stack=1:exitcode=66" \
    meson test -C "$dir" --print-errorlogs race concurrent guest
