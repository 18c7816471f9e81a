#!/bin/bash
# ctlops.sh: control operations at their edges: a failing qemu-img fails the write with
# its errno and stderr and changes nothing; undefine takes the snapshot metadata with it;
# snapshot names with blanks, tabs, newlines or a leading "--"; defines libvirt's parser
# refuses; a huge payload parsed outside the store lock.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (a small tmpfs for ENOSPC)"; exit 77; }
make_store
img=$store/images
snapdir=$store/qemu/snapshot
small=$work/small
mkdir "$small"
holder=""
cleanup_ctlops() {
    set +e
    if [ -n "$holder" ]; then kill "$holder" 2>/dev/null; fi
    if mountpoint -q "$small"; then umount "$small" || umount -l "$small"; fi
    cleanup
}
trap cleanup_ctlops EXIT
mount_fs
result() { cat "$mnt/$1/ctl/result"; }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

domxml() {   # domxml NAME DEVICES_XML: a domain definition
    cat <<EOF
<domain type='kvm'>
  <name>$1</name>
  <memory unit='KiB'>65536</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    $2
  </devices>
</domain>
EOF
}
define() {   # define NAME IMAGE: a domain on one qcow2 image
    domxml "$1" "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/><target dev='vda' bus='virtio'/></disk>" \
        > "$work/def.xml"
    cat "$work/def.xml" > "$mnt/ctl/define" || fail "define $1: $(cat "$mnt/ctl/result")"
}
internal() {   # internal DOMAIN NAME: an internal snapshot
    printf '<domainsnapshot><name>%s</name></domainsnapshot>\n' "$2" > "$mnt/$1/ctl/create" ||
        fail "internal snapshot $2 of $1: $(result "$1")"
}

# ---- undefine --snapshots-metadata removes every snapshot file ----------------------------
qemu-img create -q -f qcow2 "$img/u1.qcow2" 16M
define u1 "$img/u1.qcow2"
mkdir "$mnt/u1/snapshots/a" "$mnt/u1/snapshots/b"
internal u1 c
check test "$(ls "$snapdir/u1" | wc -l)" = 3
expect_fail 'Invalid argument' bash -c "echo u1 > '$mnt/ctl/undefine'"
check test "$(ls "$snapdir/u1" | wc -l)" = 3
echo "u1 --snapshots-metadata" > "$mnt/ctl/undefine" || fail "undefine: $(cat "$mnt/ctl/result")"
check test "$(cat "$mnt/ctl/result")" = "Domain 'u1' has been undefined"
check test ! -e "$store/qemu/u1.xml"
check test ! -e "$snapdir/u1"
# Defined again under the same name, the domain has no snapshots.
define u1 "$img/u1.qcow2"
check test -z "$(ls "$mnt/u1/snapshots")"
check test -z "$(cat "$mnt/u1/snapshots.tsv")"

# ---- a qemu-img that fails fails the write; an image a qemu holds is refused --------------
qemu-img create -q -f qcow2 "$img/lk.qcow2" 16M
define lk "$img/lk.qcow2"
internal lk i1
internal lk i2
before=$(sums "$store")
qemu-io -f qcow2 -c 'sleep 600000' "$img/lk.qcow2" > /dev/null &
holder=$!
# Until qemu-io holds its lock that forbids other writers (/proc/locks: OFDLCK, MAJ:MIN:INODE, byte 201).
ino=$(stat -c %i "$img/lk.qcow2")
while ! awk -v ino=":$ino\$" '$2 == "OFDLCK" && $6 ~ ino && $7 == 201 { found = 1 } END { exit !found }' \
        /proc/locks; do
    kill -0 "$holder" || fail "qemu-io exited"
    sleep 0.1
