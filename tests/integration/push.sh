#!/bin/bash
# push.sh: a data file read in order gets the bytes ahead of the reader stored in the
# page cache (NOTIFY_STORE) by pusher threads; they are the right bytes, later reads
# of them send no READ, a reader that skips holes gets no holes pushed, and closing,
# unmounting or stopping mid-push is clean.
. "$(dirname "$0")/lib.sh"
make_store 64
img=$store/images
data=$mnt/web/disks/vda/data
qemu-img convert -f qcow2 -O raw "$img/web-top.qcow2" "$work/ref.raw"
size=$(stat -c %s "$work/ref.raw")
segment() {   # segment FILE SKIP_MIB COUNT_MIB: md5 of that range
    dd if="$1" bs=1M skip="$2" count="$3" 2>/dev/null | md5sum
}
count() { grep -c -- "$1" "$work/log" || true; }
read_bytes() {   # bytes the driver has answered READs with
    awk '/opcode: READ / { sub(/,.*/, "", $2); r[$2] = 1 }
         /success, outsize:/ { sub(/,.*/, "", $2); if ($2 in r) n += $NF - 16 }
         END { print n + 0 }' "$work/log"
}
pushes() { count "NOTIFY: code=4 "; }
settle() {   # waits until the pusher has sent nothing for a second (slow under valgrind)
    local last=-1 now same=0
    for _ in $(seq 600); do
        now=$(pushes)
        if [ "$now" = "$last" ]; then
            same=$((same + 1))
            [ $same -ge 5 ] && return 0
        else
            same=0
        fi
        last=$now
        sleep 0.2
    done
    fail "the pusher never went quiet"
}

ra_kb() { cat "/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb"; }
# Only root can set the readahead (sysfs): then it must have been set.
can_ra=0
[ "$(id -u)" = 0 ] && [ -w /sys/class/bdi ] && can_ra=1
mount_fs -d
[ $can_ra = 0 ] || check test "$(ra_kb)" = 4096
# Two MiB in order start the pusher; while the file stays open it stores the next
# 32 MiB and stops there.
exec 3< "$data"
check test "$(dd bs=1M count=2 <&3 2>/dev/null | md5sum)" = "$(segment "$work/ref.raw" 0 2)"
settle
exec 3<&-
n=$(pushes)
[ "$n" -ge 16 ] || fail "only $n pushes after reading 2 MiB in order"
[ "$n" -le 40 ] || fail "$n pushes: the pusher went past its window"
# What it stored is read back from the page cache and is right. Not "no READ at
# all": the kernel may reclaim clean pages at any time (this machine's DAMON pageout
# takes scattered pages within seconds), and those come back by READ. Without
# pushing, all 20 MiB would.
r=$(read_bytes)
check test "$(segment "$data" 12 20)" = "$(segment "$work/ref.raw" 12 20)"
n=$(( $(read_bytes) - r ))
[ $n -lt $((4 * 1048576)) ] || fail "$n bytes of the pushed 20 MiB came by READ"
# The whole file, pushed and read mixed, is what qemu-img convert makes.
cmp "$data" "$work/ref.raw" || fail "data differs after pushing"
grep -q "push of .* stopped" "$work/log" && fail "a push failed"
umount_fs

