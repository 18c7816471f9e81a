#!/bin/bash
# journal.sh: kill -9 of snapfs in the middle of changes of images (an external delete
# merging a large overlay, internal snapshot creates and deletes across two disks, a
# backup); after a remount each change is finished or undone, every snapshot's data is
# what it was, no qemu-img is left running, and no temporary file is left behind.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
jdir=$store/qemu/snapshot/.snapfs-journal
mkdir -p "$work/out" "$work/fakebin"
# A qemu-img that cannot commit: the resume at mount fails, and the journal stays.
cat > "$work/fakebin/qemu-img" <<SH
#!/bin/sh
[ "\$1" = commit ] && { echo "qemu-img: commit refused by the test" >&2; exit 1; }
exec $(command -v qemu-img) "\$@"
SH
chmod +x "$work/fakebin/qemu-img"
# A qemu-img whose commits run at 16 MiB/s: the kills below land inside a commit.
mkdir -p "$work/slowbin"
cat > "$work/slowbin/qemu-img" <<SH
#!/bin/bash
[ "\$1" = commit ] && exec $(command -v qemu-img) commit -r 16M "\${@:2}"
exec $(command -v qemu-img) "\$@"
SH
chmod +x "$work/slowbin/qemu-img"

mount_fs
define() {   # define NAME DISKS: a minimal domain through the top ctl/define
    printf '%s' "<domain type='kvm'><name>$1</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>$2</devices></domain>" \
        > "$mnt/ctl/define" || fail "define $1: $(cat "$mnt/ctl/result")"
}
fdisk() {    # fdisk DEV PATH: a qcow2 file disk
    echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}
qemu-img create -q -f qcow2 "$img/big.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 16M' "$img/big.qcow2" > /dev/null
define big "$(fdisk vda "$img/big.qcow2")"
echo s1 > "$mnt/big/ctl/create" || fail "create s1: $(cat "$mnt/big/ctl/result")"
qemu-io -f qcow2 -c 'write -P 0x22 8M 16M' "$img/big.s1" > /dev/null
umount_fs
PATH=$work/slowbin:$PATH mount_fs

# sums FILE: "NAME SHA256" of every snapshot's vda data and of the domain's disk now.
sums() {
    local s
    for s in $(ls "$mnt/big/snapshots"); do
        echo "$s $(sha256sum < "$mnt/big/snapshots/$s/disks/vda/data" | cut -d' ' -f1)"
    done
    echo "now $(sha256sum < "$mnt/big/disks/vda/data" | cut -d' ' -f1)"
}
# no_qemu_img: no qemu-img of this test outlives the daemon that started it.
no_qemu_img() {
    for _ in $(seq 20); do
        pgrep -f "qemu-img .*$work" > /dev/null || return 0
        sleep 0.1
    done
    pgrep -af "qemu-img .*$work" >&2
    fail "$1: qemu-img still runs after snapfs was killed"
}
# kill_daemon: kill -9 of snapfs, then the mount point is cleaned up.
kill_daemon() {
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
}
# Compares the sums after a remount with those before: every snapshot left has its
# data, the domain's disk is unchanged, and the one deleted ($2) may be gone.
check_sums() {
    local when=$1 gone=$2 name sum
    sums > "$work/after"
    while read -r name sum; do
        if ! grep -q "^$name " "$work/after"; then
            [ "$name" = "$gone" ] || fail "$when: snapshot $name disappeared"
            continue
        fi
        grep -qx "$name $sum" "$work/after" || fail "$when: the data of $name changed"
    done < "$work/before"
    check test "$(wc -l < "$work/after")" -ge "$(($(wc -l < "$work/before") - 1))"
}

