#!/bin/bash
# data.sh: data files are byte-identical to qemu-img convert -O raw of each chain element.
. "$(dirname "$0")/lib.sh"
make_store 24
img=$store/images
mount_fs
same() {   # same DATAFILE IMAGE FORMAT
    qemu-img convert -f "$3" -O raw "$2" "$work/ref.raw"
    check test "$(stat -c %s "$1")" = "$(stat -c %s "$work/ref.raw")"
    cmp "$work/ref.raw" "$1" || fail "content of $1 differs from qemu-img convert of $2"
}
same "$mnt/db/disks/vda/data" "$img/db.s8" qcow2
same "$mnt/db/disks/vda[1]/data" "$img/db.s6-1" qcow2
same "$mnt/db/disks/vda[3]/data" "$img/db.qcow2" qcow2
same "$mnt/db/snapshots/s4/disks/vda/data" "$img/db.s2-1" qcow2
same "$mnt/db/snapshots/s5/disks/vda/data" "$img/db.s4" qcow2
same "$mnt/web/disks/vda/data" "$img/web-top.qcow2" qcow2
same "$mnt/web/disks/vda[1]/data" "$img/web-mid.qcow2" qcow2
same "$mnt/web/disks/vda[2]/data" "$img/web-base.raw" raw
same "$mnt/legacy/disks/vda/data" "$img/legacy.qcow2" qcow2
check test "$(stat -c %a "$mnt/db/disks/vda/data")" = 400
# Random reads at odd offsets and sizes, compared with the reference.
qemu-img convert -f qcow2 -O raw "$img/web-top.qcow2" "$work/web.raw"
size=$(stat -c %s "$work/web.raw")
RANDOM=42
for i in $(seq 300); do
    off=$(( (RANDOM * 32768 + RANDOM) % size ))
    len=$(( (RANDOM % 4) == 0 ? RANDOM * 8 + 1 : RANDOM % 5000 + 1 ))
    a=$(dd if="$mnt/web/disks/vda/data" iflag=skip_bytes,count_bytes skip=$off count=$len bs=1M 2>/dev/null | md5sum)
    b=$(dd if="$work/web.raw" iflag=skip_bytes,count_bytes skip=$off count=$len bs=1M 2>/dev/null | md5sum)
    [ "$a" = "$b" ] || fail "read of $len bytes at $off differs"
done
# Several readers at once see the same bytes.
want=$(md5sum < "$work/web.raw")
readers=""
for i in 1 2 3 4; do md5sum < "$mnt/web/disks/vda/data" > "$work/sum.$i" & readers="$readers $!"; done
wait $readers   # not a bare wait: the driver is a background job too
for i in 1 2 3 4; do check test "$(cat "$work/sum.$i")" = "$want"; done
# cp restores a disk as of a snapshot.
cp "$mnt/db/snapshots/s2/disks/vda/data" "$work/restored.raw"
qemu-img convert -f qcow2 -O raw "$img/db.s1" "$work/ref.raw"
cmp "$work/restored.raw" "$work/ref.raw" || fail "cp of a snapshot disk"
# Sparse copies skip what is unallocated in the whole chain (SEEK_HOLE).
cp --sparse=always "$mnt/legacy/disks/vda/data" "$work/sparse.raw"
qemu-img convert -f qcow2 -O raw "$img/legacy.qcow2" "$work/ref.raw"
cmp "$work/sparse.raw" "$work/ref.raw" || fail "sparse cp content"
check test "$(stat -c %b "$work/sparse.raw")" -lt $(( 4 * 1024 * 1024 / 512 ))
umount_fs
echo ok
