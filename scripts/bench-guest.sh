#!/bin/bash
# bench-guest.sh: guest files against the kernel. A guest disk (one ext4 partition holding
# /usr/share/doc and /usr/lib/python3, ~200 MiB) converted to qcow2 and mounted by snapfs;
# the kernel's side is a read-only loop mount of qemu-img convert -O raw of the same image.
# Prints, each pair run back to back twice: the first `ls` of the partition's root after
# mounting, `cp -a` of the tree, `diff -r` of the tree against itself in two snapshots
# (two chain elements), and the daemon's RSS after opening 20 elements' filesystems.
# Warm: the image files stay in the host's page cache (other users' caches are not dropped);
# each mount starts without its own caches.
# usage: scripts/bench-guest.sh [BUILD_DIR]   (root: loop devices)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
FS=$build/fs/snapfs
[ "$(id -u)" = 0 ] || { echo "bench-guest.sh: needs root (loop devices)" >&2; exit 2; }
w=$(mktemp -d /tmp/snapfs-bench-guest.XXXXXX)
mnt=$w/mnt; km=$w/kernel; gm=$w/g
mkdir -p "$mnt" "$km" "$gm" "$w/store/qemu/snapshot" "$w/img"
pid=""; loops=""
cleanup() {
    set +e
    cd /
    mountpoint -q "$mnt" && fusermount3 -u "$mnt"
    [ -n "$pid" ] && wait "$pid"
    for m in "$km" "$gm"; do mountpoint -q "$m" && umount "$m"; done
    for l in $loops; do losetup -d "$l"; done
    rm -rf "$w"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

MiB=$((1024 * 1024))
truncate -s 600M "$w/disk.raw"
printf 'label: dos\n1MiB,,83\n' | sfdisk -q "$w/disk.raw"
l=$(losetup -f --show -o $MiB --sizelimit $((599 * MiB)) "$w/disk.raw"); loops="$l"
mkfs.ext4 -q "$l"
mount "$l" "$gm"
mkdir -p "$gm/usr/share" "$gm/usr/lib"
cp -a /usr/share/doc "$gm/usr/share/"
cp -a /usr/lib/python3 "$gm/usr/lib/"
umount "$gm"; losetup -d "$l"; loops=""
qemu-img convert -q -f raw -O qcow2 "$w/disk.raw" "$w/img/base.qcow2"
qemu-img create -q -f qcow2 -b "$w/img/base.qcow2" -F qcow2 "$w/img/top.qcow2"
rm "$w/disk.raw"
cat > "$w/store/qemu/vm.xml" <<EOF
<domain type='kvm'><name>vm</name><uuid>0a0b0c0d-0e0f-4010-8111-000000000042</uuid>
<memory unit='KiB'>1048576</memory><os><type arch='x86_64'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='$w/img/top.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>
EOF
qemu-img convert -q -O raw "$w/img/top.qcow2" "$w/top.raw"
l=$(losetup -f --show -r -o $MiB --sizelimit $((599 * MiB)) "$w/top.raw"); loops="$l"
tree_mb=$(du -sm /usr/share/doc /usr/lib/python3 | awk '{ s += $1 } END { print s }')

mount_snapfs() {
    "$FS" -f "$w/store" "$mnt" 2>>"$w/log" & pid=$!
    for _ in $(seq 300); do mountpoint -q "$mnt" && return; sleep 0.05; done
    echo "not mounted" >&2; exit 1
}
umount_snapfs() { fusermount3 -u "$mnt"; wait "$pid"; pid=""; }

echo "uptime: $(uptime)"
echo "tree: ${tree_mb} MiB, $(find /usr/share/doc /usr/lib/python3 | wc -l) entries"
for round in 1 2; do
    t0=$(now); mount -o ro,noload "$l" "$km"; ls "$km" >/dev/null; t1=$(now)
    k_ls=$(secs "$t0" "$t1")
    t0=$(now); cp -a "$km/usr" "$w/kcopy"; t1=$(now); k_cp=$(secs "$t0" "$t1")
    umount "$km"; rm -rf "$w/kcopy"
    mount_snapfs
    t0=$(now); ls "$mnt/vm/disks/vda/files/vda1" >/dev/null; t1=$(now)
    s_ls=$(secs "$t0" "$t1")
    t0=$(now); cp -a "$mnt/vm/disks/vda/files/vda1/usr" "$w/scopy"; t1=$(now)
    s_cp=$(secs "$t0" "$t1")
    t0=$(now)
    diff -r --no-dereference "$mnt/vm/disks/vda/files/vda1/usr" "$mnt/vm/disks/vda[1]/files/vda1/usr"
    t1=$(now); s_diff=$(secs "$t0" "$t1")
    umount_snapfs; rm -rf "$w/scopy"
    printf 'round %s: first ls: kernel %.4f s, snapfs %.4f s (after mount)\n' "$round" "$k_ls" "$s_ls"
    printf 'round %s: cp -a: kernel %.2f s, snapfs %.2f s: snapfs/kernel throughput %.2f\n' \
        "$round" "$k_cp" "$s_cp" "$(echo "$k_cp / $s_cp" | bc -l)"
    printf 'round %s: diff -r of two chain elements through snapfs: %.2f s\n' "$round" "$s_diff"
done
# RSS with 20 elements' filesystems open: 20 overlays in a chain, each element's root listed.
prev=$w/img/top.qcow2
for i in $(seq 1 19); do
    qemu-img create -q -f qcow2 -b "$prev" -F qcow2 "$w/img/o$i.qcow2"; prev=$w/img/o$i.qcow2
done
sed -i "s|$w/img/top.qcow2|$prev|" "$w/store/qemu/vm.xml"
mount_snapfs
for i in $(seq 0 19); do
    [ $i = 0 ] && e=vda || e="vda[$i]"
    ls -l "$mnt/vm/disks/$e/files/vda1/usr/share/doc" >/dev/null
done
echo "daemon RSS after listing 20 elements' filesystems: $(ps -o rss= -p $pid) KiB"
umount_snapfs
