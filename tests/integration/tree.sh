#!/bin/bash
# tree.sh: domains and snapshots as files: tree, symlinks, metadata files, sizes, modes, times.
. "$(dirname "$0")/lib.sh"
make_store
mount_fs
d=$mnt/db
# virsh snapshot-list --tree, byte for byte (trailing spaces included).
printf '%s\n' 's1' '  |' '  +- s2' '  |   |' '  |   +- s3' '  |   +- s4' '  |       |' \
    '  |       +- s5' '  |         ' '  +- s6' '      |' '      +- s7' '      +- s8' '        ' '' \
    > "$work/tree.expected"
cmp "$work/tree.expected" "$d/tree" || { diff <(cat -A "$work/tree.expected") <(cat -A "$d/tree"); fail tree; }
check test "$(ls "$d")" = "$(printf 'backup.xml\nctl\ncurrent\ndisks\ndomain.secure.xml\ndomain.xml\ngenid\njob\nsnapshots\nsnapshots.tsv\nstate\ntree\nuuid')"
check test "$(cat "$d/state")" = "shut off"   # no libvirt runs this store
check test "$(ls "$d/snapshots" | sort | tr '\n' ' ')" = "s1 s2 s3 s4 s5 s6 s7 s8 "
check test "$(readlink "$d/current")" = snapshots/s8
check test "$(cat "$d/current/state")" = shutoff
check test "$(readlink "$d/snapshots/s5/parent")" = ../s4
check test "$(cat "$d/snapshots/s5/parent/parent/creationTime")" = 1700007200
expect_fail 'No such file' stat "$d/snapshots/s1/parent"
check test "$(ls "$d/snapshots/s1/children" | tr '\n' ' ')" = "s2 s6 "
check test "$(readlink "$d/snapshots/s1/children/s6")" = ../../s6
check test "$(ls "$d/snapshots/s3/children" | wc -l)" = 0
check test "$(cat "$d/snapshots/s1/description")" = "fresh install & updates"
check test "$(stat -c %s "$d/snapshots/s2/description")" = 0
check test "$(cat "$d/snapshots/s3/state")" = shutoff
check test "$(cat "$d/snapshots/s3/creationTime")" = 1700010800
check test "$(cat "$d/uuid")" = 6f1e3b52-7c0e-4c1a-9d55-0d1f5e0a7b11
check test "$(stat -c %s "$d/genid")" = 0
check test "$(cat "$mnt/web/genid")" = 8f3c9a1e-5b7d-4c2e-9f0a-1b2c3d4e5f60
# snapshots.tsv: name, parent, state, creationTime, current, topological order.
check test "$(grep -c . "$d/snapshots.tsv")" = 8
check grep -qxP 's1\t\tshutoff\t1700003600\tno\t0' "$d/snapshots.tsv"
check grep -qxP 's8\ts6\tshutoff\t1700028800\tyes\t[0-9]+' "$d/snapshots.tsv"
awk -F'\t' '{ if ($2 != "" && !($2 in seen)) exit 1; seen[$1] = 1 }' "$d/snapshots.tsv" ||
    fail "snapshots.tsv is not parents first"
# snapshot.xml is the stored metadata without header and <active>, byte for byte.
for s in s1 s4 s8; do
    sed '1,7d; /^  <active>/d' "$store/qemu/snapshot/db/$s.xml" > "$work/$s.expected"
    cmp "$work/$s.expected" "$d/snapshots/$s/snapshot.xml" ||
        { diff "$work/$s.expected" "$d/snapshots/$s/snapshot.xml"; fail "snapshot.xml of $s"; }
done
# The domain file without its header, byte for byte.
sed '1,7d' "$store/qemu/db.xml" > "$work/db.expected"
cmp "$work/db.expected" "$d/domain.xml" || { diff "$work/db.expected" "$d/domain.xml"; fail domain.xml; }
# Secrets only in the secure files, which are 0400.
w=$mnt/web
! grep -q passwd "$w/domain.xml" || fail "public domain.xml shows the password"
grep -q "passwd='s3cret-vnc'" "$w/domain.secure.xml" || fail "secure domain.xml lacks the password"
! grep -q passwd "$w/snapshots/installed/snapshot.xml" || fail "public snapshot.xml shows the password"
! grep -q passwd "$w/snapshots/installed/domain.xml" || fail "snapshot domain.xml shows the password"
grep -q "passwd='s3cret-vnc'" "$w/snapshots/installed/snapshot.secure.xml" || fail "secure snapshot lacks it"
! grep -q '<active>' "$w/snapshots/installed/snapshot.secure.xml" || fail "<active> shown"
check test "$(stat -c %a "$w/domain.secure.xml")" = 400
check test "$(stat -c %a "$w/snapshots/installed/snapshot.secure.xml")" = 400
# Outputs validate against libvirt's schemas.
xmllint --noout --relaxng "$SNAPFS_SCHEMA_DIR/domainsnapshot.rng" "$d/snapshots/s4/snapshot.xml" \
    "$w/snapshots/configured/snapshot.secure.xml" 2>"$work/xmllint" || { cat "$work/xmllint"; fail rng; }
xmllint --noout --relaxng "$SNAPFS_SCHEMA_DIR/domain.rng" "$w/domain.xml" "$d/snapshots/s2/domain.xml" \
    2>"$work/xmllint" || { cat "$work/xmllint"; fail rng; }
# Every generated file: stat size == bytes read (no size-0 files that read as text).
find "$mnt" -name ctl -prune -o -type f ! -name data -print | while read -r f; do
    [ "$(stat -c %s "$f")" = "$(wc -c < "$f")" ] || fail "size of $f"
done
# Snapshot directories carry creationTime; link counts follow subdirectories.
check test "$(stat -c %Y "$d/snapshots/s3")" = 1700010800
check test "$(stat -c %h "$d/snapshots")" = 10
check test "$(stat -c %h "$d/snapshots/s1")" = 4
check test "$(stat -c %h "$d/snapshots/s1/children/s2/children")" = 2
umount_fs
echo ok
