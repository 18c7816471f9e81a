#!/bin/bash
# backup.sh: push backups through ctl/backup: full raw and qcow2, incremental, job, backup.xml,
# EBUSY, cancel, validation errors.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
out=$work/out
mkdir -p "$out"
mount_fs
# waitjob DOMAIN: until the job line is no longer "running"; prints it.
waitjob() {
    for _ in $(seq 600); do
        line=$(cat "$mnt/$1/job")
        case "$line" in "backup running"*) sleep 0.1;; *) echo "$line"; return 0;; esac
    done
    fail "job of $1 did not end: $line"
}
check test "$(stat -c %s "$mnt/web/job")" = 0
# Full raw backup of web's vda (a 3-deep chain on a raw base); vdb not selected.
cat > "$work/b1.xml" <<XML
<domainbackup mode='push'>
  <disks>
    <disk name='vda' type='file'>
      <driver type='raw'/>
      <target file='$out/web-vda.raw'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>
XML
cat "$work/b1.xml" > "$mnt/web/ctl/backup" || fail "backup start: $(cat "$mnt/web/ctl/result")"
line=$(waitjob web)
case "$line" in "backup completed "*" bytes "*) ;; *) fail "job line: $line";; esac
qemu-img convert -O raw "$img/web-top.qcow2" "$work/web.raw"
cmp "$work/web.raw" "$out/web-vda.raw" || fail "raw backup content"
xmllint --noout --relaxng "$SNAPFS_SCHEMA_DIR/domainbackup.rng" "$mnt/web/backup.xml" 2>"$work/rng" ||
    { cat "$work/rng"; fail "backup.xml schema"; }
grep -q "<disk name='vdb' backup='no'/>" "$mnt/web/backup.xml" || fail "backup.xml alignment"
# The same target again: refused, nothing started.
expect_fail 'File exists' bash -c "cat '$work/b1.xml' > '$mnt/web/ctl/backup'"
# Full qcow2 backup of db's vda; default target name for unlisted... (all listed here).
sed -e "s|web-vda.raw|db-vda.qcow2|" -e "s|type='raw'|type='qcow2'|" -e '/vdb/d' "$work/b1.xml" > "$work/b2.xml"
cat "$work/b2.xml" > "$mnt/db/ctl/backup" || fail "qcow2 backup: $(cat "$mnt/db/ctl/result")"
waitjob db > /dev/null
qemu-img check -q "$out/db-vda.qcow2" || fail "qemu-img check of the qcow2 target"
qemu-img convert -O raw "$out/db-vda.qcow2" "$work/db-backup.raw"
cmp "$work/db-backup.raw" "$mnt/db/disks/vda/data" || fail "qcow2 backup content"
# Incremental against external snapshot s8: only what lies above s8's images.
cp "$mnt/db/snapshots/s8/disks/vda/data" "$work/s8-full.raw"
qemu-img convert -O qcow2 "$work/s8-full.raw" "$out/s8-full.qcow2"
cat > "$work/b3.xml" <<XML
<domainbackup mode='push'>
  <incremental>s8</incremental>
  <disks>
    <disk name='vda' type='file'>
      <driver type='qcow2'/>
      <target file='$out/db-incr.qcow2'/>
    </disk>
  </disks>
</domainbackup>
XML
cat "$work/b3.xml" > "$mnt/db/ctl/backup" || fail "incremental: $(cat "$mnt/db/ctl/result")"
waitjob db > /dev/null
qemu-img rebase -u -b "$out/s8-full.qcow2" -F qcow2 "$out/db-incr.qcow2"
qemu-img convert -O raw "$out/db-incr.qcow2" "$work/rebuilt.raw"
cmp "$work/rebuilt.raw" "$mnt/db/disks/vda/data" || fail "incremental rebuild"
check test "$(stat -c %s "$out/db-incr.qcow2")" -lt "$(stat -c %s "$out/db-vda.qcow2")"
# Validation: pull mode, unknown disk, libvirt's texts.
expect_fail 'Invalid argument' bash -c "echo \"<domainbackup mode='pull'><server name='localhost' port='10809'/></domainbackup>\" > '$mnt/db/ctl/backup'"
grep -q pull "$mnt/db/ctl/result" || fail "pull refusal text: $(cat "$mnt/db/ctl/result")"
expect_fail 'No such file' bash -c "echo \"<domainbackup><disks><disk name='vdz' type='file'><target file='$out/x'/></disk></disks></domainbackup>\" > '$mnt/db/ctl/backup'"
check test "$(cat "$mnt/db/ctl/result")" = "error: no disk named 'vdz'"
expect_fail 'Invalid argument' bash -c "echo \"<domainbackup mode='bogus'/>\" > '$mnt/db/ctl/backup'"
# EBUSY and cancel on a backup big enough to still run when the next write comes.
qemu-img create -q -f qcow2 "$img/big.qcow2" 1G
qemu-io -f qcow2 -c 'write -P 0x5a 0 1G' "$img/big.qcow2" > /dev/null
sed -e 's|<name>legacy</name>|<name>big</name>|' -e 's|0a0b0c0d-0e0f|0a0b0c0d-bbbb|' \
    -e "s|$img/legacy.qcow2|$img/big.qcow2|" "$store/qemu/legacy.xml" |
    sed '/<backingStore type=/,/^      <\/backingStore>/d' > "$store/qemu/big.xml"
sleep 1.2
sed -e "s|$out/web-vda.raw|$out/big.raw|" -e '/vdb/d' "$work/b1.xml" > "$work/b4.xml"
sed -e "s|$out/web-vda.raw|$out/big2.raw|" -e '/vdb/d' "$work/b1.xml" > "$work/b5.xml"
cat "$work/b4.xml" > "$mnt/big/ctl/backup" || fail "big backup: $(cat "$mnt/big/ctl/result")"
line=$(cat "$mnt/big/job")
case "$line" in "backup running "*/1073741824" bytes "*) ;; *) fail "job while running: $line";; esac
expect_fail 'Device or resource busy' bash -c "cat '$work/b5.xml' > '$mnt/big/ctl/backup'"
expect_fail 'Device or resource busy' bash -c "echo x1 > '$mnt/big/ctl/create'"
echo cancel > "$mnt/big/ctl/backup" || fail "cancel: $(cat "$mnt/big/ctl/result")"
line=$(waitjob big)
case "$line" in "backup cancelled"*) ;; *) fail "after cancel: $line";; esac
check test ! -e "$out/big.raw"
check test "$(ls "$out" | grep -c big)" = 0     # no temporary file left either
umount_fs
echo ok
