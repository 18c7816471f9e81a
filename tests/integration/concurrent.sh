#!/bin/bash
# concurrent.sh: two writers in one mount and two more in a second mount of the same store,
# readers of data and ls -R meanwhile; everything lands once, the tree stays consistent.
. "$(dirname "$0")/lib.sh"
command -v xmllint > /dev/null || { echo "xmllint missing (libxml2-utils)"; exit 77; }
make_store
n=${CONC_N:-250}   # per writer, 4 writers: 1,000 in all (scripts/sanitize.sh uses fewer)
snap=$store/qemu/snapshot/db
sed 's|<active>1</active>|<active>0</active>|' "$snap/s3.xml" > "$work/template.xml"   # parent s2
mount_fs
mnt2=$work/mnt2
mkdir -p "$mnt2"
G_DEBUG=fatal-criticals "$FS" -f "$store" "$mnt2" 2>> "$work/log2" &
pid2=$!
trap 'set +e; fusermount3 -u "$mnt2" 2>/dev/null; kill $pid2 2>/dev/null; cleanup' EXIT
for _ in $(seq 300); do mountpoint -q "$mnt2" && break; sleep 0.1; done
mountpoint -q "$mnt2" || fail "second mount"

# writer MOUNT PREFIX: N metadata-only snapshots through ctl/redefine; each must succeed.
writer() {
    local m=$1 p=$2 i
    for i in $(seq "$n"); do
        sed "s|<name>s3</name>|<name>$p$i</name>|" "$work/template.xml" > "$m/db/ctl/redefine" ||
            { echo "$p$i: $(cat "$m/db/ctl/result")"; return 1; }
    done
}
# reader MOUNT TAG: ls -R and data reads until told to stop; errors other than ENOENT are kept.
qemu-img convert -O raw "$store/images/db.s8" "$work/db.raw"
want=$(md5sum < "$work/db.raw")
reader() {
    local m=$1 tag=$2
    while [ ! -e "$work/stop" ]; do
        ls -R "$m" > /dev/null 2>> "$work/ls-$tag.err"
        got=$(md5sum < "$m/db/disks/vda/data" 2>> "$work/data-$tag.err") || true
        [ "$got" = "$want" ] || echo "data differs: $got" >> "$work/data-$tag.err"
        cat "$m/db/snapshots.tsv" "$m/db/tree" > /dev/null 2>> "$work/ls-$tag.err"
    done
}
reader "$mnt" a & r1=$!
reader "$mnt2" b & r2=$!
start=$SECONDS
writer "$mnt" a1- > "$work/w1.err" 2>&1 & w1=$!
writer "$mnt" a2- > "$work/w2.err" 2>&1 & w2=$!
writer "$mnt2" b1- > "$work/w3.err" 2>&1 & w3=$!
writer "$mnt2" b2- > "$work/w4.err" 2>&1 & w4=$!
rc=0
for w in $w1 $w2 $w3 $w4; do wait "$w" || rc=1; done
elapsed=$((SECONDS - start))
touch "$work/stop"
wait "$r1" "$r2"
[ "$rc" = 0 ] || { cat "$work"/w*.err; fail "a writer failed"; }
echo "$((4 * n)) snapshots by 4 writers in 2 mounts: ${elapsed}s"
# Readers: nothing but ENOENT (something just replaced), and the data never changed.
for f in "$work"/ls-*.err "$work"/data-*.err; do
    if grep -v 'No such file or directory' "$f"; then fail "reader error in $(basename "$f")"; fi
done

# Everything exists once, in both mounts and on disk; the tree is consistent.
total=$((4 * n + 8))
for m in "$mnt" "$mnt2"; do
    for _ in $(seq 30); do
        [ "$(ls "$m/db/snapshots" | wc -l)" = "$total" ] && break
        sleep 0.1
    done
    check test "$(ls "$m/db/snapshots" | wc -l)" = "$total"
    check test "$(cut -f1 "$m/db/snapshots.tsv" | sort | uniq -d | wc -l)" = 0
    check test "$(wc -l < "$m/db/snapshots.tsv")" = "$total"
    for p in a1- a2- b1- b2-; do
        for i in 1 "$n" $((n / 2)); do
            check test "$(readlink "$m/db/snapshots/$p$i/parent")" = ../s2
        done
    done
    check test "$(readlink "$m/db/current")" = snapshots/s8
done
check test "$(ls "$snap" | grep -c '\.xml$')" = "$total"
check test -z "$(find "$store" -name '*.new')"
xmllint --noout "$snap"/*.xml || fail "a metadata file does not parse"
check test "$(grep -l '<active>1</active>' "$snap"/*.xml | wc -l)" = 1
check test "$(grep -c '<name>s2</name>' "$work/template.xml")" = 1

# Each mount shows the other's change within about a second (polled, 2 s at most).
seen() {   # seen MOUNT NAME
    for _ in $(seq 20); do
        [ -d "$1/db/snapshots/$2" ] && return 0
        sleep 0.1
    done
    return 1
}
sed 's|<name>s3</name>|<name>from-a</name>|' "$work/template.xml" > "$mnt/db/ctl/redefine"
seen "$mnt2" from-a || fail "mount 2 did not see mount 1's snapshot"
sed 's|<name>s3</name>|<name>from-b</name>|' "$work/template.xml" > "$mnt2/db/ctl/redefine"
seen "$mnt" from-b || fail "mount 1 did not see mount 2's snapshot"
echo "s8 --metadata" > "$mnt2/db/ctl/delete"
for _ in $(seq 20); do [ -e "$mnt/db/snapshots/s8" ] || break; sleep 0.1; done
check test ! -e "$mnt/db/snapshots/s8"

# Every snapshot.xml (many more than the 64 the daemon keeps in full per domain, so most are
# read again after being made light) is its file without header and <active>, byte for
# byte, and its size is the one stat gives: twice, the second time from the page cache.
for pass in 1 2; do
    bad=0
    for f in "$snap"/*.xml; do
        n=$(basename "$f" .xml)
        sed '1,7d; /^  <active>/d' "$f" > "$work/expected.xml"
        cmp -s "$work/expected.xml" "$mnt/db/snapshots/$n/snapshot.xml" || bad=$((bad + 1))
        [ "$(stat -c %s "$mnt/db/snapshots/$n/snapshot.xml")" = "$(stat -c %s "$work/expected.xml")" ] ||
            bad=$((bad + 1))
    done
    check test "$bad" = 0
done

fusermount3 -u "$mnt2"
wait "$pid2" || fail "second snapfs exited with $?"
umount_fs
if grep -E 'CRITICAL|WARNING|==[0-9]+==|runtime error' "$work/log2"; then fail "suspicious log output (mount 2)"; fi
echo ok
