#!/bin/bash
# disks.sh: backing chains as directories: names, source/type/format/info, backing links, vda.xml.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
# A domain whose images are broken: vda missing, vdb a truncated qcow2.
head -c 100 "$img/legacy.qcow2" > "$img/truncated.qcow2"
sed -e "s|<name>legacy</name>|<name>broken</name>|" -e 's|0a0b0c0d-0e0f|0a0b0c0d-ffff|' \
    -e "s|$img/legacy.qcow2|$img/missing.qcow2|" "$store/qemu/legacy.xml" |
    sed '/<backingStore type=/,/^      <\/backingStore>/d' > "$store/qemu/broken.xml"
sed -i "s|  </devices>|    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='$img/truncated.qcow2'/>\n      <target dev='vdb' bus='virtio'/>\n    </disk>\n  </devices>|" "$store/qemu/broken.xml"
mount_fs
d=$mnt/db/disks
check test "$(ls "$d" | tr '\n' ' ')" = "vda vda.xml vda[1] vda[2] vda[3] "
check test "$(cat "$d/vda/source")" = "$img/db.s8"
check test "$(cat "$d/vda[1]/source")" = "$img/db.s6-1"
check test "$(cat "$d/vda[2]/source")" = "$img/db.s1-1"
check test "$(cat "$d/vda[3]/source")" = "$img/db.qcow2"
check test "$(cat "$d/vda/type")" = file
check test "$(cat "$d/vda[3]/format")" = qcow2
check test "$(readlink "$d/vda/backing")" = "../vda[1]"
check test "$(readlink "$d/vda[2]/backing")" = "../vda[3]"
expect_fail 'No such file' stat "$d/vda[3]/backing"
check test "$(cat "$d/vda/backing/backing/source")" = "$img/db.s1-1"
grep -qx 'virtual-size: 16777216' "$d/vda/info" || fail "virtual-size in info"
grep -qx "backing-file: $img/db.s6-1" "$d/vda/info" || fail "backing-file in info"
grep -qx "backing-format: qcow2" "$d/vda/info" || fail "backing-format in info"
grep -qx "cluster-size: 65536" "$d/vda/info" || fail "cluster-size in info"
! grep -q '^error:' "$d/vda/info" || fail "error in a healthy info"
check test "$(grep -c '<backingStore' "$d/vda.xml")" = 4
grep -q "<source file='$img/db.qcow2'" "$d/vda.xml" || fail "vda.xml lacks the base"
# A snapshot's disks are the chain under its embedded domain: the disk as it was.
s4=$mnt/db/snapshots/s4/disks
check test "$(ls "$s4" | tr '\n' ' ')" = "vda vda.xml vda[1] vda[2] "
check test "$(cat "$s4/vda/source")" = "$img/db.s2-1"
check test "$(cat "$s4/vda[1]/source")" = "$img/db.s1"
# Probed chain with a relative backing name and a raw base.
w=$mnt/web/disks
check test "$(ls "$w" | tr '\n' ' ')" = "vda vda.xml vda[1] vda[2] vdb vdb.xml vdb[1] "
check test "$(cat "$w/vda[1]/source")" = "$img/web-mid.qcow2"
check test "$(cat "$w/vda[2]/format")" = raw
grep -qx 'cluster-size: 512' "$w/vda/info" || fail "512-byte clusters"
grep -qx 'internal-snapshots: 2' "$w/vda/info" || fail "internal snapshots count"
# A network source is listed, never opened.
check test "$(cat "$w/vdb[1]/type")" = network
check test "$(cat "$w/vdb[1]/source")" = "nbd://storage.example.com:10809/export"
check test "$(ls "$w/vdb[1]" | tr '\n' ' ')" = "format info source type "
grep -q "protocol='nbd'" "$w/vdb.xml" || fail "vdb.xml lacks the network backing"
# An explicit chain with its terminator; an empty cdrom has no entry.
l=$mnt/legacy/disks
check test "$(ls "$l" | tr '\n' ' ')" = "vda vda.xml vda[1] "
check test "$(cat "$l/vda[1]/source")" = "$img/legacy-base.qcow2"
# Broken images: an error in info, the rest of the tree fine, no data file.
b=$mnt/broken/disks
grep -q '^error: .*missing.qcow2' "$b/vda/info" || { cat "$b/vda/info"; fail "missing image error"; }
grep -q '^error: ' "$b/vdb/info" || { cat "$b/vdb/info"; fail "truncated image error"; }
expect_fail 'No such file' stat "$b/vda/data"
check test "$(cat "$mnt/broken/uuid")" = 0a0b0c0d-ffff-4010-8111-121314151617
umount_fs
echo ok
