#!/bin/sh
# test.sh: the whole test suite from a fresh checkout: install what is missing,
# build (warnings are errors), run unit and integration tests, then the same
# suite under ASan/UBSan and the racing tests under TSan. Usage: scripts/test.sh
# [--quick] (quick: no sanitizer pass)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
meson setup build -Dwerror=true --reconfigure >/dev/null 2>&1 || meson setup build -Dwerror=true
ninja -C build
meson test -C build --print-errorlogs
if [ "${1:-}" != "--quick" ]; then
    sh scripts/sanitize.sh
    sh scripts/tsan.sh
fi
echo "test.sh: all tests passed"
