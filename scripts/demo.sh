#!/bin/bash
# demo.sh: the main job. Installs what is missing, builds snapfs, creates a demo
# store with real images, mounts it and shows a short tour.
#
#   scripts/demo.sh [DIR]     (default /tmp/snapfs-demo; the mount is DIR/mnt)
set -euo pipefail
cd "$(dirname "$0")/.."
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
cat <<MSG

The store stays mounted on $mnt. Look around with ls, cat, readlink and cp;
unmount with:  fusermount3 -u $mnt
MSG
