#!/bin/bash
# daemon-crash.sh: snapfs -c URI while the libvirt daemon hangs or dies under it, with a
# running TCG guest. A daemon that hangs (SIGSTOP) costs EIO within the keepalive bound, and
# while one request waits on it, requests for what the mount has loaded answer; a daemon
# killed in the middle of a create or an import costs a clear error (or the change, if the
# daemon made it first), and once it is back the mount shows exactly what virsh lists.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/libvirtd.sh"
"$FS" --help 2>&1 | grep -q -- '--connect' || { echo "built without libvirt"; exit 77; }

img=$work/img
mkdir -p "$img"
chmod 777 "$img"   # the session daemon runs as an unprivileged user: it makes the overlays
qemu-img create -q -f qcow2 "$img/vm.qcow2" 16M
chmod 666 "$img/vm.qcow2"

lv_start "$work/lv"
lv_guest vm "$img/vm.qcow2"
lv start vm > /dev/null || fail "virsh start"
mount_args -c "$LV_URI"
result() { cat "$mnt/vm/ctl/result"; }
check test "$(cat "$mnt/vm/state")" = running
cat "$mnt/vm/domain.xml" > "$work/domain.xml"

# snapshots: what the mount lists, and what virsh lists, one name a line, sorted
mount_snaps() { ls "$mnt/vm/snapshots" | sort; }
virsh_snaps() { lv snapshot-list vm --name | sed '/^$/d' | sort; }
# waits (up to 10 s) until the mount answers for the domain again and lists what virsh lists
wait_agree() {
    for _ in $(seq 100); do
        cat "$mnt/vm/state" > /dev/null 2>&1 && [ "$(mount_snaps)" = "$(virsh_snaps)" ] && return 0
        sleep 0.1
    done
    fail "the mount lists '$(mount_snaps | tr '\n' ' ')', virsh '$(virsh_snaps | tr '\n' ' ')'"
}

# A hung daemon: a request that needs it fails with EIO once keepalive gives up (3 probes
# 2 s apart); `timeout` only catches a hang, far above that bound.
kill -STOP "$LV_PID"
(rc=0; timeout 30 cat "$mnt/vm/state" > "$work/state.out" 2> "$work/state.err" || rc=$?
 echo $rc > "$work/state.rc") &
waiter=$!
sleep 0.5
# while that request waits on the daemon, what the mount has loaded still reads
timeout 20 cat "$mnt/vm/domain.xml" > "$work/domain.again" ||
    fail "domain.xml waited on the hung daemon (rc $?)"
cmp "$work/domain.xml" "$work/domain.again" || fail "domain.xml changed"
timeout 20 ls "$mnt/vm/snapshots" > /dev/null || fail "ls waited on the hung daemon (rc $?)"
wait "$waiter"
check test "$(cat "$work/state.rc")" = 1
grep -q 'Input/output error' "$work/state.err" || fail "state on a hung daemon: $(cat "$work/state.err")"
expect_fail 'Input/output error' timeout 30 bash -c "echo h1 > '$mnt/vm/ctl/create'"
grep -q "does not answer" "$mnt/vm/ctl/result" || fail "hung daemon: $(result)"
kill -CONT "$LV_PID"
# it answers again: the mount connects again (one attempt a second) and the create works
wait_agree
echo h2 > "$mnt/vm/ctl/create" || fail "create h2 once the daemon answers: $(result)"
check test "$(virsh_snaps | tr '\n' ' ')" = "h2 "

# kill_during TAG FILE CTL: writes FILE to control file CTL while the daemon is killed
# (SIGKILL): the write fails with EIO and ctl/result says why, or it succeeded if the daemon
# finished first. Then a new daemon is started (it finds the running guests again).
kill_during() {
    local writer
    (rc=0; cat "$2" > "$3" || rc=$?; echo $rc > "$work/$1.rc") 2> "$work/$1.err" &
    writer=$!
    sleep 0.05
    kill -KILL "$LV_PID"
    wait "$writer"
    if [ "$(cat "$work/$1.rc")" != 0 ]; then
        grep -q 'Input/output error' "$work/$1.err" || fail "$1 cut off: $(cat "$work/$1.err")"
        result | grep -q '^error: ' || fail "$1 cut off: $(result)"
    fi
    wait "$LV_PID" 2> /dev/null || :
    lv_start "$work/lv"
}

# A daemon killed in the middle of a create on the running guest: once a new daemon runs,
# the mount lists what virsh lists.
echo k1 > "$work/k1"
kill_during k1 "$work/k1" "$mnt/vm/ctl/create"
wait_agree
check test "$(cat "$mnt/vm/state")" = running
# qemu writes the image the mount names as the domain's disk
lv domblklist vm | grep -q "vda .*$(cat "$mnt/vm/disks/vda/source")\$" ||
    fail "vda: the mount says $(cat "$mnt/vm/disks/vda/source"), virsh $(lv domblklist vm)"

# A daemon killed in the middle of an import of 40 documents: whatever it had recorded, the
# mount shows the same, and a new write works.
lv destroy vm > /dev/null
lv snapshot-dumpxml vm h2 --security-info > "$work/h2.xml"
for i in $(seq 40); do
    parent=""
    [ "$i" -gt 1 ] && parent="<parent><name>i$((i - 1))</name></parent>"
    sed "0,\\|<name>h2</name>|s||<name>i$i</name>$parent|" "$work/h2.xml"
done > "$work/import.xml"
kill_during import "$work/import.xml" "$mnt/vm/ctl/import"
wait_agree
echo k2 > "$mnt/vm/ctl/create" || fail "create k2 after the restart: $(result)"
virsh_snaps | grep -qx k2 || fail "virsh does not list k2"
wait_agree
umount_fs
echo ok
