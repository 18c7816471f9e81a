#!/bin/bash
# guest.sh: files inside the guest. A disk partitioned by sfdisk, ext4 and ext2 made and filled
# on loop devices (the kernel is the oracle), converted to qcow2, an overlay with changes; each
# element's files/ equals a read-only loop mount of qemu-img convert -O raw of that element:
# find -printf, diff -r, getfattr; partitions.tsv; SEEK_DATA/SEEK_HOLE; EROFS on changes.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] && [ -w /dev/loop-control ] || { echo "needs root and loop devices"; exit 77; }
for t in sfdisk mkfs.ext4 mkswap getfattr setfattr losetup; do
    command -v $t >/dev/null || fail "$t is missing (scripts/deps.sh installs it)"
done
make_store 16
g=$work/guest
mkdir -p "$g/m"
loops=""
gcleanup() {
    set +e
    cd /
    mountpoint -q "$g/m" && umount "$g/m"
    for l in $loops; do losetup -d "$l" 2>/dev/null; done
    cleanup
}
trap gcleanup EXIT

# part_loop FILE START SIZE [ro]: $l, a loop device over one partition (bytes).
part_loop() {
    l=$(losetup -f --show ${4:+-r} -o "$2" --sizelimit "$3" "$1")
    loops="$loops $l"
}
loop_done() {
    losetup -d "$1"
    loops=$(echo "$loops" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

MiB=$((1024 * 1024))
P1=$MiB; S1=$((40 * MiB))          # vda1: ext4
P2=$((41 * MiB)); S2=$((4 * MiB))  # vda2: swap
P5=$((46 * MiB)); S5=$((16 * MiB)) # vda5 (in extended vda3): ext2
truncate -s 64M "$g/disk.raw"
printf 'label: dos\n1MiB,40MiB,83\n,4MiB,82\n,,5\n,16MiB,83\n' | sfdisk -q "$g/disk.raw"
sfdisk -d "$g/disk.raw" | grep -q "start= *$((P5 / 512)), size= *$((S5 / 512))" || fail "layout"

fill_ext4() {   # the tree of vda1, mounted on $g/m
    local m=$g/m long
    cd "$m"
    mkdir -p etc/nginx/sites usr/share/doc special deep/a/b/c/d/e
    for i in $(seq 1 300); do
        d=usr/share/doc/pkg$((i % 17))
        mkdir -p "$d"
        printf 'file %s\n%s\n' "$i" "$(seq 1 $((i * 3)))" > "$d/f$i.txt"
    done
    long=$(printf 'L%.0s' $(seq 1 250))
    echo long > "deep/a/b/c/d/e/${long}.txt"
    printf 'server { listen 80; }\n' > etc/nginx/nginx.conf
    echo site > etc/nginx/sites/default
    ln etc/nginx/nginx.conf etc/nginx/hard1
    ln etc/nginx/nginx.conf deep/hard2
    ln -s ../nginx.conf etc/nginx/sites/rel-link
    ln -s /etc/passwd etc/abs-link
    ln -s /nonexistent/dangling etc/dangling
    ln -s "$(printf 'x%.0s' $(seq 1 200))" etc/long-link   # a slow symlink (> 60 bytes)
    head -c 3M /dev/urandom > usr/big.bin
    truncate -s 20M usr/sparse
    printf 'middle' | dd of=usr/sparse bs=1 seek=$((7 * MiB)) conv=notrunc status=none
    printf 'end' | dd of=usr/sparse bs=1 seek=$((20 * MiB - 3)) conv=notrunc status=none
    : > usr/empty
    setfattr -n user.colour -v blue etc/nginx/nginx.conf
    setfattr -n user.bin -v 0x00ff00 usr/big.bin
    setfattr -n trusted.secret -v hidden usr/empty
    setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' v)" usr/empty   # a block of its own
    setfattr -n user.dir -v yes etc
    mknod special/null c 1 3
    mknod special/sda b 8 0
    mkfifo special/fifo
    chown 1234:5678 etc/nginx/sites/default
    chown -h 42:43 etc/abs-link
    chmod 4755 usr/big.bin
    chmod 0000 usr/empty
    chmod 1777 deep
    touch -h -d '2001-02-03 04:05:06.123456789' etc/abs-link
    touch -d '2038-06-01 00:00:00.987654321' etc/nginx/sites/default   # past 2038: epoch bits
    touch -d '1965-01-01 12:00:00.5' usr/share/doc/pkg1/f1.txt         # before 1970
    cd - >/dev/null
}

part_loop "$g/disk.raw" $P1 $S1
mkfs.ext4 -q -b 4096 -L root -U 01234567-89ab-cdef-0123-456789abcdef "$l"
mount "$l" "$g/m"
(fill_ext4)
umount "$g/m"
loop_done "$l"
part_loop "$g/disk.raw" $P5 $S5
mkfs.ext2 -q -L data "$l"
mount "$l" "$g/m"
mkdir "$g/m/d"; echo two > "$g/m/d/f"; ln -s f "$g/m/d/l"
umount "$g/m"
loop_done "$l"
part_loop "$g/disk.raw" $P2 $S2
mkswap -q -L sw "$l"
loop_done "$l"

img=$store/images
qemu-img convert -q -f raw -O qcow2 "$g/disk.raw" "$img/guest-base.qcow2"
# The overlay: a changed copy rebased onto the base keeps only the differing clusters.
cp "$g/disk.raw" "$g/disk2.raw"
part_loop "$g/disk2.raw" $P1 $S1
mount "$l" "$g/m"
echo changed >> "$g/m/etc/nginx/nginx.conf"
rm -r "$g/m/usr/share/doc/pkg3"
mkdir "$g/m/new"; echo new > "$g/m/new/file"
mv "$g/m/etc/nginx/sites/default" "$g/m/etc/nginx/sites/renamed"
setfattr -n user.colour -v red "$g/m/etc/nginx/nginx.conf"
umount "$g/m"
loop_done "$l"
qemu-img convert -q -f raw -O qcow2 "$g/disk2.raw" "$img/guest-top.qcow2"
qemu-img rebase -q -f qcow2 -b "$img/guest-base.qcow2" -F qcow2 "$img/guest-top.qcow2"
one_disk_domain guestvm qcow2 "$img/guest-top.qcow2" 77

mount_fs
d=$mnt/guestvm/disks

# partitions.tsv: every partition, the extended one not opened, swap listed.
tsv=$(cat "$d/vda/partitions.tsv")
check [ "$(echo "$tsv" | cut -f1-6 | tr '\t' ' ')" = "vda1 1 $P1 $S1 0x83 ext4
vda2 2 $P2 $S2 0x82 swap
vda3 3 $((45 * MiB)) $((19 * MiB)) 0x05 $(printf '')
vda5 5 $P5 $S5 0x83 ext2" ]
echo "$tsv" | grep -q "^vda1	.*	root	01234567-89ab-cdef-0123-456789abcdef	ok$" || fail "vda1 line: $tsv"
echo "$tsv" | grep -q "^vda3	.*	extended partition$" || fail "vda3 line: $tsv"
check [ "$(stat -c %a "$d/vda/files")" = 700 ]
check [ "$(ls "$d/vda/files" | tr '\n' ' ')" = "vda1 vda5 " ]
check [ "$(ls "$d/vda[1]/files" | tr '\n' ' ')" = "vda1 vda5 " ]

# compare ELEMENT CHAIN_TOP: the element's files/ against the kernel's mount of its raw bytes.
compare() {
    local el=$1 top=$2 p s vol out=$g/out-$1
    qemu-img convert -q -O raw "$top" "$g/$el.raw"
    mkdir -p "$out"
    for vol in vda1:$P1:$S1 vda5:$P5:$S5; do
        p=${vol#*:}; s=${p#*:}; p=${p%:*}; vol=${vol%%:*}
        part_loop "$g/$el.raw" "$p" "$s" ro
        mount -t ext4 -o ro,noload,nodev "$l" "$g/m"
        for side in kernel snapfs; do
            [ $side = kernel ] && root=$g/m || root="$d/$el/files/$vol"
            (cd "$root" && find . -printf '%P %y %m %U %G %s %T@ %n %l\n' | sort) > "$out/$vol.find.$side"
            (cd "$root" && find . -print0 | sort -z | xargs -0 getfattr -h -d -m - 2>&1) \
                > "$out/$vol.xattr.$side"
        done
        cmp "$out/$vol.find.kernel" "$out/$vol.find.snapfs" ||
            { diff "$out/$vol.find.kernel" "$out/$vol.find.snapfs" | head -20; fail "$el/$vol: find differs"; }
        cmp "$out/$vol.xattr.kernel" "$out/$vol.xattr.snapfs" ||
            { diff "$out/$vol.xattr.kernel" "$out/$vol.xattr.snapfs" | head -20; fail "$el/$vol: xattrs differ"; }
        diff -r --no-dereference -x special "$g/m" "$d/$el/files/$vol" || fail "$el/$vol: diff -r"
        if [ $vol = vda1 ]; then
            python3 - "$g/m/usr/sparse" "$d/$el/files/vda1/usr/sparse" <<'EOF' || fail "$el: holes"
import os, sys
def walk(path):
    fd, out, pos = os.open(path, os.O_RDONLY), [], 0
    size = os.fstat(fd).st_size
    while pos < size:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h)); pos = h
    return out
k, s = walk(sys.argv[1]), walk(sys.argv[2])
if k != s or len(k) != 2:
    sys.exit("kernel %s, snapfs %s" % (k, s))
EOF
        fi
        umount "$g/m"
        loop_done "$l"
    done
    [ "$(wc -l < "$out/vda1.find.snapfs")" -gt 320 ] || fail "$el: too few files listed"
    grep -q 'user.colour=' "$out/vda1.xattr.snapfs" || fail "$el: no xattrs listed"
    grep -q '^etc/nginx/sites/.* 2158963200\.9876543210 ' "$out/vda1.find.snapfs" || { grep "^etc/nginx/sites" "$out/vda1.find.snapfs"; fail "times"; }
    grep -q ' c 644 0 0 0 ' "$out/vda1.find.snapfs" || fail "device node attributes"
    grep -q '^special/fifo p ' "$out/vda1.find.snapfs" || fail "fifo attributes"
}
compare 'vda[1]' "$img/guest-base.qcow2"
compare vda "$img/guest-top.qcow2"
# The two elements differ where the overlay changed them.
check [ "$(cat "$d/vda/files/vda1/etc/nginx/nginx.conf")" = "server { listen 80; }
changed" ]
check [ "$(cat "$d/vda[1]/files/vda1/etc/nginx/nginx.conf")" = "server { listen 80; }" ]
check [ ! -e "$d/vda/files/vda1/usr/share/doc/pkg3" ]
check [ -d "$d/vda[1]/files/vda1/usr/share/doc/pkg3" ]
# Hard links share an inode number; links are the guest's, never resolved on the host.
check [ "$(stat -c %i "$d/vda/files/vda1/etc/nginx/hard1")" = \
        "$(stat -c %i "$d/vda/files/vda1/deep/hard2")" ]
check [ "$(readlink "$d/vda/files/vda1/etc/abs-link")" = /etc/passwd ]
# A device node is an attribute: opening it reaches no device of the host.
expect_fail 'Permission denied' head -c 1 "$d/vda/files/vda1/special/null"

# Readers in parallel on both elements (the FUSE threads share the open disks and their
# filesystems): each sees the same bytes as a reader alone.
sums() { (cd "$1" && find . -type f ! -path './special/*' -print0 | sort -z | xargs -0 cat | md5sum); }
want_top=$(sums "$d/vda/files/vda1")
want_base=$(sums "$d/vda[1]/files/vda1")
jobs_=""
for i in 1 2 3; do
    sums "$d/vda/files/vda1" > "$g/par-top-$i" & jobs_="$jobs_ $!"
    sums "$d/vda[1]/files/vda1" > "$g/par-base-$i" & jobs_="$jobs_ $!"
done
for j in $jobs_; do wait "$j"; done   # not the daemon's pid
for i in 1 2 3; do
    check [ "$(cat "$g/par-top-$i")" = "$want_top" ]
    check [ "$(cat "$g/par-base-$i")" = "$want_base" ]
done
check [ "$want_top" != "$want_base" ]

# Every change: EROFS.
f=$d/vda/files/vda1
expect_fail 'Read-only file system' touch "$f/newfile"
expect_fail 'Read-only file system' mkdir "$f/newdir"
expect_fail 'Read-only file system' rm "$f/etc/nginx/hard1"
expect_fail 'Read-only file system' rmdir "$f/new"
expect_fail 'Read-only file system' sh -c "echo x >> '$f/etc/nginx/nginx.conf'"
expect_fail 'Read-only file system' chmod 600 "$f/etc/nginx/nginx.conf"
expect_fail 'Read-only file system' chown 1:1 "$f/etc/nginx/nginx.conf"
expect_fail 'Read-only file system' touch "$f/etc/nginx/nginx.conf"
expect_fail 'Read-only file system' mv "$f/etc/nginx/hard1" "$f/etc/nginx/hard3"
expect_fail 'Read-only file system' ln -s x "$f/newlink"
expect_fail 'Read-only file system' ln "$f/etc/nginx/hard1" "$f/hard4"
expect_fail 'Read-only file system' setfattr -n user.x -v y "$f/etc/nginx/nginx.conf"
expect_fail 'Read-only file system' setfattr -x user.colour "$f/etc/nginx/nginx.conf"
expect_fail 'Read-only file system' truncate -s 0 "$f/usr/big.bin"
expect_fail 'No such file' ls "$d/vda/files/vda2"       # swap: listed in the tsv only
expect_fail 'No such file' ls "$d/vda/files/vda3"
umount_fs
echo ok
