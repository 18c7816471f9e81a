#!/bin/sh
# valgrind.sh: the test suite under valgrind (memcheck, full leak check), unit and
# integration (the driver runs under valgrind through FS_WRAPPER).
set -eu
cd "$(dirname "$0")/.."
meson setup build-valgrind -Dbuildtype=debug --reconfigure >/dev/null 2>&1 || \
    meson setup build-valgrind -Dbuildtype=debug
ninja -C build-valgrind
meson test -C build-valgrind --setup valgrind --print-errorlogs "$@"