done
# The image a qemu writes is refused before qemu-img runs (core/files/guard.c; live.sh has qemu-img
# itself failing on a lock the checks let through).
busy="^error: domain 'lk' is busy: image '$img/lk.qcow2' is in use: a running qemu writes it"
expect_fail 'Device or resource busy' bash -c "echo i1 > '$mnt/lk/ctl/delete'"
result lk | grep -q "$busy" || fail "delete: $(result lk)"
# --children: i2 is a child of i1; nothing is deleted from either.
expect_fail 'Device or resource busy' bash -c "echo 'i1 --children' > '$mnt/lk/ctl/delete'"
expect_fail 'Device or resource busy' bash -c "echo i1 > '$mnt/lk/ctl/revert'"
result lk | grep -q "$busy" || fail "revert: $(result lk)"
kill "$holder"; wait "$holder" 2>/dev/null || :; holder=""
check test "$(sums "$store")" = "$before"
qemu-img snapshot -l "$img/lk.qcow2" | grep -qw i1 || fail "i1 left the image"
check test -d "$mnt/lk/snapshots/i1"
echo i1 > "$mnt/lk/ctl/delete" || fail "delete i1 unlocked: $(result lk)"
qemu-img snapshot -l "$img/lk.qcow2" | grep -qw i1 && fail "i1 still in the image"
check test ! -e "$snapdir/lk/i1.xml"
# A snapshot the image no longer holds: qemu-img's error, the metadata stays.
qemu-img snapshot -d i2 "$img/lk.qcow2"
expect_fail 'Input/output error' bash -c "echo i2 > '$mnt/lk/ctl/delete'"
result lk | grep -q "^error: qemu-img snapshot failed: .*i2" || fail "$(result lk)"
check test -f "$snapdir/lk/i2.xml"
echo "i2 --metadata" > "$mnt/lk/ctl/delete" || fail "delete i2 --metadata: $(result lk)"

# ---- ENOSPC from qemu-img and from the overlay writer reaches the writer as ENOSPC --------
mount -t tmpfs -o size=1M tmpfs "$small"
qemu-img create -q -f qcow2 -o cluster_size=512 "$small/full.qcow2" 16M
qemu-io -f qcow2 -c 'write -P 1 0 600k' "$small/full.qcow2" > /dev/null
define full "$small/full.qcow2"
dd if=/dev/zero of="$small/filler" bs=4k 2> /dev/null || :
before=$(sums "$store")
expect_fail 'No space left on device' bash -c \
    "echo '<domainsnapshot><name>f1</name></domainsnapshot>' > '$mnt/full/ctl/create'"
result full | grep -q '^error: qemu-img snapshot failed: .*No space left on device' ||
    fail "ENOSPC text: $(result full)"
qemu-img snapshot -l "$small/full.qcow2" | grep -qw f1 && fail "f1 left in the image"
expect_fail 'No space left on device' mkdir "$mnt/full/snapshots/f2"
check test "$(sums "$store")" = "$before"
check test ! -e "$small/full.f2"
# qemu-img's failed write may leak clusters (exit 3), never corrupt (exit 2).
rc=0; qemu-img check -q "$small/full.qcow2" > /dev/null 2>&1 || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "image damaged: qemu-img check exit $rc"

# ---- names with blanks, tabs, newlines, backslashes or a leading "--" --------------------
qemu-img create -q -f qcow2 "$img/nm.qcow2" 16M
define nm "$img/nm.qcow2"
internal nm 'sp ace'
internal nm '--lead'
internal nm 'a&#9;b'
internal nm 'x&#10;y'
internal nm 'back\slash'
# A redefine takes such a name too (libvirt's qemu driver refuses only '/' and a leading '.').
sed 's|<name>sp ace</name>|<name>re\&#10;\&#9;def</name>|' "$mnt/nm/snapshots/sp ace/snapshot.secure.xml" \
    > "$work/redef.xml"
