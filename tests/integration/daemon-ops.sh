#!/bin/bash
# daemon-ops.sh: what snapfs -c URI does itself where libvirt 9.0 has no call, on a real private
# libvirtd (tests/integration/libvirtd.sh), each checked with virsh on the same daemon: the
# external revert of a shut-off domain (new overlays, the domain defined on them, the snapshot
# current; a failing step leaves nothing), clearing the current snapshot, the backup of a
# shut-off domain (the files backend's engine: job, backup.xml, cancel, a written image
# refused), and an import that fails part-way leaving none of its snapshots.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"
lv_snapfs_ready
img=$work/img
lv_image_dir "$img"
for f in vm a b; do
    qemu-img create -q -f qcow2 "$img/$f.qcow2" 16M
    chmod 666 "$img/$f.qcow2"
done
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$img/vm.qcow2" > /dev/null

lv_start "$work/lv"
lv_guest vm "$img/vm.qcow2"
lv_guest two "$img/a.qcow2" "$img/b.qcow2"
mount_args -c "$LV_URI"
v=$mnt/vm
result() { cat "$mnt/$1/ctl/result"; }
pattern() { head -c 65536 /dev/zero | tr '\0' "\\$1"; }   # pattern OCTAL: 64 KiB of it
waitsnap() {   # a snapshot made by virsh shows up within about a second
    for _ in $(seq 30); do [ -d "$mnt/$1/snapshots/$2" ] && return 0; sleep 0.1; done
    fail "snapshot $1/$2 does not show up"
}
current() { lv snapshot-current "$1" --name 2>&1; }

# Two disk-only snapshots of the shut-off domain, made by the daemon; the guest's data
# differs at each point: 0x11 in vm.qcow2 (s1 captured it), 0x22 in vm.s1 (s2), 0x33 in vm.s2.
echo s1 > "$v/ctl/create" || fail "create s1: $(result vm)"
qemu-io -f qcow2 -c 'write -P 0x22 0 64k' "$img/vm.s1" > /dev/null
echo s2 > "$v/ctl/create" || fail "create s2: $(result vm)"
qemu-io -f qcow2 -c 'write -P 0x33 0 64k' "$img/vm.s2" > /dev/null
check test "$(current vm)" = s2

# External revert (libvirt 9.0: "revert to external snapshot not supported yet"): a new
# overlay IMAGE.SNAP-1 on the image s1 captured, the domain defined on it, s1 current.
echo s1 > "$v/ctl/revert" || fail "revert s1: $(result vm)"
check test "$(result vm)" = "Domain snapshot s1 reverted"
check test "$(lv domblklist vm | awk '$1 == "vda" { print $2 }')" = "$img/vm.s1-1"
check test "$(current vm)" = s1
qemu-img info --output=json "$img/vm.s1-1" > "$work/info"
grep -q "\"backing-filename\": \"$img/vm.qcow2\"" "$work/info" || fail "$(cat "$work/info")"
grep -q '"backing-filename-format": "qcow2"' "$work/info" || fail "$(cat "$work/info")"
# no more readable than the image it is built on
check test "$(stat -c %a:%u:%g "$img/vm.s1-1")" = "$(stat -c %a:%u:%g "$img/vm.qcow2")"
for _ in $(seq 30); do
    [ "$(cat "$v/disks/vda/source")" = "$img/vm.s1-1" ] && break
    sleep 0.1