# A reader that asks for SEEK_DATA/SEEK_HOLE (cp does, at every extent) reads only
# data: the pushers skip holes, and its lseek()s move the window on, as READs do.
# dense: 96 MiB of data but for 16 zeroed MiB at 40 MiB.
qemu-img create -q -f qcow2 "$img/dense.qcow2" 96M
qemu-io -f qcow2 -c "write -P 0x44 0 96M" -c "write -z 40M 16M" "$img/dense.qcow2" >/dev/null
one_disk_domain dense qcow2 "$img/dense.qcow2" 1
qemu-img convert -f qcow2 -O raw "$img/dense.qcow2" "$work/dense.raw"
dense=$mnt/dense/disks/vda/data
stored() {   # bytes the pushers stored (each NOTIFY_STORE has 40 bytes of headers)
    awk '/NOTIFY: code=4 / { sub(/.*length=/, ""); n += $1 - 40 } END { print n + 0 }' "$work/log"
}
seek_data() {   # seek_data OFFSET_MIB: SEEK_DATA on descriptor 3 (the same open file)
    python3 -c "import os, sys; os.lseek(3, int(sys.argv[1]) << 20, os.SEEK_DATA)" "$1"
}
: > "$work/log"
mount_fs -d
exec 3< "$dense"
seek_data 0
check test "$(dd bs=1M count=2 <&3 2>/dev/null | md5sum)" = "$(segment "$work/dense.raw" 0 2)"
settle
s1=$(stored)
[ "$s1" -ge $((24 * 1048576)) ] || fail "only $s1 bytes pushed after reading 2 MiB in order"
[ "$s1" -le $((38 * 1048576)) ] || fail "$s1 bytes pushed: the pushers went past their window"
# Where the reader is now (30 MiB, within what was pushed): the window moves on to
# 62 MiB, over the zeroed 16 MiB, which are not stored: what was left before them, and
# the 6 MiB after them.
seek_data 30
settle
s2=$(( $(stored) - s1 ))
[ "$s2" -ge $((4 * 1048576)) ] || fail "only $s2 bytes pushed after SEEK_DATA at 30 MiB"
[ "$s2" -le $((14 * 1048576)) ] || fail "$s2 bytes pushed after SEEK_DATA at 30 MiB: holes too"
exec 3<&-
cp "$dense" "$work/dense.cp"
cmp "$work/dense.cp" "$work/dense.raw" || fail "cp of data differs after pushing"
grep -q "push of .* stopped" "$work/log" && fail "a push failed"
umount_fs

# A reader that stops early or jumps: released mid-push, then unmounted cleanly.
: > "$work/log"
mount_fs -d
head -c 3000000 "$data" > "$work/head"
cmp "$work/head" <(head -c 3000000 "$work/ref.raw") || fail "head of data"
check test "$(segment "$data" 40 3)" = "$(segment "$work/ref.raw" 40 3)"
for skip in 5 63 20 1; do
    check test "$(segment "$data" $skip 1)" = "$(segment "$work/ref.raw" $skip 1)"
done
umount_fs

# Random reads (8 readers at once) never start a pusher.
: > "$work/log"
mount_fs -d
RANDOM=7
for r in 1 2 3 4 5 6 7 8; do
    (for i in $(seq 40); do
        off=$(( (RANDOM * 32768 + RANDOM) % (size / 4096) ))
        a=$(dd if="$data" bs=4096 skip=$off count=1 2>/dev/null | md5sum)
        b=$(dd if="$work/ref.raw" bs=4096 skip=$off count=1 2>/dev/null | md5sum)
        [ "$a" = "$b" ] || { echo "random read at block $off differs"; exit 1; }
    done) > "$work/rand.$r" 2>&1 &
    eval "rr$r=\$!"
done
for r in 1 2 3 4 5 6 7 8; do
    eval "wait \$rr$r" || fail "$(cat "$work/rand.$r")"
done
check test "$(pushes)" = 0
umount_fs

# -o nopush: no pushing, same bytes; readahead_kb sets the mount's readahead.
: > "$work/log"
mount_fs -d -o nopush,readahead_kb=2048
[ $can_ra = 0 ] || check test "$(ra_kb)" = 2048
cmp "$data" "$work/ref.raw" || fail "data differs without pushing"
check test "$(pushes)" = 0
umount_fs

# Stopped (SIGTERM) while a reader holds the file open mid-push: the pusher is
# stopped and joined, the driver exits 0 and leaks nothing.
: > "$work/log"
mount_fs -d
exec 3< "$data"
dd bs=1M count=3 <&3 >/dev/null 2>&1
kill -TERM "$pid"
wait "$pid" || fail "snapfs exited with $? when stopped mid-push"
pid=""
exec 3<&-
mountpoint -q "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; }
if grep -E 'CRITICAL|WARNING|ERROR|==[0-9]+==|runtime error' "$work/log"; then
    fail "suspicious log output"
fi
if [ -f "$VGLOG" ] && grep -q 'ERROR SUMMARY: [1-9]' "$VGLOG"; then
    cat "$VGLOG" >&2
    fail "valgrind found errors"
fi
echo ok
