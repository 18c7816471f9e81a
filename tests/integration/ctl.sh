#!/bin/bash
# ctl.sh: snapshot management through the mount with plain shell redirection.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
snap=$store/qemu/snapshot/db
mount_fs
d=$mnt/db
# storesum: a checksum of every store file and image header, to prove "nothing changed".
storesum() { (cd "$store" && find . -type f -print0 | sort -z | xargs -0 md5sum) | md5sum; }
result() { cat "$d/ctl/result"; }

# mkdir = an external disk-only snapshot named the libvirt way, current, child of s8.
mkdir "$d/snapshots/n1"
check test -f "$img/db.n1"
qemu-img info --output=json "$img/db.n1" > "$work/info.json"
grep -q "\"backing-filename\": \"$img/db.s8\"" "$work/info.json" || fail "overlay backing path"
grep -q '"backing-filename-format": "qcow2"' "$work/info.json" || fail "overlay backing format"
# The overlay is written by snapfs's own qcow2 writer: byte for byte what qemu-img create
# makes of the same backing image, and clean for qemu-img check.
qemu-img create -q -f qcow2 -o "backing_fmt=qcow2,backing_file=$img/db.s8" "$work/ref.qcow2"
cmp "$work/ref.qcow2" "$img/db.n1" || fail "overlay differs from qemu-img create's"
qemu-img check -q "$img/db.n1" || fail "qemu-img check of the overlay"
check test "$(readlink "$d/current")" = snapshots/n1
check test "$(readlink "$d/snapshots/n1/parent")" = ../s8
check test "$(cat "$d/disks/vda/source")" = "$img/db.n1"
check test "$(cat "$d/disks/vda[1]/source")" = "$img/db.s8"
grep -q "<source file='$img/db.n1'/>" "$store/qemu/db.xml" || fail "domain file not switched"
# The metadata file as libvirt writes it.
f=$snap/n1.xml
check test "$(stat -c %a "$f")" = 600
check test "$(head -1 "$f")" = '<!--'
check test "$(sed -n 4p "$f")" = "  virsh snapshot-edit"
grep -qx '  <active>1</active>' "$f" || fail "new current lacks <active>1"
grep -qx '  <active>0</active>' "$snap/s8.xml" || fail "old current not rewritten"
grep -q "<source file='$img/db.s8'/>" "$f" || fail "snapshot domain lacks the pre-snapshot source"
ls "$snap" | grep -q '\.new$' && fail "leftover .new file"
# A bare name through ctl/create, with $? and ctl/result.
echo n2 > "$d/ctl/create" || fail "ctl/create n2"
check test "$(result)" = "Domain snapshot n2 created"
check test "$(readlink "$d/snapshots/n2/parent")" = ../n1
# Errors: the errno on the write, the reason in ctl/result, nothing changed.
before=$(storesum)
expect_fail 'File exists' bash -c "echo n2 > '$d/ctl/create'"
check test "$(result)" = "error: domain moment n2 already exists"
expect_fail 'Invalid argument' bash -c "echo .hidden > '$d/ctl/create'"
check test "$(result)" = "error: invalid snapshot name '.hidden': name can't start with '.'"
sed -e 's|<name>s2</name>|<name>orphan</name>|' -e 's|<name>s1</name>|<name>nosuch</name>|' \
    "$snap/s2.xml" > "$work/orphan.xml"
