#!/bin/bash
# daemon.sh: the libvirt daemon backend (snapfs -c URI) over libvirt's test driver
# (test:///default: an in-process daemon with one running domain, "test"): the tree, the
# state, libvirt's own definitions, each operation as one API call with libvirt's own
# message in ctl/result and its errno, a read-only connection, a URI that cannot connect.
. "$(dirname "$0")/lib.sh"
uri=test:///default
"$FS" --help 2>&1 | grep -q -- '--connect' || { echo "built without libvirt"; exit 77; }

mount_c() {   # mount_c [OPTIONS...]: mounts $uri on $mnt, waits for it
    mount_args "$@" -c "$uri"
}
result() { cat "$mnt/$1/ctl/result"; }
t=$mnt/test

mount_c
check test "$(ls "$mnt" | tr '\n' ' ')" = "ctl test "
check test "$(cat "$t/state")" = running
# The definition is libvirt's own (virsh prints one more newline).
virsh -c "$uri" dumpxml --inactive test | sed '$d' > "$work/want.xml"
diff "$work/want.xml" "$t/domain.xml" || fail "domain.xml differs from virsh dumpxml --inactive"
# The running definition, while it runs (test:///default's domain always does).
virsh -c "$uri" dumpxml test | sed '$d' > "$work/live.xml"
diff "$work/live.xml" "$t/domain.live.xml" || fail "domain.live.xml differs from virsh dumpxml"
ls "$t" | grep -qx domain.live.secure.xml || fail "no domain.live.secure.xml"
check test "$(stat -c %a "$t/domain.live.secure.xml")" = 400
check test -z "$(ls "$t/snapshots")"
check test ! -e "$t/current"

# create: a document as virsh snapshot-create takes it
echo '<domainsnapshot><name>a</name><description>first</description></domainsnapshot>' \
    > "$t/ctl/create" || fail "create a: $(result test)"
check test "$(result test)" = "Domain snapshot a created"
check test "$(cat "$t/snapshots/a/description")" = first
check test "$(readlink "$t/current")" = snapshots/a
grep -q '<name>a</name>' "$t/snapshots/a/snapshot.xml" || fail "snapshot.xml of a"
echo '<domainsnapshot><name>b</name></domainsnapshot>' > "$t/ctl/create"
check test "$(readlink "$t/snapshots/b/parent")" = ../a
check test "$(readlink "$t/current")" = snapshots/b
check test "$(ls "$t/snapshots/a/children")" = b
printf 'a\n  |\n  +- b\n    \n\n' > "$work/tree"
cmp "$work/tree" "$t/tree" || fail "tree: $(cat "$t/tree")"
# More snapshots than the tree keeps in full (64): each is loaded light (the daemon's document
# kept), made full to be read, light again, full again: every one reads as itself.
for k in $(seq 70); do
    echo "<domainsnapshot><name>p$k</name><description>d$k</description></domainsnapshot>" \
        > "$t/ctl/create" || fail "create p$k: $(result test)"
done
for _ in 1 2; do
    for k in $(seq 70); do
        grep -q "<name>p$k</name>" "$t/snapshots/p$k/snapshot.xml" || fail "p$k's snapshot.xml"
    done
done
check test "$(cat "$t/snapshots/p7/description")" = d7
check test "$(readlink "$t/snapshots/p7/parent")" = ../p6
grep -q '<name>test</name>' "$t/snapshots/p1/domain.xml" || fail "p1's domain.xml"
check test "$(ls "$t/snapshots/b/children")" = p1
# A bare name asks an external disk-only snapshot (DISK_ONLY|ATOMIC): the test driver
# refuses it, and libvirt's words come back with EINVAL; nothing is made.
expect_fail 'Invalid argument' bash -c "echo c > '$t/ctl/create'"
result test | grep -q "^error: unsupported flags" || fail "bare create: $(result test)"
check test ! -e "$t/snapshots/c"
# A name taken: libvirt's message, EEXIST.
expect_fail 'File exists' bash -c "echo '<domainsnapshot><name>a</name></domainsnapshot>' > '$t/ctl/create'"
result test | grep -q "already exists" || fail "duplicate: $(result test)"

# redefine: the description changes, the rest stays
sed 's|<description>first</description>|<description>again</description>|' \
    "$t/snapshots/a/snapshot.secure.xml" > "$work/a.xml"
cat "$work/a.xml" > "$t/ctl/redefine" || fail "redefine: $(result test)"
check test "$(cat "$t/snapshots/a/description")" = again
# current and revert
echo a > "$t/ctl/revert" || fail "revert: $(result test)"
check test "$(result test)" = "Domain snapshot a reverted"
check test "$(readlink "$t/current")" = snapshots/a
ln -sfn snapshots/b "$t/current" || fail "ln -sfn: $(result test)"
check test "$(readlink "$t/current")" = snapshots/b
# clearing current (libvirt has no call: a parentless copy made current and deleted again)
rm "$t/current" || fail "rm current: $(result test)"
check test "$(result test)" = "domain 'test' has no current snapshot now"
check test ! -e "$t/current"
check test "$(ls "$t/snapshots" | grep -v "^p[0-9]*$" | tr '\n' ' ')" = "a b "   # and p1..p70
check test "$(readlink "$t/snapshots/b/parent")" = ../a
ln -sfn snapshots/b "$t/current" || fail "ln -sfn: $(result test)"

# delete: libvirt's message and ENOENT for a snapshot that is not there
expect_fail 'No such file or directory' bash -c "echo nosuch > '$t/ctl/delete'"
result test | grep -q "no domain snapshot with matching name 'nosuch'" || fail "$(result test)"
echo 'a --children' > "$t/ctl/delete" || fail "delete a --children: $(result test)"
check test -z "$(ls "$t/snapshots")"
check test ! -e "$t/current"

# genid of a running domain applies at its next start
echo new > "$t/ctl/genid" || fail "genid: $(result test)"
result test | grep -q "applies at the next start" || fail "genid: $(result test)"
grep -Eq '^[0-9a-f-]{36}$' "$t/genid" || fail "genid file: $(cat "$t/genid")"
grep -q "<genid>$(cat "$t/genid")</genid>" "$t/domain.xml" || fail "genid not in domain.xml"

# define and undefine through the top ctl/
sed -e 's|<name>test</name>|<name>other</name>|' -e '/<uuid>/d' -e '/<genid>/d' "$t/domain.xml" \
    > "$work/other.xml"
cat "$work/other.xml" > "$mnt/ctl/define" || fail "define: $(cat "$mnt/ctl/result")"
check test "$(cat "$mnt/other/state")" = "shut off"
echo other > "$mnt/ctl/undefine" || fail "undefine: $(cat "$mnt/ctl/result")"
check test ! -e "$mnt/other"
umount_fs

# A read-only connection: every change fails with EROFS, reads work.
mount_c -o ro
check test "$(cat "$t/state")" = running
expect_fail 'Read-only file system' bash -c "echo '<domainsnapshot/>' > '$t/ctl/create'"
umount_fs

# A URI that cannot connect: snapfs says libvirt's words and does not mount.
if "$FS" -f -c test:///nonexistent/file.xml "$mnt" 2> "$work/err"; then
    fail "mounted a URI that cannot connect"
fi
grep -q "cannot connect to 'test:///nonexistent/file.xml'" "$work/err" || fail "$(cat "$work/err")"
mountpoint -q "$mnt" && fail "mounted"
echo ok