cat "$work/redef.xml" > "$mnt/nm/ctl/redefine" || fail "redefine: $(result nm)"
# snapshots.tsv: one row per snapshot, six columns, names escaped.
check test "$(wc -l < "$mnt/nm/snapshots.tsv")" = 6
awk -F'\t' 'NF != 6 { exit 1 }' "$mnt/nm/snapshots.tsv" || fail "a name adds columns"
cut -f1 "$mnt/nm/snapshots.tsv" | sort > "$work/names"
printf '%s\n' '--lead' 'a\tb' 'back\\slash' 're\n\tdef' 'sp ace' 'x\ny' | sort > "$work/want"
diff "$work/names" "$work/want" || fail "escaped names"
cut -f2 "$mnt/nm/snapshots.tsv" | grep -qx 'x\\ny' || fail "escaped parent"
# Delete names any snapshot: a line of options ("--" for none), then the name alone.
printf -- '--\nsp ace\n' > "$mnt/nm/ctl/delete" || fail "delete 'sp ace': $(result nm)"
check test "$(result nm)" = "Domain snapshot sp ace deleted"
qemu-img snapshot -l "$img/nm.qcow2" | grep -q 'sp ace' && fail "'sp ace' left in the image"
printf -- '--metadata\n--lead\n' > "$mnt/nm/ctl/delete" || fail "delete --lead: $(result nm)"
qemu-img snapshot -l "$img/nm.qcow2" | grep -q -- '--lead' || fail "--metadata removed the data"
printf -- '--\na\\tb\n' > "$mnt/nm/ctl/delete" || fail "delete a<TAB>b: $(result nm)"
expect_fail 'Invalid argument' bash -c "printf -- '--\nback\\\\slash\n' > '$mnt/nm/ctl/delete'"
grep -q 'has a backslash that is not' "$mnt/nm/ctl/result" || fail "$(result nm)"
printf -- '--\nback\\\\slash\n' > "$mnt/nm/ctl/delete" || fail "delete back\\slash: $(result nm)"
# The one-line form keeps working, and says how to name a snapshot with blanks.
expect_fail 'Invalid argument' bash -c "echo 'sp ace' > '$mnt/nm/ctl/delete'"
grep -q 'a name with blanks goes alone on a line after a line of options' "$mnt/nm/ctl/result" || fail "$(result nm)"
# rmdir deletes the metadata of any name.
rmdir "$mnt/nm/snapshots/x"$'\n'"y" || fail "rmdir x<NL>y: $(result nm)"
mkdir "$mnt/nm/snapshots/two words"
rmdir "$mnt/nm/snapshots/two words" || fail "rmdir 'two words': $(result nm)"
# The two lines may come in separate writes, with closes of copies between them.
mkdir "$mnt/nm/snapshots/three w"
exec 3> "$mnt/nm/ctl/delete"
printf -- '--metadata\n' >&3
printf 'three w\n' >&3 || fail "delete 'three w': $(result nm)"
exec 3>&-
check test ! -e "$mnt/nm/snapshots/three w"
printf -- '--metadata\nre\\n\\tdef\n' > "$mnt/nm/ctl/delete" || fail "delete re..def: $(result nm)"
check test -z "$(cat "$mnt/nm/snapshots.tsv")"
check test -z "$(ls "$snapdir/nm")"

# ---- define: what libvirt's parser refuses, with its words; nothing is written ------------
baddef() {   # baddef NAME DEVICES_XML EXPECTED_RESULT
    domxml "$1" "$2" > "$work/bad.xml"
    expect_fail 'Invalid argument' bash -c "cat '$work/bad.xml' > '$mnt/ctl/define'"
    check test "$(cat "$mnt/ctl/result")" = "error: $3"
    check test ! -e "$store/qemu/$1.xml"
}
http() {   # http COOKIES_XML: an http disk with those cookies
    echo "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='http' name='/x.img'><host name='h.example'/><cookies>$1</cookies></source><target dev='vda' bus='virtio'/></disk>"
}
baddef v1 "<graphics type='vnc' port='-1' passwd='p' passwdValidTo='VNC-SECRET'/>" \
    "cannot parse password validity time 'VNC-SECRET', expect YYYY-MM-DDTHH:MM:SS"
baddef v2 "<graphics type='spice' passwd='p' passwdValidTo='2030-01-01T00:00:00Z'/>" \
    "cannot parse password validity time '2030-01-01T00:00:00Z', expect YYYY-MM-DDTHH:MM:SS"
