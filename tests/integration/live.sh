#!/bin/bash
# live.sh: a store in use on a live host. A private libvirtd (tests/integration/libvirtd.sh)
# runs TCG guests from the mounted store: `state` follows them, every change to a running or
# paused domain and to any domain while the daemon runs is refused (EBUSY, ctl/result says
# what runs and which virsh command to use), reads keep working, the data of an image a qemu
# writes opens with EBUSY; then a qemu started by hand, which libvirt knows nothing of, blocks
# changes to the domain whose image it holds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"
command -v qemu-io > /dev/null || fail "qemu-io is needed (scripts/deps.sh installs qemu-utils)"

img=$work/img
mkdir -p "$img"
qemu-img create -q -f qcow2 "$img/vm.qcow2" 16M
qemu-img create -q -f qcow2 "$img/other.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$img/vm.qcow2" > /dev/null

lv_start "$work/lv"
lv_guest vm "$img/vm.qcow2"
lv_guest other "$img/other.qcow2"
lv snapshot-create-as vm s0 --disk-only > /dev/null || fail "virsh snapshot-create-as"
store=$LV_STORE
q=$store/qemu

# sums FILE...: the bytes of the store's metadata and of every image, to compare
sums() { find "$q" "$img" -maxdepth 3 -type f \( -name '*.xml' -o -name '*.qcow2' -o -name '*.s[0-9]' \) \
    -print0 | sort -z | xargs -0 sha256sum; }
