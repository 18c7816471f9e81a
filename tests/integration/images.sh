#!/bin/bash
# images.sh: the image files that control operations make, and the images they refuse
# to touch: new overlays take the mode and owner of what they are built on, are never
# made through a symbolic link, and no image that another domain or snapshot uses (in
# any directory) is removed or written.
. "$(dirname "$0")/lib.sh"
umask 022
mkdir -p "$store/qemu" "$work/a" "$work/b" "$work/other" "$work/outside"

# define NAME DISK FORMAT [DISK2 FORMAT2]: a shut-off domain with disk vda (and vdb).
define() {
    local disks="" dev=vda
    local name=$1; shift
    while [ $# -gt 0 ]; do
        disks="$disks<disk type='file' device='disk'><driver name='qemu' type='$2'/>
<source file='$1'/><target dev='$dev' bus='virtio'/></disk>"
        dev=vdb; shift 2
    done
    printf '%s\n' "<domain type='kvm'><name>$name</name><memory unit='KiB'>1048576</memory>
<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os><devices>$disks</devices></domain>" \
        > "$mnt/ctl/define" || fail "define $name: $(cat "$mnt/ctl/result")"
}
result() { cat "$mnt/$1/ctl/result"; }
# treesum: checksums of every file under the store and the image directories.
treesum() { (cd "$work" && find store a b other outside -type f -print0 | sort -z |
             xargs -0 sha256sum; find store a b other outside -type l -printf '%p %l\n' | sort); }

qemu-img create -q -f qcow2 "$work/a/a.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 0x11 0 64k' "$work/a/a.qcow2" >/dev/null
chmod 600 "$work/a/a.qcow2"
chown 65534:65534 "$work/a/a.qcow2"
# b: a raw base whose size is no multiple of 512, which only qemu-img create sizes.
head -c 1048676 /dev/urandom > "$work/b/b.raw"
chmod 640 "$work/b/b.raw"
mount_fs
define a "$work/a/a.qcow2" qcow2
define b "$work/b/b.raw" raw

# ---- modes of new files: the mode and owner of the image below, both writers ----
echo s1 > "$mnt/a/ctl/create" || fail "create a/s1: $(result a)"
check test "$(stat -c '%a %u:%g' "$work/a/a.s1")" = "600 65534:65534"
echo s1 > "$mnt/b/ctl/create" || fail "create b/s1: $(result b)"
check test "$(stat -c %a "$work/b/b.s1")" = 640
qemu-img info "$work/b/b.s1" | grep -q "^backing file: $work/b/b.raw" || fail "b.s1 backing"
echo s1 > "$mnt/a/ctl/revert" || fail "revert a/s1: $(result a)"
check test "$(cat "$mnt/a/disks/vda/source")" = "$work/a/a.s1-1"
check test "$(stat -c '%a %u:%g' "$work/a/a.s1-1")" = "600 65534:65534"
echo s1 > "$mnt/b/ctl/revert" || fail "revert b/s1: $(result b)"
check test "$(stat -c %a "$work/b/b.s1-1")" = 640

# ---- symbolic links named like the next overlay: refused, nothing written through them ----
ln -s "$work/outside/target" "$work/a/a.s2"
: > "$work/outside/empty"
ln -s "$work/outside/empty" "$work/b/b.s2"
before=$(treesum)
expect_fail 'Too many levels of symbolic links' bash -c "echo s2 > '$mnt/a/ctl/create'"
result a | grep -q "^error: '$work/a/a.s2' is a symbolic link" || fail "a/s2: $(result a)"
expect_fail 'Too many levels of symbolic links' bash -c "echo s2 > '$mnt/b/ctl/create'"
check test "$before" = "$(treesum)"
check test ! -e "$work/outside/target"
check test ! -s "$work/outside/empty"
# Revert's name search takes a dangling link's name as taken.
ln -s "$work/outside/target" "$work/a/a.s1-2"
echo s1 > "$mnt/a/ctl/revert" || fail "revert a/s1 again: $(result a)"
check test "$(cat "$mnt/a/disks/vda/source")" = "$work/a/a.s1-3"
check test ! -e "$work/outside/target"
rm "$work/a/a.s2" "$work/b/b.s2" "$work/a/a.s1-2"

# ---- image users across domains: a delete, revert or internal snapshot operation that
# would remove or write an image another domain or snapshot uses or is built on, in any
# directory, fails with EBUSY, names them, and changes nothing ----
busy() {   # busy DOMAIN CTL PAYLOAD WANT: refused with EBUSY, WANT in ctl/result, nothing changed
    local before
    before=$(treesum)
    expect_fail 'Device or resource busy' bash -c "echo '$3' > '$mnt/$1/ctl/$2'"
    check test "$(result "$1")" = "error: $4"
    check test "$before" = "$(treesum)"
}
# a: a.qcow2 <- a.s1 <- a.s1-1 <- a.s1-3 (current); make a leaf external snapshot to delete.
echo d1 > "$mnt/a/ctl/create" || fail "create a/d1: $(result a)"
qemu-img create -q -f qcow2 -F qcow2 -b "$work/a/a.d1" "$work/other/o1.qcow2"
define other "$work/other/o1.qcow2" qcow2
busy a delete d1 "cannot delete the data of external snapshot d1: image '$work/a/a.d1' is in use by domain 'other' (disk vda, image '$work/other/o1.qcow2')"
echo other > "$mnt/ctl/undefine"
# An image of another domain and its snapshot built on the image the overlay is merged into.
qemu-img create -q -f qcow2 -F qcow2 -b "$work/a/a.s1-3" "$work/other/o2.qcow2"
define third "$work/other/o2.qcow2" qcow2
echo t1 > "$mnt/third/ctl/create" || fail "create third/t1: $(result third)"
busy a delete d1 "cannot delete the data of external snapshot d1: image '$work/a/a.s1-3' is in use by domain 'third' (disk vda, image '$work/other/o2.t1') and snapshot 'third/t1' (disk vda, image '$work/other/o2.qcow2')"
echo "t1 --metadata" > "$mnt/third/ctl/delete"
echo third > "$mnt/ctl/undefine"
qemu-img convert -O raw "$work/a/a.d1" "$work/d1.raw"
echo d1 > "$mnt/a/ctl/delete" || fail "delete a/d1 once alone: $(result a)"
check test ! -e "$work/a/a.d1"
cmp "$work/d1.raw" "$mnt/a/disks/vda/data" || fail "merge changed the guest view"

# Internal snapshots: an image of another domain built on the image blocks revert (it
# rewrites the image), and another domain using it blocks -c and -d.
qemu-img create -q -f qcow2 "$work/b/i.qcow2" 16M
define int "$work/b/i.qcow2" qcow2
internal() { echo "<domainsnapshot><name>$1</name><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>"; }
internal i1 > "$mnt/int/ctl/create" || fail "create int/i1: $(result int)"
qemu-img create -q -f qcow2 -F qcow2 -b "$work/b/i.qcow2" "$work/other/f.qcow2"
define foreign "$work/other/f.qcow2" qcow2
busy int revert i1 "cannot revert to internal snapshot i1: image '$work/b/i.qcow2' is in use by domain 'foreign' (disk vda, image '$work/other/f.qcow2')"
busy int delete i1 "cannot delete internal snapshot i1: image '$work/b/i.qcow2' is in use by domain 'foreign' (disk vda, image '$work/other/f.qcow2')"
internal i2 > "$work/i2.xml"
before=$(treesum)
expect_fail 'Device or resource busy' bash -c "cat '$work/i2.xml' > '$mnt/int/ctl/create'"
check test "$(result int)" = "error: cannot create internal snapshot i2: image '$work/b/i.qcow2' is in use by domain 'foreign' (disk vda, image '$work/other/f.qcow2')"
check test "$before" = "$(treesum)"
echo foreign > "$mnt/ctl/undefine"
echo i1 > "$mnt/int/ctl/revert" || fail "revert int/i1 once alone: $(result int)"
echo i1 > "$mnt/int/ctl/delete" || fail "delete int/i1 once alone: $(result int)"
check test "$(qemu-img snapshot -l "$work/b/i.qcow2" | grep -c i1)" = 0

umount_fs
echo ok
