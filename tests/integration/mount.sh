#!/bin/bash
# mount.sh: mount, the top level, ENOENT (not EIO), clean unmount.
. "$(dirname "$0")/lib.sh"
make_store
mount_fs
check test "$(ls "$mnt")" = "$(printf 'ctl\ndb\nlegacy\nweb')"
expect_fail 'No such file' stat "$mnt/no-such-domain"
expect_fail 'No such file' stat "$mnt/db/snapshots/no-such-snapshot"
expect_fail 'No such file' stat "$mnt/db/no-such-file"
expect_fail 'No such file' stat "$mnt/db/disks/vdz"
expect_fail 'No such file' stat "$mnt/db/disks/vda[99]"
expect_fail 'No such file' stat "$mnt/db/disks/vda[0]"
expect_fail 'No such file' stat "$mnt/legacy/current"
expect_fail 'Not a directory' ls "$mnt/db/uuid/x"
# Files belong to the mounting user; the kernel sees read-only modes.
check test "$(stat -c %u:%g "$mnt/db/uuid")" = "$(id -u):$(id -g)"
check test "$(stat -c %a "$mnt/db")" = 555
check test "$(stat -c %a "$mnt/db/uuid")" = 444
expect_fail 'Permission denied' sh -c "echo x > '$mnt/db/uuid'"
check test "$(stat -f -c %T "$mnt")" = fuseblk -o "$(stat -f -c %T "$mnt")" = fuse
grep -q "snapfs $mnt fuse.snapfs" /proc/mounts || fail "not in /proc/mounts as fuse.snapfs"
umount_fs
echo ok