expect_fail 'No such file' bash -c "cat '$work/orphan.xml' > '$d/ctl/redefine'"
check test "$(result)" = "error: parent nosuch for moment orphan not found"
expect_fail 'Invalid argument' bash -c "echo '<domainsnapshot><name>x</name>' '</bogus>' > '$d/ctl/redefine'"
expect_fail 'Invalid argument' bash -c "printf '<domainsnapshot/><domainsnapshot/>' > '$d/ctl/redefine'"
head -c 1100000 /dev/zero | tr '\0' ' ' > "$work/big"
expect_fail 'File too large' bash -c "cat '$work/big' > '$d/ctl/redefine'"
expect_fail 'Invalid argument' bash -c "echo s1 --children --children-only > '$d/ctl/delete'"
check test "$(result)" = "error: Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive"
expect_fail 'No such file' bash -c "echo nosuch > '$d/ctl/delete'"
check test "$(result)" = "error: Domain snapshot not found: no domain snapshot with matching name 'nosuch'"
expect_fail 'Invalid argument' bash -c "echo bad-guid > '$mnt/web/ctl/genid'"
check test "$(cat "$mnt/web/ctl/result")" = "error: malformed genid element"
check test "$before" = "$(storesum)"
# Redefine: the saved XML of s2 as a new snapshot under s1, then reparent (subtree moves).
sed -e 's|<name>s2</name>|<name>r2</name>|' "$d/snapshots/s2/snapshot.secure.xml" > "$work/r2.xml"
cat "$work/r2.xml" > "$d/ctl/redefine" || fail "redefine r2"
check test "$(readlink "$d/snapshots/r2/parent")" = ../s1
check test "$(readlink "$d/current")" = snapshots/n2
sed -i 's|<name>s1</name>|<name>s3</name>|' "$work/r2.xml"
cat "$work/r2.xml" > "$d/ctl/redefine-current" || fail "redefine-current r2"
check test "$(readlink "$d/snapshots/r2/parent")" = ../s3
check test "$(readlink "$d/current")" = snapshots/r2
grep -qx '  <active>1</active>' "$snap/r2.xml" || fail "r2 not current on disk"
grep -qx '  <active>0</active>' "$snap/n2.xml" || fail "n2 still current on disk"
# ln -sfn makes a snapshot current (symlink EEXIST, temporary link, rename); rm clears it.
ln -sfn snapshots/s5 "$d/current"
check test "$(readlink "$d/current")" = snapshots/s5
check test "$(ls -a "$d" | grep -vc -e "^\." -e ctl -e current -e disks -e domain -e genid -e snapshots -e tree -e uuid -e job -e backup.xml -e state)" = 0
grep -qx '  <active>1</active>' "$snap/s5.xml" || fail "ln -sfn: s5 not current on disk"
rm "$d/current"
expect_fail 'No such file' stat "$d/current"
! grep -q '<active>1</active>' "$snap"/*.xml || fail "rm current left a current"
ln -s snapshots/s4 "$d/current"
check test "$(readlink "$d/current")" = snapshots/s4
# rmdir = delete --metadata: children move up, images stay.
rmdir "$d/snapshots/n1"
check test "$(readlink "$d/snapshots/n2/parent")" = ../s8
check test -f "$img/db.n1"
check test ! -e "$snap/n1.xml"
grep -q '<name>s8</name>' "$snap/n2.xml" || fail "n2's file not reparented"
# delete --children-only with current inside: current becomes the snapshot itself.
ln -sfn snapshots/s5 "$d/current"
echo "s2 --children-only --metadata" > "$d/ctl/delete"
check test "$(result)" = "Domain snapshot s2 children deleted"
check test "$(readlink "$d/current")" = snapshots/s2
check test ! -d "$d/snapshots/s4"
# genid: new, a given GUID in a liberal spelling, shown at once.
old=$(cat "$mnt/web/genid")
echo new > "$mnt/web/ctl/genid"
check test "$(cat "$mnt/web/genid")" != "$old"
echo ' 11223344-5566-4788-99AA-BBCCDDEEFF00 ' > "$mnt/web/ctl/genid"
check test "$(cat "$mnt/web/genid")" = 11223344-5566-4788-99aa-bbccddeeff00
grep -q '<genid>11223344-5566-4788-99aa-bbccddeeff00</genid>' "$mnt/web/domain.xml" || fail genid
# Revert to an internal snapshot: qemu-img snapshot -a, and a new genid.
qemu-io -f qcow2 -c 'write -P 0x99 0 64k' "$img/web-top.qcow2" > /dev/null
echo installed > "$mnt/web/ctl/revert" || fail "revert installed"
check test "$(cat "$mnt/web/ctl/result")" = "Domain snapshot installed reverted"
check test "$(cat "$mnt/web/genid")" != 11223344-5566-4788-99aa-bbccddeeff00
check test "$(readlink "$mnt/web/current")" = snapshots/installed
qemu-io -f qcow2 -c 'read -P 0x99 0 64k' "$img/web-top.qcow2" | grep -q 'Pattern verification failed' ||
    fail "internal revert did not discard later writes"
# Revert to an external snapshot: a new overlay on the images it captured.
echo s6 > "$d/ctl/revert" || fail "revert s6"
src=$(cat "$d/disks/vda/source")
check test "$src" = "$img/db.s6-2"
qemu-img convert -O raw "$img/db.s1-1" "$work/s6.raw"
cmp "$work/s6.raw" "$d/disks/vda/data" || fail "reverted disk content"
check test -f "$img/db.s8"      # the old state is kept
# Plain delete of an external leaf snapshot merges its overlay when nothing else needs it.
echo m1 > "$d/ctl/create"
qemu-io -f qcow2 -c 'write -P 0x77 0 4k' "$img/db.m1" > /dev/null
qemu-img convert -O raw "$img/db.m1" "$work/m1.raw"
echo m2 > "$d/ctl/create"
expect_fail 'Invalid argument' bash -c "echo m1 > '$d/ctl/delete'"
grep -q 'children' "$d/ctl/result" || fail "refusal reason: $(result)"
echo m2 > "$d/ctl/delete" || fail "delete m2: $(result)"
check test ! -e "$img/db.m2"
check test "$(cat "$d/disks/vda/source")" = "$img/db.m1"
cmp "$work/m1.raw" "$d/disks/vda/data" || fail "merge changed the guest view"
# define and undefine at the top.
sed -e 's|<name>legacy</name>|<name>copy</name>|' -e '/<uuid>/d' "$mnt/legacy/domain.secure.xml" > "$work/copy.xml"
cat "$work/copy.xml" > "$mnt/ctl/define" || fail "define copy"
check test -f "$store/qemu/copy.xml"
check test "$(stat -c %a "$store/qemu/copy.xml")" = 600
grep -q 'virsh edit copy' "$store/qemu/copy.xml" || fail "domain file header"
check test "$(cat "$mnt/copy/uuid" | wc -c)" = 37
sed -e 's|<name>legacy</name>|<name>copy</name>|' "$mnt/legacy/domain.secure.xml" > "$work/copy2.xml"
expect_fail 'File exists' bash -c "cat '$work/copy2.xml' > '$mnt/ctl/define'"
grep -q "^error: domain 'copy' already exists with uuid" "$mnt/ctl/result" || fail "define clash text"
expect_fail 'Invalid argument' bash -c "echo db > '$mnt/ctl/undefine'"
grep -q "^error: cannot delete inactive domain with [0-9]* snapshots" "$mnt/ctl/result" || fail undefine
echo copy > "$mnt/ctl/undefine"
check test ! -e "$store/qemu/copy.xml"
check test ! -e "$mnt/copy"
# import: saved metadata files in any order, all or nothing, current restored.
mkdir "$work/saved"
cp "$snap"/*.xml "$work/saved/"
echo "s1 --children --metadata" > "$d/ctl/delete"
check test "$(ls "$d/snapshots" | grep -c '^s')" = 0
cat $(ls "$work"/saved/*.xml | sort -r) > "$d/ctl/import" || fail "import: $(result)"
check test "$(ls "$d/snapshots" | grep -c '^s')" = "$(ls "$work/saved" | grep -c '^s')"
check test "$(readlink "$d/snapshots/s7/parent")" = ../s6
check test "$(readlink "$d/current")" = snapshots/m1     # restored from <active>1</active>
sed 's|<name>s1</name>|<name>zz</name>|' "$work/saved/s6.xml" > "$work/bad-import.xml"
before=$(storesum)
expect_fail 'No such file' bash -c "cat '$work/saved/s1.xml' '$work/bad-import.xml' > '$d/ctl/import'"
check test "$before" = "$(storesum)"
umount_fs
# -o ro: EROFS and nothing changes.
mount_fs -o ro
expect_fail 'Read-only file system' bash -c "echo x > '$d/ctl/create'"
umount_fs
echo ok
