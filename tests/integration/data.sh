#!/bin/bash
# data.sh: data files are byte-identical to qemu-img convert -O raw of each chain element.
. "$(dirname "$0")/lib.sh"
make_store 24
img=$store/images

# Odd sizes (qemu counts whole sectors), external data files, and L2 entries qemu
# refuses with EIO, on the disks of one domain. qemu-img 7.2 opens a relative data
# file name from its working directory: the images are made and converted from theirs.
q=$work/q
mkdir -p "$q"
l2set() { python3 "$SNAPFS_SRCDIR/scripts/qcow2-l2set.py" "$@"; }
(
    cd "$q"
    head -c 1000 /dev/urandom > odd.raw
    qemu-img create -q -f qcow2 odd.qcow2 1024
    qemu-io -f qcow2 -c 'write -P 0x41 0 1024' odd.qcow2 >/dev/null
    printf '\000\000\000\000\000\000\003\350' |   # virtual size 1000
        dd of=odd.qcow2 bs=1 seek=24 conv=notrunc status=none
    qemu-img create -q -f qcow2 -o data_file=df.raw df.qcow2 1M
    qemu-io -f qcow2 -c 'write -P 0x42 64k 100k' -c 'write -z 320k 64k' df.qcow2 >/dev/null
    head -c 2M /dev/urandom > dfr.raw
    qemu-img create -q -f qcow2 -o data_file="$q/dfr.raw",data_file_raw=on dfr.qcow2 2M
    qemu-io -f qcow2 -c 'write -P 0x43 1M 10k' dfr.qcow2 >/dev/null
    qemu-img create -q -f qcow2 -o data_file=gone.raw dfgone.qcow2 1M
    rm gone.raw
    qemu-img create -q -f qcow2 zu.qcow2 1M
    qemu-img create -q -f qcow2 -o extended_l2=on both.qcow2 1M
    for f in zu.qcow2 both.qcow2; do
        qemu-io -f qcow2 -c 'write -P 0x44 0 128k' $f >/dev/null
    done
    l2set zu.qcow2 65536 '(e & 0x00fffffffffffe00) + 512 | 1 | (1 << 63)'   # zero, unaligned
    l2set both.qcow2 65536 'e' 'b | (1 << 37)'          # a subcluster allocated and zero
)
qdisk() {   # qdisk DEV FILE FORMAT
    echo "<disk type='file' device='disk'><driver name='qemu' type='$3'/><source file='$q/$2'/><target dev='$1' bus='virtio'/></disk>"
}
cat > "$store/qemu/qemurules.xml" <<EOF
<domain type='kvm'>
  <name>qemurules</name>
  <uuid>5e7a0d1e-0000-4000-8000-00000000e100</uuid>
  <memory unit='KiB'>65536</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    $(qdisk vda odd.raw raw)$(qdisk vdb odd.qcow2 qcow2)$(qdisk vdc df.qcow2 qcow2)
    $(qdisk vdd dfr.qcow2 qcow2)$(qdisk vde dfgone.qcow2 qcow2)$(qdisk vdf zu.qcow2 qcow2)
    $(qdisk vdg both.qcow2 qcow2)
  </devices>
</domain>
EOF
mount_fs
same() {   # same DATAFILE IMAGE FORMAT
    (cd "$(dirname "$2")" && qemu-img convert -f "$3" -O raw "$2" "$work/ref.raw")
    check test "$(stat -c %s "$1")" = "$(stat -c %s "$work/ref.raw")"
    cmp "$work/ref.raw" "$1" || fail "content of $1 differs from qemu-img convert of $2"
}
d=$mnt/qemurules/disks
same "$d/vda/data" "$q/odd.raw" raw
check test "$(stat -c %s "$d/vda/data")" = 1024
grep -qx 'virtual-size: 1024' "$d/vda/info" || fail "virtual-size of odd.raw in info"
same "$d/vdb/data" "$q/odd.qcow2" qcow2
check test "$(stat -c %s "$d/vdb/data")" = 512
grep -qx 'virtual-size: 512' "$d/vdb/info" || fail "virtual-size of odd.qcow2 in info"
same "$d/vdc/data" "$q/df.qcow2" qcow2
grep -qx 'data-file: df.raw' "$d/vdc/info" || fail "data-file in info"
grep -qx 'data-file-raw: no' "$d/vdc/info" || fail "data-file-raw in info"
grep -qx "data-file: $q/dfr.raw" "$d/vdd/info" || fail "absolute data-file in info"
grep -qx 'data-file-raw: yes' "$d/vdd/info" || fail "data-file-raw: yes in info"
same "$d/vdd/data" "$q/dfr.qcow2" qcow2
cmp "$d/vdd/data" "$q/dfr.raw" || fail "a raw data file is the disk"
expect_fail 'No such file' cat "$d/vde/data"
grep -q "^error: Cannot access data file '$q/gone.raw'" "$d/vde/info" || fail "no data file in info"
for f in zu both; do
    ! (cd "$q" && qemu-img convert -O raw $f.qcow2 "$work/ref.raw" 2>/dev/null) ||
        fail "qemu-img convert reads $f.qcow2"
done
expect_fail 'Input/output error' cat "$d/vdf/data"
expect_fail 'Input/output error' cat "$d/vdg/data"
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
