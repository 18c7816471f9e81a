#!/bin/bash
# paths.sh: outside paths snapfs must not open as images. A disk source or backing file that is a
# FIFO, or that lies inside the snapfs mount itself (directly or through a symbolic link), is
# refused with a reason in info, and every other request on the mount keeps answering; a backup
# whose target is type='block' writes only to a block device (a loop device here).
# Each probe runs under timeout: a hang (the old behaviour) is a failure, and the trap aborts the
# FUSE connection so that a deadlocked mount cannot block the suite.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
p=$img/paths
mkdir -p "$p"
out=$work/out
mkdir -p "$out"
loopdev=""

# A hung request is failed by aborting the mount's FUSE connection (its number is the minor of
# the mount's device), which answers every waiting request with ENOTCONN; after a failure snapfs
# is killed (a thread may wait on a FIFO) and the loop device released; then lib.sh's cleanup.
mountpoint -q /sys/fs/fuse/connections || mount -t fusectl fusectl /sys/fs/fuse/connections
conn=""
abort_mount() { [ -z "$conn" ] || echo 1 > "/sys/fs/fuse/connections/$conn/abort"; }
paths_cleanup() {
    local rc=$?
    set +e
    if [ "$rc" != 0 ]; then
        abort_mount
        [ -n "$pid" ] && kill -9 "$pid"
        umount -l "$mnt" 2>/dev/null   # an aborted mount is no mountpoint to mountpoint(1)
    fi
    [ -n "$loopdev" ] && losetup -d "$loopdev"
    cleanup
}
trap paths_cleanup EXIT
# t CMD...: CMD, failed as hung when it has not ended 20 s later (the mount is aborted).
t() {
    local rc=0 c
    "$@" &
    c=$!
    if ! timeout 20 tail -s 0.05 --pid="$c" -f /dev/null; then
        abort_mount
        wait "$c"
        fail "hung: $*"
    fi
    wait "$c" || rc=$?
    return "$rc"
}

q() { qemu-img "$@" >/dev/null; }

# FIFOs: as a disk source, and as the backing file of a qcow2.
mkfifo "$p/src.fifo" "$p/back.fifo"
q create -f qcow2 -u -b "$p/back.fifo" -F raw "$p/fifo-top.qcow2" 1M
one_disk_domain fifo-src raw "$p/src.fifo" 1
one_disk_domain fifo-back qcow2 "$p/fifo-top.qcow2" 2
# Inside the mount: a disk source, a backing file (header written with -u: nothing is read), and
# a symbolic link outside that points in.
q create -f qcow2 -u -b "$mnt/db/disks/vda/data" -F raw "$p/mnt-top.qcow2" 16M
ln -s "$mnt/db/disks/vda/data" "$p/mnt-link.raw"
ln -s "$mnt" "$p/mnt-dir"
one_disk_domain mnt-src raw "$mnt/db/disks/vda/data" 3
one_disk_domain mnt-back qcow2 "$p/mnt-top.qcow2" 4
one_disk_domain mnt-link raw "$p/mnt-link.raw" 5
one_disk_domain mnt-dir raw "$p/mnt-dir/web/disks/vda/data" 6
chmod -R go-rwx "$store"
storesum() { (cd "$store" && find . -type f ! -name .snapfs.lock -print0 | sort -z | xargs -0 md5sum) | md5sum; }
before=$(storesum)

mount_fs
conn=$(awk -v m="$mnt" '$5 == m && / - fuse\.snapfs / { split($3, d, ":"); c = d[2] } END { print c }' /proc/self/mountinfo)
[ -n "$conn" ] || fail "no connection number for $mnt"
dbsum=$(t sha256sum "$mnt/db/disks/vda/data" | cut -d" " -f1)

# refused NAME ELEMENT WANT: ELEMENT's info has an error line containing WANT, ELEMENT has no
# data file, the other domains still answer.
refused() {
    local info
    info=$(t cat "$mnt/$1/disks/$2/info") || fail "$1/$2: info: $?"
    case "$info" in *"error: "*"$3"*) ;; *) fail "$1/$2 info: '$info', expected '$3'";; esac
    t ls "$mnt/$1/disks/$2" > "$work/ls" || fail "$1/$2: ls"
    if grep -qx data "$work/ls"; then fail "$1/$2 lists data"; fi
    expect_fail 'No such file or directory' t cat "$mnt/$1/disks/$2/data"
    t cat "$mnt/$1/tree" "$mnt/$1/domain.xml" > /dev/null || fail "$1: tree"
    t cat "$mnt/web/disks/vda/info" > /dev/null || fail "$1: web info"
    [ "$(t sha256sum "$mnt/db/disks/vda/data" | cut -d" " -f1)" = "$dbsum" ] || fail "$1: db data"
}
notfile='not a regular file or block device'
inside="is inside the snapfs mount '$mnt'"
refused fifo-src vda "Cannot access storage file '$p/src.fifo': $notfile"
refused fifo-back 'vda[1]' "Cannot access backing file '$p/back.fifo' of storage file '$p/fifo-top.qcow2': $notfile"
t grep -q '^format: qcow2' "$mnt/fifo-back/disks/vda/info" || fail "fifo-back: top element"
refused mnt-src vda "Cannot access storage file '$mnt/db/disks/vda/data': it $inside"
refused mnt-back 'vda[1]' "of storage file '$p/mnt-top.qcow2': it $inside"
refused mnt-link vda "Cannot access storage file '$p/mnt-link.raw': it $inside"
refused mnt-dir vda "it $inside"
t cat "$mnt/fifo-back/disks/vda.xml" "$mnt/mnt-back/disks/vda.xml" > /dev/null || fail "vda.xml"

