#!/bin/bash
# race.sh: readers of every node kind race writers through two mounts and an outside
# process rewriting the store as libvirt does. Every request sees one consistent version
# of its domain: the daemon survives, each read is ENOENT or a well-formed answer, the
# log is clean and the store consistent at the end. scripts/tsan.sh runs it under TSan.
. "$(dirname "$0")/lib.sh"
command -v xmllint > /dev/null || { echo "xmllint missing (libxml2-utils)"; exit 77; }
command -v python3 > /dev/null || { echo "python3 missing"; exit 77; }
race_py=$SNAPFS_SRCDIR/tests/integration/race.py
n=${RACE_N:-8}           # rounds per writer
flips=${RACE_FLIPS:-1000} # rounds of outside rewrites of web's snapshot files alone
make_store
snap=$store/qemu/snapshot/db
websnap=$store/qemu/snapshot/web
sed 's|<active>1</active>|<active>0</active>|' "$snap/s3.xml" > "$work/template.xml"   # parent s2
(cd "$websnap" && sha256sum -- *.xml) > "$work/web.sum"
# The guest view of each disk's first MiB, which no write below changes.
for d in db/vda:db.s8 web/vda:web-top.qcow2 'web/vda[1]:web-mid.qcow2'; do
    qemu-img convert -O raw "$store/images/${d#*:}" "$work/disk.raw"
    echo "${d%%:*} $(head -c 1048576 "$work/disk.raw" | md5sum | cut -d' ' -f1)"
done > "$work/sums"
rm -f "$work/disk.raw"
mount_fs
mnt2=$work/mnt2
mkdir -p "$mnt2"
VGLOG=$work/valgrind2.log G_DEBUG=fatal-criticals $FS_WRAPPER "$FS" -f "$store" "$mnt2" \
    2>> "$work/log2" &
pid2=$!
trap 'set +e; fusermount3 -u "$mnt2" 2>/dev/null; kill $pid2 2>/dev/null; cleanup' EXIT
for _ in $(seq 300); do mountpoint -q "$mnt2" && break; sleep 0.1; done
mountpoint -q "$mnt2" || fail "second mount"

# A text opened for the page cache and read after its domain changed: the read is the
# text of one version, whole.
python3 "$race_py" torn "$mnt" "$websnap" "$work" 64 || fail "a read was cut to another version's size"
(cd "$websnap" && sha256sum -c --quiet "$work/web.sum") || fail "web's snapshot files not restored"
# Each version of a text its own inode: opens before a change read their version,
# new opens the new one, and stat agrees with the read.
python3 "$race_py" versions "$mnt" "$websnap" "$work" || fail "versions of a text"
(cd "$websnap" && sha256sum -c --quiet "$work/web.sum") || fail "web's snapshot files not restored"

# Writers: each operation must succeed; a failure is kept with ctl/result.
op() {
    local m=$1; shift
    kill -0 "$pid" 2>/dev/null && kill -0 "$pid2" 2>/dev/null || return 0   # reported below
    "$@" 2>> "$work/writer.err" || echo "$*: $(cat "$m/db/ctl/result")" >> "$work/writer.err"
}
writer1() {   # mount 1: creates (new overlays, current moves), redefines, genid, current, deletes
    local i
    for i in $(seq "$n"); do
        op "$mnt" mkdir "$mnt/db/snapshots/c$i"
        op "$mnt" sh -c "sed 's|<name>s3</name>|<name>r$i</name>|' '$work/template.xml' > '$mnt/db/ctl/redefine'"
        op "$mnt" sh -c "echo new > '$mnt/db/ctl/genid'"
        op "$mnt" ln -sfn snapshots/s7 "$mnt/db/current"
        op "$mnt" rmdir "$mnt/db/snapshots/r$i"
    done
}
writer2() {   # mount 2: redefine-current, current moved back, delete
    local i
    for i in $(seq "$n"); do
        op "$mnt2" sh -c "sed 's|<name>s3</name>|<name>q$i</name>|' '$work/template.xml' > '$mnt2/db/ctl/redefine-current'"
        op "$mnt2" ln -sfn snapshots/s8 "$mnt2/db/current"
        op "$mnt2" rmdir "$mnt2/db/snapshots/q$i"
    done
}
for r in 1 2 3; do
    python3 "$race_py" read "$mnt" "$work/stop" "$work/read-$r.err" "$work/sums" & readers="${readers:-} $!"
