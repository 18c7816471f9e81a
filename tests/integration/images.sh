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

umount_fs
echo ok
