#!/bin/bash
# daemon-live.sh: snapfs -c URI on a real private libvirtd (tests/integration/libvirtd.sh) with
# a running TCG guest: the tree is the daemon's, state follows the guest, a disk-only snapshot
# made through the mount on the running VM is the daemon's own (virsh lists it, qemu writes the
# new overlay) and a point in time (the guest's write after it is not in it), disks/ of the
# running VM is its live chain as libvirt numbers it (the top qemu writes is EBUSY, the rest
# reads) and the inactive one once it stops, a delete through
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
# vda's chain as virsh's XML $1 names it, one "LABEL PATH" line per element, sorted: vda the
# top; below it vda[N], N the <backingStore index='N'> of a running domain, else the depth.
chain_of() {
    python3 -c '
import sys, xml.etree.ElementTree as ET
disk = next(d for d in ET.parse(sys.argv[1]).iter("disk") if d.find("target").get("dev") == "vda")
print("vda", disk.find("source").get("file"))
b, depth = disk.find("backingStore"), 1
while b is not None and b.get("type"):
    print("vda[%s]" % (b.get("index") or depth), b.find("source").get("file"))
    b, depth = b.find("backingStore"), depth + 1
' "$1" | sort
}
# The same from the mount: each chain element in disks/ and its source, and disks/'s listing.
mount_chain() {
    local d
    for d in "$mnt/vm/disks"/vda*; do
        [ -d "$d" ] && echo "$(basename "$d") $(cat "$d/source")"
    done | sort
}
# disks/ is vda's chain of virsh's XML $1 (labels, paths, the backing links), within 3 s.
check_chain() {
    local label next
    chain_of "$1" > "$work/want.chain"
    for _ in $(seq 30); do
        mount_chain | cmp -s - "$work/want.chain" && break
        sleep 0.1
    done
    mount_chain | diff "$work/want.chain" - || fail "disks/ is not vda's chain in $1"
    check test "$(ls "$mnt/vm/disks")" = "$({ cut -d' ' -f1 "$work/want.chain"; echo vda.xml; } | sort)"
    # each element's backing link names the label of the one below it, as the XML nests them
    python3 -c '
import sys, xml.etree.ElementTree as ET
disk = next(d for d in ET.parse(sys.argv[1]).iter("disk") if d.find("target").get("dev") == "vda")
b, depth, label = disk.find("backingStore"), 1, "vda"
while b is not None and b.get("type"):
    below = "vda[%s]" % (b.get("index") or depth)
    print(label, "../" + below)
    b, depth, label = b.find("backingStore"), depth + 1, below
' "$1" > "$work/want.links"
    while read -r label next; do
        check test "$(readlink "$mnt/vm/disks/$label/backing")" = "$next"
    done < "$work/want.links"
}
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
check test "$(ls "$mnt/vm/disks" | tr '\n' ' ')" = "vda vda.xml "
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.qcow2"
echo s1 > "$mnt/vm/ctl/create" || fail "create s1 on the running VM: $(result)"
check test "$(result)" = "Domain snapshot s1 created"
# at once: disks/vda is the new overlay, what was the top is below it
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.s1"
check test "$(cat "$mnt/vm/disks/vda[1]/source")" = "$img/vm.qcow2"
check test "$(lv snapshot-list vm --name | sed '/^$/d')" = s1
lv domblklist vm | grep -q "vda .*$img/vm.s1" || fail "qemu does not write the overlay: $(lv domblklist vm)"
# the guest writes after the snapshot, through qemu's monitor, into the new overlay
out=$(lv qemu-monitor-command vm --hmp 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x22 0 64k"') ||
    fail "write through the monitor"
echo "$out" | grep -qi 'error' && fail "write through the monitor: $out"
for _ in $(seq 30); do [ -d "$mnt/vm/snapshots/s1" ] && break; sleep 0.1; done
check test "$(readlink "$mnt/vm/current")" = snapshots/s1
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.s1"
# disks/ follows the running definition: the paths virsh domblklist and dumpxml give, the
# chain below the top numbered by libvirt (vda[1]: <backingStore index='1'>)
check test "$(lv domblklist vm | awk '$1 == "vda" { print $2 }')" = "$img/vm.s1"
lv dumpxml vm > "$work/live.xml"
grep -q "<backingStore type='file' index='1'>" "$work/live.xml" ||
    fail "libvirt numbers the chain otherwise: $(grep backingStore "$work/live.xml")"
check test "$(ls "$mnt/vm/disks" | tr '\n' ' ')" = "vda vda.xml vda[1] "
check_chain "$work/live.xml"
# s1's disk is the image under the overlay: the guest's later write is not in it
head -c 65536 /dev/zero | tr '\0' '\021' > "$work/p11"
cmp <(head -c 65536 "$mnt/vm/snapshots/s1/disks/vda/data") "$work/p11" ||
    fail "s1's data is not its point in time"
# the overlay qemu writes opens with EBUSY, and the log says which image and why (qemu's
# write lock); the base under it reads as qemu-img reads the file
expect_fail 'Device or resource busy' cat "$mnt/vm/disks/vda/data"
grep -q "vm/disks/vda/data: image '$img/vm.s1' is in use: a running qemu writes it" "$work/log" ||
    fail "the log does not say why vda/data is busy"
qemu-img convert -U -f qcow2 -O raw "$img/vm.qcow2" "$work/base.raw"
cmp "$work/base.raw" "$mnt/vm/disks/vda[1]/data" || fail "vda[1]/data is not the base image"
cmp <(head -c 65536 "$mnt/vm/disks/vda[1]/data") "$work/p11" || fail "vda[1] data"

# A snapshot made with virsh shows up in the mount; a delete through the mount reaches virsh.
lv snapshot-create-as vm s2 --disk-only --atomic > /dev/null || fail "virsh snapshot-create-as"
for _ in $(seq 30); do [ -d "$mnt/vm/snapshots/s2" ] && break; sleep 0.1; done
check test -d "$mnt/vm/snapshots/s2"
check test "$(readlink "$mnt/vm/snapshots/s2/parent")" = ../s1
# a chain of three: libvirt's numbers are not the depth (vda[2] is s1's overlay, vda[1] the base)
lv dumpxml vm > "$work/live.xml"
check_chain "$work/live.xml"
check test "$(cat "$mnt/vm/disks/vda[2]/source")" = "$img/vm.s1"
expect_fail 'Device or resource busy' cat "$mnt/vm/disks/vda/data"
cmp "$work/base.raw" "$mnt/vm/disks/vda[1]/data" || fail "vda[1]/data in a chain of three"
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
# A block job changes the running chain: a commit of s1's overlay into the base, named as
# disks/ names it (libvirt's vda[N]), leaves it out of disks/ (the job's event)
lv dumpxml vm > "$work/live.xml"
top=$(chain_of "$work/live.xml" | awk -v p="$img/vm.s1" '$2 == p { print $1 }')
check test -n "$top"
check test "$(cat "$mnt/vm/disks/$top/source")" = "$img/vm.s1"
lv blockcommit vm vda --top "$top" --wait > /dev/null || fail "virsh blockcommit --top $top"
lv dumpxml vm > "$work/live.xml"
! grep -q "$img/vm.s1" "$work/live.xml" || fail "libvirt still runs vm.s1"
check_chain "$work/live.xml"
for _ in $(seq 30); do [ -e "$mnt/vm/disks/$top" ] || break; sleep 0.1; done   # the kernel's cache
check test ! -e "$mnt/vm/disks/$top"

lv destroy vm > /dev/null
wait_state "shut off"
check test ! -e "$mnt/vm/domain.live.xml"
# stopped, disks/ follows the inactive definition again (no indexes: the depth)
lv dumpxml --inactive vm > "$work/inactive.xml"
check_chain "$work/inactive.xml"
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