baddef v3 "<graphics type='vnc' passwd='p' connected='fail'/>" "VNC supports connected='keep' only"
baddef c1 "$(http "<cookie name='a'>one two</cookie>")" "value of cookie 'a' contains invalid characters"
baddef c2 "$(http "<cookie name='a'>x;y</cookie>")" "value of cookie 'a' contains invalid characters"
baddef c3 "$(http "<cookie name='a'>x&quot;y</cookie>")" "value of cookie 'a' contains invalid characters"
baddef c4 "$(http "<cookie name='a b'>v</cookie>")" "cookie name 'a b' contains invalid characters"
baddef c5 "$(http "<cookie name='a'>v</cookie><cookie name='a'>w</cookie>")" "duplicate cookie 'a'"
baddef c6 "$(http "<cookie name='a'></cookie>")" "missing value for cookie 'a'"
# What libvirt accepts is still accepted: a quoted value, a valid time, another protocol.
domxml good "$(http "<cookie name='a'>&quot;quoted&quot;</cookie><cookie name='b'>x=y</cookie>")
    <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='ftp' name='/x.img'><host name='h.example'/><cookies><cookie name='a'>a b</cookie></cookies></source><target dev='vdb' bus='virtio'/></disk>
    <graphics type='vnc' port='-1' passwd='p' passwdValidTo='2030-01-01T00:00:00' connected='keep'/>" \
    > "$work/good.xml"
cat "$work/good.xml" > "$mnt/ctl/define" || fail "define good: $(cat "$mnt/ctl/result")"

# ---- a payload is parsed before the store lock is taken ----------------------------------
# Another process holds the store lock; a create whose (large) payload the parser refuses
# fails at once, without queueing for the lock: no lock request of snapfs ever waits.
python3 -c "
print('<domainsnapshot><name>big</name><description' +
      ''.join(\" a%d='1'\" % i for i in range(5000)) + '>x</description>' +
      '<memory snapshot=\'bogus\'/></domainsnapshot>')" > "$work/huge.xml"
mkfifo "$work/go"
python3 -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)   # a POSIX lock: it conflicts with the OFD lock snapfs takes
print("locked", flush=True)
sys.stdin.read()' "$snapdir/.snapfs.lock" < "$work/go" > "$work/locked" &
exec 7> "$work/go"
until grep -q locked "$work/locked"; do sleep 0.05; done
( rc=0; cat "$work/huge.xml" > "$mnt/u1/ctl/create" 2> "$work/huge.err" || rc=$?
  echo "$rc" > "$work/huge.rc" ) 7>&- &
bg=$!
lockino=$(stat -c %i "$snapdir/.snapfs.lock")
waited=0
while kill -0 "$bg" 2> /dev/null; do   # /proc/locks marks a waiting request "->"
    if awk -v ino=":$lockino\$" '$2 == "->" && $7 ~ ino { f = 1 } END { exit !f }' /proc/locks
    then
        waited=1
        break
    fi
    sleep 0.05
done
exec 7>&-   # the holder reads EOF and exits: the lock is free
wait "$bg"
[ "$waited" = 0 ] || fail "the create queued for the store lock before parsing its payload"
check test "$(cat "$work/huge.rc")" != 0
grep -q 'Invalid argument' "$work/huge.err" || fail "huge create: $(cat "$work/huge.err")"
result u1 | grep -q "bogus" || fail "huge create: $(result u1)"
# With the lock free, another domain's create goes through.
mkdir "$mnt/lk/snapshots/q1" || fail "create after the lock: $(result lk)"
umount_fs

# ---- a command snapfs runs dies with snapfs -----------------------------------------------
# A qemu-img that never ends (first on PATH) is running an internal snapshot when snapfs is
# killed: the kernel kills it too (PR_SET_PDEATHSIG), it does not go on changing the image.
mkdir "$work/fakebin"
printf '#!/bin/sh\necho $$ > "%s/child.pid"\nexec sleep 100000\n' "$work" > "$work/fakebin/qemu-img"
chmod +x "$work/fakebin/qemu-img"
PATH=$work/fakebin:$PATH mount_fs
( printf '<domainsnapshot><name>k1</name></domainsnapshot>\n' > "$mnt/lk/ctl/create" ) \
    2> /dev/null &
creator=$!
until [ -s "$work/child.pid" ]; do
    kill -0 "$creator" 2> /dev/null || fail "the create ended before its qemu-img ran: $(result lk)"
    sleep 0.05
done
child=$(cat "$work/child.pid")
holder=$child   # killed on exit if it outlives the test
kill -9 "$pid"
wait "$pid" 2> /dev/null || :
pid=""
for _ in $(seq 600); do kill -0 "$child" 2> /dev/null || break; sleep 0.1; done
kill -0 "$child" 2> /dev/null && fail "qemu-img outlived snapfs"
holder=""
fusermount3 -u "$mnt" 2> /dev/null || umount -l "$mnt"
