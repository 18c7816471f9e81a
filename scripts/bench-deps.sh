#!/bin/sh
# bench-deps.sh: installs what scripts/bench.sh compares against (Debian 12, root or sudo).
# Only what is missing is installed; the build and test packages come from scripts/deps.sh.
set -eu
PKGS="qemu-utils libnbd-bin libvirt-clients gnuplot-nox fuse3 procps"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench-deps.sh: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