# wait_state DOM WORD: polls DOM's state file until it says WORD (a few seconds at most)
wait_state() {
    for _ in $(seq 50); do
        [ "$(cat "$mnt/$1/state")" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1/state is '$(cat "$mnt/$1/state")', expected '$2'"
}
# wait_lock IMAGE: until a qemu holds IMAGE's lock that forbids other writers (byte 201)
wait_lock() {
    local ino
    ino=$(stat -c %i "$1")
    for _ in $(seq 300); do
        awk -v ino=":$ino\$" '$2 == "OFDLCK" && $6 ~ ino && $7 == 201 { f = 1 } END { exit !f }' \
            /proc/locks && return 0
        sleep 0.1
    done
    fail "no qemu lock on $1"
}
# refused DOM CTL PAYLOAD TEXT: the write fails with EBUSY, ctl/result holds TEXT
refused() {
    expect_fail "Device or resource busy" bash -c "echo '$3' > '$mnt/$1/ctl/$2'"
    grep -qF -- "$4" "$mnt/$1/ctl/result" ||
        fail "$1/ctl/$2: result '$(cat "$mnt/$1/ctl/result")', expected '$4'"
}

mount_fs -o "run_dir=$LV_RUN"
grep -qF "a libvirt daemon (pid $LV_PID) is in charge of this store" "$work/log" ||
    fail "the daemon is not logged at mount"
grep -qF "make them with virsh -c $LV_URI, or mount it with snapfs -c $LV_URI" "$work/log" ||
    fail "the daemon's URI is not logged"
check test "$(cat "$mnt/vm/state")" = "shut off"
check test "$(cat "$mnt/other/state")" = "shut off"

# the daemon runs: any domain's change would be overwritten by it
sums > "$work/before"
refused other create o1 "a libvirt daemon (pid $LV_PID) is in charge of this store"
refused other create o1 "use virsh -c $LV_URI snapshot-create-as other NAME --disk-only"
refused vm revert s0 "use virsh -c $LV_URI snapshot-revert vm s0"
expect_fail "Device or resource busy" ln -sfn snapshots/s0 "$mnt/vm/current"
expect_fail "Device or resource busy" bash -c "echo '<domain/>' > '$mnt/ctl/define'"
sums | cmp - "$work/before" || fail "a refused change changed the store or an image"

# a domain started while the mount is up
lv start vm > /dev/null || fail "virsh start"
wait_state vm running
qpid=$(cat "$LV_RUN/vm.pid")
sums > "$work/before"
for op in "create s1 snapshot-create-as vm NAME" "revert s0 snapshot-revert vm s0" \
          "genid new edit vm" "delete s0 snapshot-delete vm s0" "backup cancel-me backup-begin vm"; do
    set -- $op
    refused vm "$1" "$2" "domain 'vm' is running (qemu pid $qpid): use virsh -c $LV_URI ${*:3}"
done
sums | cmp - "$work/before" || fail "a refused change to the running domain changed something"

# reads keep working; the top qemu writes opens with EBUSY, what is below it reads
grep -q "<name>vm</name>" "$mnt/vm/domain.xml" || fail "domain.xml"
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.s0"
expect_fail "Device or resource busy" cat "$mnt/vm/disks/vda/data"
qemu-img convert -U -O raw "$img/vm.qcow2" "$work/vm.raw"
cmp "$mnt/vm/disks/vda[1]/data" "$work/vm.raw" || fail "vda[1] data"
cmp "$mnt/vm/snapshots/s0/disks/vda/data" "$work/vm.raw" || fail "s0's disk data"

lv suspend vm > /dev/null || fail "virsh suspend"
wait_state vm paused
refused vm create s2 "domain 'vm' is paused (qemu pid $qpid)"
lv resume vm > /dev/null
wait_state vm running
lv destroy vm > /dev/null || fail "virsh destroy"
wait_state vm "shut off"
refused vm create s1 "a libvirt daemon (pid $LV_PID) is in charge of this store"
umount_fs

# without a daemon: a qemu started by hand on other's image, unknown to libvirt
lv_stop
lines=$(wc -l < "$work/log")
mount_fs -o "run_dir=$LV_RUN"
tail -n +$((lines + 1)) "$work/log" | grep "libvirt daemon" && fail "a stopped daemon is still reported"
qemu-system-x86_64 -machine none -S -display none -nodefaults -monitor none -serial none \
    -drive "file=$img/other.qcow2,if=none,id=d0,format=qcow2" > /dev/null 2>&1 &
hand=$!
trap 'kill $hand 2> /dev/null || :; cleanup' EXIT
wait_lock "$img/other.qcow2"
sums > "$work/before"
check test "$(cat "$mnt/other/state")" = "shut off"
refused other create o1 "domain 'other' is busy: image '$img/other.qcow2' is in use: a running qemu writes it"
refused other genid new "stop that process first"
expect_fail "Device or resource busy" cat "$mnt/other/disks/vda/data"
sums | cmp - "$work/before" || fail "a refused change under the hand-started qemu changed something"
kill "$hand"
wait "$hand" 2> /dev/null || :
trap cleanup EXIT
echo o1 > "$mnt/other/ctl/create" || fail "create once the qemu is gone: $(cat "$mnt/other/ctl/result")"
check test "$(cat "$mnt/other/disks/vda/source")" = "$img/other.o1"
# a base image that another process only reads (a VM sharing it) refuses nothing
qemu-io -r -f qcow2 -c 'sleep 600000' "$img/vm.qcow2" > /dev/null 2>&1 &
reader=$!
trap 'kill $reader 2> /dev/null || :; cleanup' EXIT
wait_lock "$img/vm.qcow2"
echo s1 > "$mnt/vm/ctl/create" || fail "create on vm once the daemon is gone: $(cat "$mnt/vm/ctl/result")"
check test "$(cat "$mnt/vm/disks/vda/source")" = "$img/vm.s1"
kill "$reader"
wait "$reader" 2> /dev/null || :

# qemu's own lock behind the checks: deleting s1's data commits vm.s1 into vm.s0, which a
# reader holds: qemu-img fails, its message comes back, no image and no metadata file changes
# (the delete's journal stays: it is tried again at the domain's next change)
qemu-io -r -f qcow2 -c 'sleep 600000' "$img/vm.s0" > /dev/null 2>&1 &
reader=$!
trap 'kill $reader 2> /dev/null || :; cleanup' EXIT
wait_lock "$img/vm.s0"
sums > "$work/before"
if echo s1 2> /dev/null > "$mnt/vm/ctl/delete"; then fail "delete of s1 committed into an image in use"; fi
grep -q 'Failed to get "write" lock\|Failed to get shared "write" lock' "$mnt/vm/ctl/result" ||
    fail "delete s1: result '$(cat "$mnt/vm/ctl/result")'"
sums | cmp - "$work/before" || fail "a failed commit changed the store or an image"
kill "$reader"
trap cleanup EXIT
umount_fs
