#!/bin/bash
# changes.sh: changes another process makes to the store show up without remounting.
# Run twice: with inotify (the default) and with -o poll (stat-based polling, as
# for a store on a network filesystem).
. "$(dirname "$0")/lib.sh"
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
# changes OPTIONS...: mounts a new store with OPTIONS and changes it underneath.
changes() {
    rm -rf "$store"
    make_store
    mount_fs "$@"
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
    # The domain's snapshot directory moved away and back, then made again.
    mv "$snap" "$work/db.aside"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 0'
    mv "$work/db.aside" "$snap"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 8'
    cp -a "$snap" "$work/db.copy"
    rm -r "$snap"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 0'
    mv "$work/db.copy" "$snap"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 8'
    waitfor 'test "$(readlink "$mnt/db/current")" = snapshots/s3'
    # The whole snapshot directory moved away and back.
    mv "$store/qemu/snapshot" "$work/snapshot.aside"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 0'
    mv "$work/snapshot.aside" "$store/qemu/snapshot"
    waitfor 'test "$(ls "$mnt/db/snapshots" | wc -l)" = 8'
    # The config directory swapped for a copy with a change in it: the snapshot
    # directory inside moves with no event of its own.
    cp -a "$store/qemu" "$work/qemu.new"
    sed -i 's|<state>shutoff</state>|<description>swapped</description>\n  <state>shutoff</state>|' \
        "$work/qemu.new/snapshot/db/s5.xml"
    mv "$store/qemu" "$work/qemu.old" && mv "$work/qemu.new" "$store/qemu"
    waitfor 'grep -qx swapped "$mnt/db/snapshots/s5/description"'
    rm -rf "$work/qemu.old"
    # A snapshot in a directory that the loaded domain did not have.
    check test "$(ls "$mnt/legacy/snapshots" | wc -l)" = 0
    rm -rf "$store/qemu/snapshot/legacy"
    mkdir "$store/qemu/snapshot/legacy"
    sed -e 's|<active>1</active>|<active>0</active>|' -e 's|<parent>.*</parent>||' \
        -e 's|<name>db</name>|<name>legacy</name>|' "$snap/s1.xml" \
        > "$store/qemu/snapshot/legacy/s1.xml"
    waitfor 'test -d "$mnt/legacy/snapshots/s1"'
    # A burst of changes: the last state wins.
    sed -i 's|<state>shutoff</state>|<description>burst 0</description>\n  <state>shutoff</state>|' \
        "$snap/s2.xml"
    for i in $(seq 20); do
        sed -i "s|<description>[^<]*</description>|<description>burst $i</description>|" "$snap/s2.xml"
    done
    waitfor 'grep -qx "burst 20" "$mnt/db/snapshots/s2/description"'
    umount_fs
}
changes
changes -o poll
echo ok