done
check test "$(cat "$v/disks/vda/source")" = "$img/vm.s1-1"
check test "$(readlink "$v/current")" = snapshots/s1
cmp <(head -c 65536 "$v/disks/vda/data") <(pattern 021) || fail "the disk after revert to s1"
check test -e "$img/vm.s1"   # nothing is deleted
check test -e "$img/vm.s2"
# Revert to s2: its captured image is vm.s1 (0x22); the daemon starts the VM on the result.
echo s2 > "$v/ctl/revert" || fail "revert s2: $(result vm)"
check test "$(lv domblklist vm | awk '$1 == "vda" { print $2 }')" = "$img/vm.s2-1"
check test "$(current vm)" = s2
check test "$(stat -c %a:%u:%g "$img/vm.s2-1")" = "$(stat -c %a:%u:%g "$img/vm.s1")"
lv start vm > /dev/null || fail "virsh start on the reverted definition"
out=$(lv qemu-monitor-command vm --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "read -P 0x22 0 64k"')
echo "$out" | grep -q 'Pattern verification failed' && fail "the running VM does not read s2's data"
check test "$(lv snapshot-list vm --name | sed '/^$/d' | tr '\n' ' ')" = "s1 s2 "

# A revert whose second disk fails (its image is gone: qemu-img create fails) changes
# nothing: the first disk's new overlay is removed, the definition and current stay.
echo t1 > "$mnt/two/ctl/create" || fail "create t1: $(result two)"
echo t2 > "$mnt/two/ctl/create" || fail "create t2: $(result two)"
lv domblklist two > "$work/before"
mv "$img/b.qcow2" "$img/b.away"
expect_fail 'error' bash -c "echo t1 > '$mnt/two/ctl/revert'"
result two | grep -q "^error: .*b.qcow2" || fail "failed revert: $(result two)"
mv "$img/b.away" "$img/b.qcow2"
check test ! -e "$img/a.t1-1"
check test ! -e "$img/b.t1-1"
lv domblklist two | diff "$work/before" - || fail "a failed revert changed the definition"
check test "$(current two)" = t2

# Clearing the current snapshot (of the running VM). libvirt has no call; a redefine of the
# current snapshot without CURRENT keeps it current (so that is not the way):
lv snapshot-dumpxml vm s2 --security-info > "$work/s2.xml"
lv snapshot-create vm "$work/s2.xml" --redefine > /dev/null || fail "virsh redefine s2"
check test "$(current vm)" = s2
rm "$v/current" || fail "rm current: $(result vm)"
check test "$(result vm)" = "domain 'vm' has no current snapshot now"
current vm | grep -q "has no current snapshot" || fail "virsh: $(current vm)"
check test ! -e "$v/current"
check test "$(lv snapshot-list vm --name | sed '/^$/d' | tr '\n' ' ')" = "s1 s2 "
check test "$(lv snapshot-parent vm s2)" = s1
lv snapshot-list vm --roots --name | sed '/^$/d' | grep -qvx s1 && fail "a temporary root is left"
ln -sfn snapshots/s1 "$v/current" || fail "ln -sfn: $(result vm)"
check test "$(current vm)" = s1
lv destroy vm > /dev/null

# An import whose third document fails (its parent does not exist) leaves none of the two
# before it defined.
for n in i1 i2 i3; do
    sed -e "s|<name>s1</name>|<name>$n</name>|" "$mnt/vm/snapshots/s1/snapshot.secure.xml"
done > "$work/import.xml"
sed -i -e '0,/<name>i2<\/name>/s||<name>i2</name><parent><name>i1</name></parent>|' \
    -e '0,/<name>i3<\/name>/s||<name>i3</name><parent><name>nosuch</name></parent>|' "$work/import.xml"
expect_fail 'error' bash -c "cat '$work/import.xml' > '$v/ctl/import'"
result vm | grep -q "nosuch" || fail "import: $(result vm)"
check test "$(lv snapshot-list vm --name | sed '/^$/d' | tr '\n' ' ')" = "s1 s2 "
check test "$(current vm)" = s1
# the same documents without the failing one go in, parents first
sed '/<name>i3<\/name>/,$d' "$work/import.xml" | sed '$d' > "$work/import2.xml"
grep -c '<domainsnapshot>' "$work/import2.xml" | grep -qx 2 || fail "import2.xml"
cat "$work/import2.xml" > "$v/ctl/import" || fail "import: $(result vm)"
check test "$(lv snapshot-parent vm i2)" = i1

# A backup of the shut-off domain (libvirt 9.0 refuses it): snapfs's own engine reads the
# images the daemon's definition names.
for n in b1 b2 big big2; do
    echo "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$img/$n.raw'/></disk></disks></domainbackup>" \
        > "$work/$n.xml"
done
cat "$work/b1.xml" > "$v/ctl/backup" || fail "backup: $(result vm)"
for _ in $(seq 300); do grep -q '^backup completed' "$v/job" && break; sleep 0.1; done
grep -q '^backup completed 65536/65536 bytes' "$v/job" || fail "job: $(cat "$v/job")"
grep -q "<target file='$img/b1.raw'/>" "$v/backup.xml" || fail "backup.xml: $(cat "$v/backup.xml")"
cmp "$img/b1.raw" "$v/disks/vda/data" || fail "the backup differs from the disk"
# A process that writes an image (qemu-io holds the write lock) refuses it, saying so.
mkfifo "$work/fifo"
qemu-io -f qcow2 "$img/vm.s2-1" < "$work/fifo" > /dev/null 2>&1 &
holder=$!
exec 3> "$work/fifo"   # qemu-io runs until this closes
for _ in $(seq 50); do
    qemu-io -r -f qcow2 -c 'read 0 512' "$img/vm.s2-1" > /dev/null 2>&1 || break
    sleep 0.1
done
expect_fail 'Device or resource busy' bash -c "cat '$work/b2.xml' > '$v/ctl/backup'"
exec 3>&-
wait $holder || :
result vm | grep -q "^error: domain 'vm' is busy: .*vm.s2-1" || fail "written image: $(result vm)"
check test ! -e "$img/b2.raw"
# Cancel: a disk big enough to still be read when the cancel comes; meanwhile a create of
# the domain waits (EBUSY), as does a second backup, and the domain does not start (the
# backup holds qemu's read locks on its images, as qemu-img would).
# 4 GiB of data: the checks below include a `virsh start`, which takes a second or more
qemu-img create -q -f qcow2 "$img/big.qcow2" 4G
for g in 0 1 2 3; do   # qemu-io writes at most 2 GiB at a time
    qemu-io -f qcow2 -c "write -P 0x5a ${g}G 1G" "$img/big.qcow2" > /dev/null
done
chmod 666 "$img/big.qcow2"
lv_guest big "$img/big.qcow2"
for _ in $(seq 30); do [ -d "$mnt/big" ] && break; sleep 0.1; done
cat "$work/big.xml" > "$mnt/big/ctl/backup" || fail "big backup: $(result big)"
case "$(cat "$mnt/big/job")" in "backup running "*/4294967296" bytes "*) ;;
    *) fail "job while running: $(cat "$mnt/big/job")" ;; esac
expect_fail 'Device or resource busy' bash -c "echo x1 > '$mnt/big/ctl/create'"
expect_fail 'Device or resource busy' bash -c "cat '$work/big2.xml' > '$mnt/big/ctl/backup'"
expect_fail 'lock' lv start big
echo cancel > "$mnt/big/ctl/backup" || fail "cancel: $(result big)"
for _ in $(seq 300); do grep -q '^backup running' "$mnt/big/job" || break; sleep 0.1; done
grep -q '^backup cancelled' "$mnt/big/job" || fail "after cancel: $(cat "$mnt/big/job")"
check test -z "$(ls "$img" | grep '^big.*raw')"   # no target, no temporary file
check test -z "$(lv snapshot-list big --name | sed '/^$/d')"
lv start big > /dev/null || fail "the images are still locked after the backup"
lv destroy big > /dev/null
umount_fs
echo ok