# Changes that would hand the images to qemu-img or our writer: refused with the reason, nothing
# changed, the mount answers.
for dom in fifo-src fifo-back mnt-src mnt-back mnt-link; do
    if t bash -c "echo x1 > '$mnt/$dom/ctl/create'" 2>/dev/null; then
        fail "$dom: create succeeded: $(cat "$mnt/$dom/ctl/result")"
    fi
    res=$(t cat "$mnt/$dom/ctl/result")
    case "$dom:$res" in
        fifo-src:"error: source for disk 'vda' is not a regular file; refusing to generate external snapshot name") ;;
        fifo-back:"error: "*"$notfile"*) ;;
        mnt-*:"error: "*"$inside"*) ;;
        *) fail "$dom: create result: '$res'";;
    esac
    t ls "$mnt/$dom/snapshots" > "$work/ls"
    [ ! -s "$work/ls" ] || fail "$dom: a snapshot appeared"
done
# An internal snapshot of mnt-back's qcow2 (outside) runs qemu-img, which would open its backing
# file inside the mount: refused before qemu-img starts.
ixml="<domainsnapshot><name>i1</name><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>"
expect_fail 'Permission denied' t bash -c "echo \"$ixml\" > '$mnt/mnt-back/ctl/create'"
res=$(t cat "$mnt/mnt-back/ctl/result")
[ "$res" = "error: cannot use image '$mnt/db/disks/vda/data': it $inside (snapfs never reads its own files)" ] ||
    fail "internal create result: '$res'"
[ "$(storesum)" = "$before" ] || fail "store changed"
for f in "$p"/*; do [ -L "$f" ] || [ -p "$f" ] || [ -f "$f" ] || fail "unexpected $f"; done
[ "$(ls "$p" | wc -l)" = 6 ] || fail "files appeared in $p: $(ls "$p")"

# ---- backups: a block target must be a block device --------------------------------------
printf 'my notes, not a disk\n' > "$out/notes.txt"
cp "$out/notes.txt" "$work/notes.orig"
blockxml() {
    cat <<XML
<domainbackup mode='push'>
  <disks>
    <disk name='vda' type='block'>
      <driver type='raw'/>
      <target dev='$1'/>
    </disk>
  </disks>
</domainbackup>
XML
}
blockxml "$out/notes.txt" > "$work/b.xml"
expect_fail 'Invalid argument' t bash -c "cat '$work/b.xml' > '$mnt/db/ctl/backup'"
res=$(t cat "$mnt/db/ctl/result")
[ "$res" = "error: 'host_device' driver requires '$out/notes.txt' to be either a character or block device" ] ||
    fail "block target result: '$res'"
cmp "$work/notes.orig" "$out/notes.txt" || fail "the regular file was written"
[ "$(ls "$out")" = notes.txt ] || fail "files appeared in $out: $(ls "$out")"
# a FIFO, a character device and a path inside the mount: refused as well, nothing opened
mkfifo "$out/pipe"
blockxml "$out/pipe" > "$work/b.xml"
expect_fail 'Invalid argument' t bash -c "cat '$work/b.xml' > '$mnt/db/ctl/backup'"
blockxml /dev/null > "$work/b.xml"
expect_fail 'Invalid argument' t bash -c "cat '$work/b.xml' > '$mnt/db/ctl/backup'"
[ "$(t cat "$mnt/db/ctl/result")" = "error: '/dev/null' is a character device: a block target must be a block device" ] ||
    fail "char target result: $(cat "$mnt/db/ctl/result")"
blockxml "$mnt/web/disks/vda/data" > "$work/b.xml"
expect_fail 'Permission denied' t bash -c "cat '$work/b.xml' > '$mnt/db/ctl/backup'"
sed -e "s|type='block'|type='file'|" -e "s|dev=|file=|" -e "s|$mnt/web/disks/vda/data|$p/mnt-dir/x.raw|" \
    "$work/b.xml" > "$work/f.xml"
expect_fail 'Permission denied' t bash -c "cat '$work/f.xml' > '$mnt/db/ctl/backup'"
case "$(t cat "$mnt/db/ctl/result")" in *"$inside"*) ;; *) fail "file target in the mount: $(cat "$mnt/db/ctl/result")";; esac
# A real block device: a loop device over a file as large as the disk.
size=$(stat -c %s "$mnt/db/disks/vda/data")
truncate -s "$size" "$work/loop.img"
loopdev=$(losetup -f --show "$work/loop.img")
blockxml "$loopdev" > "$work/b.xml"
t bash -c "cat '$work/b.xml' > '$mnt/db/ctl/backup'" || fail "loop backup: $(cat "$mnt/db/ctl/result")"
for _ in $(seq 600); do
    line=$(t cat "$mnt/db/job")
    case "$line" in "backup running"*) sleep 0.1;; *) break;; esac
done
case "$line" in "backup completed "*) ;; *) fail "loop backup job: $line";; esac
[ "$(sha256sum "$loopdev" | cut -d" " -f1)" = "$dbsum" ] || fail "loop device content"
losetup -d "$loopdev"
loopdev=""

umount_fs
