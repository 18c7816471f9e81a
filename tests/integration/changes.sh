#!/bin/bash
# changes.sh: changes another process makes to the store show up without remounting.
. "$(dirname "$0")/lib.sh"
make_store
mount_fs
snap=$store/qemu/snapshot/db
# waitfor CMD...: polls CMD for up to 3 s (the contract is "within a second"; the
# margin keeps a loaded CI machine from failing the test) and logs how long it took.
waitfor() {
    local start=$(date +%s%N)
    for _ in $(seq 60); do
        if eval "$*" >/dev/null 2>&1; then
            echo "seen after $(( ($(date +%s%N) - start) / 1000000 )) ms: $*"
            return 0
        fi
        sleep 0.05
    done
    fail "not seen within 3 s: $*"
}
check test "$(ls "$mnt/db/snapshots" | wc -l)" = 8
cat "$mnt/db/tree" > /dev/null
# A new snapshot file, written as libvirt writes it (temp file, rename).
sed -e 's|<name>s8</name>|<name>s9</name>|' -e 's|<name>s6</name>|<name>s8</name>|' \
    -e 's|<active>1</active>|<active>0</active>|' "$snap/s8.xml" > "$snap/s9.xml.new"
mv "$snap/s9.xml.new" "$snap/s9.xml"
waitfor 'test -d "$mnt/db/snapshots/s9"'
waitfor 'grep -q s9 "$mnt/db/tree"'
check test "$(readlink "$mnt/db/snapshots/s9/parent")" = ../s8
check test "$(ls "$mnt/db/snapshots/s8/children")" = s9
# Rewritten in place, same second, new content.
# (snapshot.xml read twice first: the kernel then serves it from its page cache)
cat "$mnt/db/snapshots/s9/snapshot.xml" "$mnt/db/snapshots/s9/snapshot.xml" > /dev/null
sed -i 's|<state>shutoff</state>|<description>rewritten</description>\n  <state>shutoff</state>|' "$snap/s9.xml"
waitfor 'grep -qx rewritten "$mnt/db/snapshots/s9/description"'
check test "$(stat -c %s "$mnt/db/snapshots/s9/description")" = 10
waitfor 'grep -q "<description>rewritten</description>" "$mnt/db/snapshots/s9/snapshot.xml"'
check test "$(stat -c %s "$mnt/db/snapshots/s9/snapshot.xml")" = "$(cat "$mnt/db/snapshots/s9/snapshot.xml" | wc -c)"
sed '1,7d; /^  <active>/d' "$snap/s9.xml" | cmp - "$mnt/db/snapshots/s9/snapshot.xml" ||
    fail "snapshot.xml of s9 after the change"
cmp <(sed '1,7d; /^  <active>/d' "$snap/s9.xml") "$mnt/db/snapshots/s9/snapshot.xml" ||
    fail "snapshot.xml of s9 read again"
# Removed.
rm "$snap/s9.xml"
waitfor 'test ! -e "$mnt/db/snapshots/s9"'
waitfor 'test "$(ls "$mnt/db/snapshots/s8/children" | wc -l)" = 0'
# Current moved by another process.
sed -i 's|<active>1</active>|<active>0</active>|' "$snap/s8.xml"
sed -i 's|<active>0</active>|<active>1</active>|' "$snap/s3.xml"
waitfor 'test "$(readlink "$mnt/db/current")" = snapshots/s3'
# A domain defined and undefined.
sed -e 's|<name>legacy</name>|<name>newdom</name>|' -e 's|0a0b0c0d-0e0f|0a0b0c0d-aaaa|' \
    "$store/qemu/legacy.xml" > "$store/qemu/newdom.xml"
waitfor 'test -f "$mnt/newdom/uuid"'
check test "$(cat "$mnt/newdom/uuid")" = 0a0b0c0d-aaaa-4010-8111-121314151617
rm "$store/qemu/newdom.xml"
waitfor 'test ! -e "$mnt/newdom"'
# The domain's disk switched to another image (like a new external snapshot).
sed -i "s|$store/images/db.s8|$store/images/db.s7|" "$store/qemu/db.xml"
waitfor 'test "$(cat "$mnt/db/disks/vda/source")" = "$store/images/db.s7"'
qemu-img convert -O raw "$store/images/db.s7" "$work/ref.raw"
waitfor 'cmp "$work/ref.raw" "$mnt/db/disks/vda/data"'
umount_fs
echo ok
