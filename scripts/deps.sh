#!/bin/sh
# deps.sh: installs what building, testing and the demo need on Debian 12 (root).
# Only what is missing is installed; `apt-get update` runs first when something is.
set -eu
PKGS="build-essential meson ninja-build pkg-config libglib2.0-dev libxml2-dev libxml2-utils
libfuse3-dev fuse3 libqcow-dev zlib1g-dev libzstd-dev qemu-utils libvirt0 libvirt-clients libvirt-dev
valgrind clang libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 util-linux python3
libext2fs-dev e2fsprogs fdisk gdisk lvm2 dosfstools xfsprogs btrfs-progs ntfs-3g attr"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps.sh: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
