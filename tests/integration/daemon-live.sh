#!/bin/bash
# daemon-live.sh: snapfs -c URI on a real private libvirtd (tests/integration/libvirtd.sh) with
# a running TCG guest: the tree is the daemon's, state follows the guest, a disk-only snapshot
# made through the mount on the running VM is the daemon's own (virsh lists it, qemu writes the
# new overlay) and a point in time (the guest's write after it is not in it), a delete through
# the mount is seen by virsh, a change made with virsh shows up in the mount, a push backup
# is the daemon's job, and a daemon
# that goes away and comes back costs errors that say so, never a hang.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"
lv_snapfs_ready
img=$work/img
lv_image_dir "$img"
qemu-img create -q -f qcow2 "$img/vm.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$img/vm.qcow2" > /dev/null
chmod 666 "$img/vm.qcow2"

lv_start "$work/lv"
lv_guest vm "$img/vm.qcow2"
mount_args -c "$LV_URI"
result() { cat "$mnt/vm/ctl/result"; }
wait_state() {
    for _ in $(seq 50); do
        [ "$(cat "$mnt/vm/state")" = "$1" ] && return 0
        sleep 0.1
    done
    fail "vm/state is '$(cat "$mnt/vm/state")', expected '$1'"
}

check test "$(ls "$mnt" | tr '\n' ' ')" = "ctl vm "
check test "$(cat "$mnt/vm/state")" = "shut off"
check test ! -e "$mnt/vm/domain.live.xml"
lv dumpxml --inactive vm | sed '/^$/d' > "$work/want.xml"
diff "$work/want.xml" "$mnt/vm/domain.xml" || fail "domain.xml differs from virsh dumpxml --inactive"
lv start vm > /dev/null || fail "virsh start"
wait_state running
lv dumpxml vm | sed '/^$/d' > "$work/live.xml"
diff "$work/live.xml" "$mnt/vm/domain.live.xml" || fail "domain.live.xml differs from virsh dumpxml"