# ---- external delete killed while qemu-img commit merges 48 MiB --------------------------
# Killed as soon as the commit runs, and later (at a later delay the delete may have
# finished: then it is simply done); "fail" is killed at once and resumed in two mounts.
for delay in 0 0.5 1.5 5 fail; do
    s=r${delay/./}
    echo "$s" > "$mnt/big/ctl/create" || fail "create $s: $(cat "$mnt/big/ctl/result")"
    qemu-io -f qcow2 -c "write -P 0x$(printf %02x $((RANDOM % 200 + 16))) 12M 48M" "$img/big.$s" > /dev/null
    sums > "$work/before"
    (echo "$s" > "$mnt/big/ctl/delete") 2>/dev/null &
    writer=$!
    for _ in $(seq 3000); do
        pgrep -f "qemu-img commit .*big.$s" > /dev/null && break
        sleep 0.01
    done
    pgrep -f "qemu-img commit .*big.$s" > /dev/null || fail "$s: no commit seen"
    [ "$delay" = fail ] || sleep "$delay"
    kill_daemon
    wait "$writer" 2>/dev/null || true
    no_qemu_img "$s"
    pending=0
    [ -e "$jdir/big" ] && pending=1
    if [ "$delay" = fail ]; then
        # The resume at mount cannot commit: the delete stays pending, the tree says so,
        # and nothing changes the domain (a revert least of all) until it is resolved.
        PATH=$work/fakebin:$PATH mount_fs
        grep -q "interrupted delete of snapshot '$s' of domain 'big' cannot be finished" "$work/log" ||
            fail "no warning about the unresolved delete"
        check test "$(sed -n 2p "$mnt/big/snapshots/$s/state")" = "deleting (interrupted)"
        grep -qx "snapshot: deleting (interrupted)" "$mnt/big/snapshots/$s/disks/vda/info" ||
            fail "info does not show the pending delete"
        expect_fail 'Device or resource busy' bash -c "echo $s > '$mnt/big/ctl/revert'"
        grep -q "interrupted delete of snapshot '$s'.*commit refused by the test" \
            "$mnt/big/ctl/result" || fail "revert refusal: $(cat "$mnt/big/ctl/result")"
        expect_fail 'Device or resource busy' bash -c "echo s1 > '$mnt/big/ctl/revert'"
        check test -f "$jdir/big"
        fusermount3 -u "$mnt"
        wait "$pid" || true
        pid=""
        sed -i 's/WARNING/warning (expected)/' "$work/log"
    fi
    mount_fs
    if [ "$pending" = 1 ]; then
        grep -q "domain 'big': resolved the interrupted delete of snapshot '$s'" "$work/log" ||
            fail "$s: the delete was not resolved at mount"
    fi
    check test ! -e "$jdir/big"
    check_sums "$s" "$s"
    [ "$delay" = 0 ] && [ "$pending" = 0 ] && fail "$s: no journal while the commit ran"
    check test ! -e "$mnt/big/snapshots/$s"
    check test ! -e "$img/big.$s"
    check test "$(cat "$mnt/big/disks/vda/source")" = "$img/big.s1"
    check test "$(sed -n 2p "$mnt/big/snapshots/s1/state")" = ""
    umount_fs
    PATH=$work/slowbin:$PATH mount_fs
done

# ---- internal creates and deletes across two disks, killed at random points -------------
qemu-img create -q -f qcow2 "$img/two-a.qcow2" 16M
qemu-img create -q -f qcow2 "$img/two-b.qcow2" 16M
define two "$(fdisk vda "$img/two-a.qcow2")$(fdisk vdb "$img/two-b.qcow2")"
umount_fs
RANDOM=${JOURNAL_SEED:-1212}
# in_step: the internal snapshots of each disk are the snapshot metadata files.
in_step() {
    local meta d
    meta=$(ls "$store/qemu/snapshot/two" 2>/dev/null | sed -n 's/\.xml$//p' | sort | tr '\n' ' ')
    for d in a b; do
        check test "$(qemu-img snapshot -l "$img/two-$d.qcow2" | awk 'NR > 2 { print $2 }' |
                      sort | tr '\n' ' ')" = "$meta"
    done
}
for round in $(seq "${JOURNAL_ROUNDS:-20}"); do
    mount_fs
    in_step
    (
        set +e
        i=0
        while mountpoint -q "$mnt"; do
            i=$((i + 1))
            echo "<domainsnapshot><name>i${round}x$i</name></domainsnapshot>" > "$mnt/two/ctl/create"
            pick=$(ls "$mnt/two/snapshots" | shuf -n 1)
            [ -n "$pick" ] && [ $((RANDOM % 2)) = 0 ] && echo "$pick" > "$mnt/two/ctl/delete"
        done 2>/dev/null
    ) &
    opspid=$!
    sleep "0.$(printf %02d $((RANDOM % 40 + 5)))"
    kill_daemon
    wait "$opspid" 2>/dev/null || true
    no_qemu_img "round $round"
    mount_fs
    in_step
    check test ! -e "$jdir/two"
    umount_fs
