#!/bin/bash
# options.sh: --help, --version, errors for a bad store / mount point, -o ro, split layout, -s, -d.
. "$(dirname "$0")/lib.sh"
make_store
"$FS" --help > "$work/help" 2>&1 || fail "--help exit status"
grep -q 'usage: .* \[options\] STORE MOUNTPOINT' "$work/help" || fail "--help text"
grep -q 'config_dir=DIR' "$work/help" || fail "--help lists config_dir"
"$FS" --version > "$work/version" 2>&1 || fail "--version exit status"
grep -q '^snapfs version [0-9]' "$work/version" || fail "--version text"
expect_fail "cannot use store '$work/nostore'" "$FS" -f "$work/nostore" "$mnt"
expect_fail "bad mount point" "$FS" -f "$store" "$work/nomnt"
expect_fail "usage:" "$FS"
mountpoint -q "$mnt" && fail "a failed start left a mount"
# -o ro: the kernel and snapfs refuse writes.
mount_fs -o ro
expect_fail 'Read-only file system' touch "$mnt/db/x"
expect_fail 'Read-only file system' mkdir "$mnt/db/snapshots/new"
grep -q "$mnt fuse.snapfs ro," /proc/mounts || fail "not mounted ro"
umount_fs
# Split layout: configs and snapshot metadata in separate directories.
mkdir -p "$work/etc" "$work/var"
mv "$store/qemu/snapshot" "$work/var/snapshot"
mv "$store/qemu/"*.xml "$work/etc/"
mount_fs -s -o "config_dir=$work/etc,snapshot_dir=$work/var/snapshot"
check test "$(ls "$mnt" | tr '\n' ' ')" = "ctl db legacy web "
check test "$(readlink "$mnt/db/current")" = snapshots/s8
umount_fs
# -d logs requests.
mount_fs -d -o "config_dir=$work/etc,snapshot_dir=$work/var/snapshot"
ls "$mnt/db" > /dev/null
umount_fs
grep -q 'LOOKUP\|lookup' "$work/log" || fail "-d logs nothing"
echo ok