# A disk-only snapshot of the running VM through the mount: libvirt makes it (DISK_ONLY|ATOMIC)
echo s1 > "$mnt/vm/ctl/create" || fail "create s1 on the running VM: $(result)"
check test "$(result)" = "Domain snapshot s1 created"
check test "$(lv snapshot-list vm --name | sed '/^$/d')" = s1
lv domblklist vm | grep -q "vda .*$img/vm.s1" || fail "qemu does not write the overlay: $(lv domblklist vm)"
# the guest writes after the snapshot, through qemu's monitor, into the new overlay
out=$(lv qemu-monitor-command vm --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x22 0 64k"') ||
    fail "write through the monitor"
echo "$out" | grep -qi 'error' && fail "write through the monitor: $out"
for _ in $(seq 30); do [ -d "$mnt/vm/snapshots/s1" ] && break; sleep 0.1; done
check test "$(readlink "$mnt/vm/current")" = snapshots/s1
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.s1"
# s1's disk is the image under the overlay: the guest's later write is not in it
head -c 65536 /dev/zero | tr '\0' '\021' > "$work/p11"
cmp <(head -c 65536 "$mnt/vm/snapshots/s1/disks/vda/data") "$work/p11" ||
    fail "s1's data is not its point in time"
# the overlay qemu writes opens with EBUSY; the base under it reads
expect_fail 'Device or resource busy' cat "$mnt/vm/disks/vda/data"
cmp <(head -c 65536 "$mnt/vm/disks/vda[1]/data") <(head -c 65536 "$mnt/vm/snapshots/s1/disks/vda/data") ||
    fail "vda[1] data"

# A snapshot made with virsh shows up in the mount; a delete through the mount reaches virsh.
lv snapshot-create-as vm s2 --disk-only --atomic > /dev/null || fail "virsh snapshot-create-as"
for _ in $(seq 30); do [ -d "$mnt/vm/snapshots/s2" ] && break; sleep 0.1; done
check test -d "$mnt/vm/snapshots/s2"
check test "$(readlink "$mnt/vm/snapshots/s2/parent")" = ../s1
echo 's2 --metadata' > "$mnt/vm/ctl/delete" || fail "delete s2 --metadata: $(result)"
check test "$(lv snapshot-list vm --name | sed '/^$/d')" = s1
check test ! -e "$mnt/vm/snapshots/s2"
# A push backup of the running VM: the daemon's job (virDomainBackupBegin)
echo "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$img/b1.raw'/></disk></disks></domainbackup>" \
    > "$mnt/vm/ctl/backup" || fail "backup: $(result)"
grep -q "<target file='$img/b1.raw'/>" "$mnt/vm/backup.xml" || fail "backup.xml: $(cat "$mnt/vm/backup.xml")"
for _ in $(seq 300); do grep -q '^backup completed' "$mnt/vm/job" && break; sleep 0.1; done
grep -q '^backup completed 16777216/16777216 bytes' "$mnt/vm/job" || fail "job: $(cat "$mnt/vm/job")"
# --quiesce without a guest agent: libvirt's refusal in its words, nothing made
before=$(lv snapshot-list vm --name | sed '/^$/d' | sort)
if echo 'q1 --quiesce' > "$mnt/vm/ctl/create" 2> /dev/null; then fail "quiesce without an agent"; fi
result | grep -qi 'agent' || fail "quiesce: $(result)"
check test "$(lv snapshot-list vm --name | sed '/^$/d' | sort)" = "$before"
# --memory: a live snapshot with the guest's memory saved beside the disk
echo 'm1 --memory' > "$mnt/vm/ctl/create" || fail "create m1 --memory: $(result)"
check test -s "$img/vm.m1.mem"
lv snapshot-dumpxml vm m1 | grep -q "<memory snapshot='external' file='$img/vm.m1.mem'/>" ||
    fail "m1's memory: $(lv snapshot-dumpxml vm m1 | grep memory)"
for _ in $(seq 30); do [ -d "$mnt/vm/snapshots/m1" ] && break; sleep 0.1; done
check test "$(sed -n 1p "$mnt/vm/snapshots/m1/state")" = running
# libvirt's refusal comes back in its words (an external snapshot's revert of a running VM)
if echo s1 > "$mnt/vm/ctl/revert" 2> /dev/null; then fail "revert of an external snapshot ran"; fi
result | grep -q '^error: ' || fail "revert: $(result)"

lv destroy vm > /dev/null
wait_state "shut off"
check test ! -e "$mnt/vm/domain.live.xml"
# the guest's write landed in the overlay, after s1's point in time
qemu-io -r -f qcow2 -c 'read -P 0x22 0 64k' "$img/vm.s1" | grep -q 'Pattern verification failed' &&
    fail "the write through the monitor is not in the overlay"
cmp <(head -c 65536 "$mnt/vm/disks/vda/data") <(head -c 65536 /dev/zero | tr '\0' '\042') ||
    fail "the domain's data once it stopped"
# the backup holds the disk as it was when it began (the guest wrote nothing since)
cmp "$img/b1.raw" "$mnt/vm/disks/vda/data" || fail "the backup differs from the disk"

# The daemon goes away: what is loaded still reads; what needs the daemon fails with EIO and
# says why, at once (no request waits on it).
lv_stop
check test -n "$(cat "$mnt/vm/domain.xml")"
expect_fail 'Input/output error' cat "$mnt/vm/state"
expect_fail 'Input/output error' bash -c "echo s3 > '$mnt/vm/ctl/create'"
grep -q "does not answer" "$mnt/vm/ctl/result" || fail "no daemon: $(result)"
# Started again, the mount finds it (one attempt a second) and works as before.
lv_start "$work/lv"
for _ in $(seq 50); do cat "$mnt/vm/state" > /dev/null 2>&1 && break; sleep 0.1; done
check test "$(cat "$mnt/vm/state")" = "shut off"
echo s3 > "$mnt/vm/ctl/create" || fail "create s3 once the daemon is back: $(result)"
lv snapshot-list vm --name | grep -qx s3 || fail "virsh does not list s3"
check test "$(readlink "$mnt/vm/current")" = snapshots/s3
umount_fs
echo ok
