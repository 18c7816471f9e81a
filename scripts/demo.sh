#!/bin/bash
# demo.sh: the main job. Installs what is missing, builds snapfs, creates a demo
# store with real images, mounts it and shows a short tour.
#
#   scripts/demo.sh [DIR]     (default /tmp/snapfs-demo; the mount is DIR/mnt)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
sh scripts/deps.sh
meson setup build >/dev/null 2>&1 || meson setup build --reconfigure >/dev/null
ninja -C build >/dev/null
dir=${1:-/tmp/snapfs-demo}
mnt=$dir/mnt
if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt"; fi
rm -rf "$dir"
mkdir -p "$mnt"
scripts/mkstore.sh "$dir/store" 64 >/dev/null
./build/fs/snapfs "$dir/store" "$mnt"
for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { echo "demo: mount failed" >&2; exit 1; }

run() { printf '\n$ %s\n' "$*"; eval "$@"; }
cd "$mnt"
echo "snapfs: store $dir/store mounted on $mnt"
run ls
run ls db db/snapshots db/disks
run cat db/tree
run readlink db/current db/snapshots/s5/parent
run ls -l db/snapshots/s1/children
run cat db/snapshots.tsv
run cat db/snapshots/s4/snapshot.xml \| head -20
run cat web/disks/vda[2]/info
run cat web/disks/vdb[1]/source
run diff web/domain.xml web/domain.secure.xml \|\| true
run qemu-img convert -O raw "$dir/store/images/db.s1" /tmp/snapfs-demo-ref.raw
run cmp db/snapshots/s2/disks/vda/data /tmp/snapfs-demo-ref.raw \&\& echo identical
rm -f /tmp/snapfs-demo-ref.raw

# A running VM through its libvirt daemon (snapfs -c URI): a private libvirtd in session
# mode with one TCG guest (it sits in its firmware), snapshotted while it runs.
live_demo() {
    local img=$dir/vm live=$dir/live
    fail() { echo "demo: $*" >&2; exit 1; }
    cleanup() { :; }
    # shellcheck source=tests/integration/libvirtd.sh
    . "$src/tests/integration/libvirtd.sh"
    mkdir -p "$img" "$live"
    chmod 777 "$img"   # the session daemon runs as an unprivileged user: it makes the overlays
    qemu-img create -q -f qcow2 "$img/vm.qcow2" 64M
    chmod 666 "$img/vm.qcow2"
    lv_start "$dir/lv"
    lv_guest vm "$img/vm.qcow2"
    lv start vm > /dev/null
    "$src/build/fs/snapfs" -c "$LV_URI" "$live"
    for _ in $(seq 50); do mountpoint -q "$live" && break; sleep 0.1; done
    cd "$live"
    echo
    echo "snapfs: the daemon at $LV_URI mounted on $live"
    run ls vm
    run cat vm/state
    run "echo s1 > vm/ctl/create"
    run cat vm/ctl/result
    run virsh -q -c "'$LV_URI'" snapshot-list vm
    run virsh -q -c "'$LV_URI'" domblklist vm
    run readlink vm/current
    run ls vm/disks
    run cat "'vm/disks/vda[1]/source'"
    cd /
    fusermount3 -u "$live"
    lv_stop
    trap - EXIT
}
if [ "$(id -u)" = 0 ] && command -v libvirtd > /dev/null && command -v qemu-system-x86_64 > /dev/null &&
        unshare --help 2>&1 | grep -q -- --map-user; then
    (live_demo)
else
    echo
    echo "demo: no running VM here (snapfs -c needs root for the private libvirtd, libvirtd and qemu)"
fi
cat <<MSG

The store stays mounted on $mnt. Look around with ls, cat, readlink and cp;
unmount with:  fusermount3 -u $mnt
MSG