done

# ---- a delete whose second commit fails says that it finishes at the next change ---------
cat > "$work/fakebin/qemu-img-b" <<SH
#!/bin/sh
[ "\$1" = commit ] && case "\$*" in *pw-b.s1*) echo "qemu-img: vdb commit refused by the test" >&2; exit 1 ;; esac
exec $(command -v qemu-img) "\$@"
SH
mkdir -p "$work/failb"
mv "$work/fakebin/qemu-img-b" "$work/failb/qemu-img"
chmod +x "$work/failb/qemu-img"
qemu-img create -q -f qcow2 "$img/pw-a.qcow2" 16M
qemu-img create -q -f qcow2 "$img/pw-b.qcow2" 16M
PATH=$work/failb:$PATH mount_fs
define pw "$(fdisk vda "$img/pw-a.qcow2")$(fdisk vdb "$img/pw-b.qcow2")"
echo s1 > "$mnt/pw/ctl/create" || fail "create pw/s1: $(cat "$mnt/pw/ctl/result")"
qemu-io -f qcow2 -c 'write -P 0x33 0 1M' "$img/pw-a.s1" > /dev/null
qemu-io -f qcow2 -c 'write -P 0x44 0 1M' "$img/pw-b.s1" > /dev/null
expect_fail 'Input/output error' bash -c "echo s1 > '$mnt/pw/ctl/delete'"
grep -q "^error: delete of s1 stopped part-way (the next change of domain 'pw' finishes it): .*vdb commit refused by the test" \
    "$mnt/pw/ctl/result" || fail "part-way delete: $(cat "$mnt/pw/ctl/result")"
check test -f "$jdir/pw"
umount_fs
mount_fs
grep -q "domain 'pw': resolved the interrupted delete of snapshot 's1'" "$work/log" ||
    fail "the part-way delete was not finished at mount"
check test ! -e "$jdir/pw"
check test ! -e "$mnt/pw/snapshots/s1"
check test "$(cat "$mnt/pw/disks/vda/source")" = "$img/pw-a.qcow2"
check test "$(cat "$mnt/pw/disks/vdb/source")" = "$img/pw-b.qcow2"
qemu-io -f qcow2 -r -c 'read -P 0x44 0 1M' "$img/pw-b.qcow2" | grep -q 'read 1048576' ||
    fail "vdb's overlay was not merged"
umount_fs

# ---- a backup killed mid-way leaves no temporary file ------------------------------------
mount_fs
seen=0
for try in 1 2 3 4 5; do
    echo "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$work/out/b$try.raw'/></disk></disks></domainbackup>" \
        > "$mnt/big/ctl/backup" || fail "backup: $(cat "$mnt/big/ctl/result")"
    kill -STOP "$pid"   # frozen: the part file seen now is there at the kill
    if ls "$work/out" | grep -q "^b$try.raw.part-"; then
        seen=1
        kill_daemon
        mount_fs
        break
    fi
    kill -CONT "$pid"
    for _ in $(seq 100); do grep -q running "$mnt/big/job" || break; sleep 0.1; done
done
check test "$seen" = 1
check test -z "$(ls "$work/out" | grep '\.part-' || true)"
grep -q "domain 'big': removed 1 temporary file(s) of an interrupted backup" "$work/log" ||
    fail "backup leftovers not reported"
check test -z "$(ls "$store/qemu/snapshot/.snapfs-backups")"
umount_fs
echo ok