done
python3 "$race_py" read "$mnt2" "$work/stop" "$work/read-4.err" "$work/sums" & readers="$readers $!"
start=$SECONDS
rc=0
# First the outside rewrites alone with the readers (the fastest changes), then on
# with the writers of both mounts.
python3 "$race_py" flip "$websnap" "$work" "$work/flipped" "$flips" || rc=1
python3 "$race_py" flip "$websnap" "$work" "$work/stop" 100000 & flipper=$!
writer1 & w1=$!
writer2 & w2=$!
wait "$w1" "$w2" || rc=1
touch "$work/stop"
for r in $flipper $readers; do wait "$r" || rc=1; done
echo "$n+$n writer rounds, 4 readers: $((SECONDS - start))s"
kill -0 "$pid" 2>/dev/null || fail "snapfs died (mount 1)"
kill -0 "$pid2" 2>/dev/null || fail "snapfs died (mount 2)"
[ "$rc" = 0 ] || fail "a reader or the flipper failed"
if [ -s "$work/writer.err" ]; then cat "$work/writer.err"; fail "a writer failed"; fi
for f in "$work"/read-*.err; do
    if [ -s "$f" ]; then sort "$f" | uniq -c | sort -rn | head -20; fail "wrong answers ($(basename "$f"))"; fi
done

# The store: web's files byte for byte as before, db's what the writers made, one current.
(cd "$websnap" && sha256sum -c --quiet "$work/web.sum") || fail "web's snapshot files changed"
check test "$(ls "$websnap")" = "$(printf 'configured.xml\ninstalled.xml')"
xmllint --noout "$snap"/*.xml "$websnap"/*.xml || fail "a metadata file does not parse"
check test -z "$(find "$store" -name '*.new')"
want=$( (printf 's%s\n' 1 2 3 4 5 6 7 8; seq "$n" | sed 's/^/c/') | sort)
check test "$(ls "$snap" | sed 's/\.xml$//' | sort)" = "$want"
actives=$(grep -l '<active>1</active>' "$snap"/*.xml | wc -l)
check test "$actives" -le 1
for m in "$mnt" "$mnt2"; do
    for _ in $(seq 30); do   # the other mount's poller: a change shows within ~0.3 s
        [ "$(ls "$m/db/snapshots" | sort)" = "$want" ] && break
        sleep 0.1
    done
    check test "$(ls "$m/db/snapshots" | sort)" = "$want"
    check test "$(wc -l < "$m/db/snapshots.tsv")" = "$(echo "$want" | wc -l)"
    if [ "$actives" = 1 ]; then
        cur=$(basename "$(grep -l '<active>1</active>' "$snap"/*.xml)" .xml)
        check test "$(readlink "$m/db/current")" = "snapshots/$cur"
    fi
    check test "$(head -c 1048576 "$m/db/disks/vda/data" | md5sum | cut -d' ' -f1)" = \
        "$(grep '^db/vda ' "$work/sums" | cut -d' ' -f2)"
done
fusermount3 -u "$mnt2"
wait "$pid2" || fail "snapfs (mount 2) exited with $?"
if grep -E 'CRITICAL|WARNING|ERROR|==[0-9]+==|runtime error' "$work/log2"; then
    fail "suspicious log output (mount 2)"
fi
if [ -f "$work/valgrind2.log" ] && grep -q 'ERROR SUMMARY: [1-9]' "$work/valgrind2.log"; then
    cat "$work/valgrind2.log" >&2
    fail "valgrind found errors (mount 2)"
fi
umount_fs
