#!/bin/bash
# hostile.sh: hostile XML, split and killed writes, broken images and a broken store through a real mount.
# Each refusal: an errno on the write, "error: ..." in ctl/result, the store byte for byte unchanged.
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
snap=$store/qemu/snapshot/db
storesum() { (cd "$store" && find . -type f ! -name .snapfs.lock -print0 | sort -z | xargs -0 md5sum) | md5sum; }

# ---- broken images: one domain per image, each with vda on it ---------------------------
mkdir -p "$img/bad"
b=$img/bad
q() { qemu-img "$@" >/dev/null; }
q create -f qcow2 -o cluster_size=65536 "$b/good.qcow2" 1M
head -c 100 "$b/good.qcow2" > "$b/trunc.qcow2"
(cd "$b" && q create -f qcow2 -u -b ./self.qcow2 -F qcow2 self.qcow2 1M)
q create -f qcow2 -u -b "$b/loop-b.qcow2" -F qcow2 "$b/loop-a.qcow2" 1M
q create -f qcow2 -u -b "$b/loop-a.qcow2" -F qcow2 "$b/loop-b.qcow2" 1M
mkdir "$b/deep"
q create -f qcow2 "$b/deep/d0.qcow2" 1M
for i in $(seq 1 200); do
    q create -f qcow2 -u -b "d$((i - 1)).qcow2" -F qcow2 "$b/deep/d$i.qcow2" 1M
done
# A guest's raw disk whose content is a qcow2 header naming /etc/shadow, under an overlay that does
# not record the backing format: probing must refuse it (libvirt: a probed image with a backing file).
q create -f qcow2 -u -b /etc/shadow -F raw "$b/evil-guest.raw" 1M
q create -f qcow2 -u -b "$b/evil-guest.raw" -F raw "$b/evil-top.qcow2" 1M
off=$(LC_ALL=C grep -obUaP '\xe2\x79\x2a\xca' "$b/evil-top.qcow2" | head -n 1 | cut -d: -f1)
printf '\000\000\000\001' | dd of="$b/evil-top.qcow2" bs=1 seek="$off" conv=notrunc status=none
cp "$b/good.qcow2" "$b/huge.qcow2"     # virtual size 1 EiB (2^60) at offset 24
printf '\020\000\000\000\000\000\000\000' | dd of="$b/huge.qcow2" bs=1 seek=24 conv=notrunc status=none
# qemu-img 7.2 times its PBKDF benchmark with the thread's CPU clock and gives up
# ("Unable to get accurate CPU usage") when a round reads 0 ms: try again.
try=1
until q create -f qcow2 --object secret,id=sec0,data=snapfs \
        -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100 "$b/enc.qcow2" 1M; do
    try=$((try + 1))
    [ "$try" -le 5 ] || fail "qemu-img could not make a LUKS image"
done
q create -f qcow2 -u -b "$b/nosuch.qcow2" -F qcow2 "$b/missing.qcow2" 1M
ln -s good.qcow2 "$b/link.qcow2"
n=0
bad_domain() {   # bad_domain NAME IMAGE: a domain whose vda is IMAGE (qcow2)
    n=$((n + 1))
    one_disk_domain "$1" qcow2 "$2" "$n"
}
for x in trunc self loop-a huge enc missing link evil-top; do bad_domain "bad-$x" "$b/$x.qcow2"; done
bad_domain bad-deep "$b/deep/d200.qcow2"
chmod -R go-rwx "$store"

# ---- a broken store: unreadable, unparsable, half-written files, two currents, an orphan ---
ms=$store/qemu/snapshot/web
cp -a "$ms" "$work/web-snapshots"
mkdir "$ms/dir.xml"                              # unreadable: a directory
ln -s /nonexistent "$ms/dangling.xml"            # unreadable: a dangling link
mkfifo "$ms/fifo.xml"                            # must not block the driver
echo 'not xml at all <' > "$ms/garbage.xml"
head -c 400 "$snap/s3.xml" > "$ms/half.xml"      # half-written
sed -e 's@<name>configured</name>@<name>orphan</name>@' -e 's@<name>installed</name>@<name>nosuch</name>@' -e 's@<active>[01]</active>@<active>0</active>@' "$ms/configured.xml" > "$ms/orphan.xml"

grep -q '<name>nosuch</name>' "$ms/orphan.xml" || fail "orphan fixture"
sed -i 's|<active>0</active>|<active>1</active>|' "$snap/s5.xml"   # s5 and s8 both current

before_mount=$(storesum)
mount_fs
d=$mnt/db
result() { cat "$d/ctl/result"; }

# ---- images: an error in info, no data file, the rest works -------------------------------
# The element that cannot be read has an error in its info and no data file; reading the data of an
# element above it fails (EIO), never returns bytes.
for x in trunc self loop-a huge missing deep evil-top; do
    dd=$mnt/bad-$x/disks
    test -d "$dd/vda" || fail "bad-$x: no vda directory"
    errinfo=$(grep -l '^error: ' "$dd"/vda*/info 2>/dev/null | head -n 1) || true
    [ -n "$errinfo" ] || { cat "$dd"/vda/info; fail "bad-$x: no error in info"; }
    check test ! -e "$(dirname "$errinfo")/data"
    if [ -e "$dd/vda/data" ]; then
        expect_fail 'Input/output error' cat "$dd/vda/data"
    fi
    check test "$(cat "$mnt/bad-$x/uuid" | wc -c)" = 37
done
# Encrypted: reported, and the reader refuses it.
grep -qx 'encrypted: yes' "$mnt/bad-enc/disks/vda/info" || fail "encrypted not reported"
if [ -e "$mnt/bad-enc/disks/vda/data" ]; then
    expect_fail 'Invalid argument' cat "$mnt/bad-enc/disks/vda/data"
fi
grep -qi 'loop' "$mnt/bad-self/disks/vda/info" "$mnt/bad-loop-a/disks"/vda*/info || fail "loop not named"
check test "$(ls -d "$mnt/bad-deep/disks"/vda\[*\] | wc -l)" -le 200
# /etc/shadow never shows up as a chain element, and nothing of it is readable.
! grep -rqs /etc/shadow "$mnt/bad-evil-top/disks"/vda\[*\]/source || fail "/etc/shadow became a chain element"
grep -rq '^error: ' "$mnt/bad-evil-top/disks"/vda*/info || fail "probed backing not refused"
# A good image through a symlink, then the symlink swapped under the store.
check test -e "$mnt/bad-link/disks/vda/data"
check test "$(stat -c %s "$mnt/bad-link/disks/vda/data")" = 1048576
ln -sfn "$b/trunc.qcow2" "$b/link.qcow2"
touch "$store/qemu/bad-link.xml"; sleep 1.2   # the mount rechecks the store within a second
grep -q '^error: ' "$mnt/bad-link/disks/vda/info" || fail "swapped symlink not noticed"
check test ! -e "$mnt/bad-link/disks/vda/data"
ln -sfn good.qcow2 "$b/link.qcow2"
# The rest of the tree works.
check test "$(readlink "$d/current")" = snapshots/s8
qemu-img convert -O raw "$img/db.s8" "$work/s8.raw"
cmp "$work/s8.raw" "$d/disks/vda/data" || fail "db data"
ls -R "$mnt" > /dev/null || fail "ls -R over a broken store"

# ---- the broken store: loads what it can, at most one current, nothing hangs --------------
w=$mnt/web
check test "$(ls "$w/snapshots" | tr '\n' ' ')" = "configured installed orphan "
check test "$(cat "$w/snapshots/orphan/parent" 2>/dev/null; readlink "$w/snapshots/orphan/parent" 2>/dev/null)" = ""
cur=$(grep -c 'yes' <(cut -f5 "$d/snapshots.tsv"))
check test "$cur" -le 1
cat "$w/tree" "$d/tree" > /dev/null
# A snapshot directory removed under the mount.
rm -rf "$ms"
touch "$store/qemu/web.xml"; sleep 1.2
check test "$(ls "$w/snapshots" | wc -l)" = 0
check test "$(cat "$w/uuid" | wc -c)" = 37
cp -a "$work/web-snapshots" "$ms"
touch "$store/qemu/web.xml"; sleep 1.2
check test "$(ls "$w/snapshots" | tr '\n' ' ')" = "configured installed "

# ---- hostile XML: each refused with errno and text, store unchanged -------------------------
x=$work/x
mkdir "$x"
printf '<domainsnapshot><name>x</name>' > "$x/notwf"
printf '<domainsnapshot><name>x</name></bogus>' > "$x/mismatch"
printf '<domain><name>x</name></domain>' > "$x/wrongroot"
printf '<domainsnapshot><name>a\0b</name></domainsnapshot>' > "$x/nul"
printf '<domainsnapshot><name>a\377\376b</name></domainsnapshot>' > "$x/utf8"
{ printf '<domainsnapshot>'; for _ in $(seq 10000); do printf '<a>'; done
  for _ in $(seq 10000); do printf '</a>'; done; printf '</domainsnapshot>'; } > "$x/deep"
printf '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<domainsnapshot><name>x</name><description>&x;</description></domainsnapshot>\n' > "$x/xxe"
printf '<?xml version="1.0"?>\n<!DOCTYPE domainsnapshot SYSTEM "file:///etc/passwd">\n<domainsnapshot><name>x</name></domainsnapshot>\n' > "$x/dtd"
printf '<?xml version="1.0"?>\n<!DOCTYPE domainsnapshot PUBLIC "-//x//y" "http://127.0.0.1:9/x.dtd">\n<domainsnapshot><name>x</name></domainsnapshot>\n' > "$x/netdtd"
{ printf '<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
  p=a; for e in b c d e f g h i j; do printf '<!ENTITY %s "%s">' $e "$(for _ in 1 2 3 4 5 6 7 8 9 10; do printf '&%s;' $p; done)"; p=$e; done
  printf ']>\n<domainsnapshot><name>&j;</name></domainsnapshot>\n'; } > "$x/laughs"
head -c 10485760 /dev/zero | tr '\0' ' ' > "$x/big"
printf '<domainsnapshot><name>a/b</name></domainsnapshot>' > "$x/slash"
printf '<domainsnapshot><name>.dot</name></domainsnapshot>' > "$x/dot"
printf '<domainsnapshot><name>..</name></domainsnapshot>' > "$x/dotdot"
printf '<domainsnapshot><name>../../../../tmp/escape</name></domainsnapshot>' > "$x/traverse"
printf '<domainsnapshot><name>%s</name></domainsnapshot>' "$(head -c 300 /dev/zero | tr '\0' a)" > "$x/long"
printf '<domainsnapshot><name>g1</name></domainsnapshot>garbage' > "$x/trailing"
printf '<domainsnapshot><name>m1</name></domainsnapshot><domainsnapshot><name>m2</name></domainsnapshot>' > "$x/two"
printf '<domainsnapshot><name>s</name><state>shutoff</state><creationTime>99999999999999999999999</creationTime></domainsnapshot>' > "$x/hugenum"
printf '<domainsnapshot><name>s</name><state>shutoff</state><creationTime>1</creationTime><memory snapshot='"'"'no'"'"'/><bogus/><disks><disk name='"'"'vda'"'"' snapshot='"'"'no'"'"'/><disk name='"'"'vda'"'"' snapshot='"'"'no'"'"'/></disks></domainsnapshot>' > "$x/dupdisk"
before=$(storesum)
hostile() {   # hostile ERRNO-TEXT RESULT-TEXT CTL FILE
    expect_fail "$1" bash -c "cat '$x/$4' > '$d/ctl/$3'"
    case "$(result)" in "error: "*"$2"*) ;; *) fail "$4 -> $3: result '$(result)', expected '$2'";; esac
    case "$(result)" in *root:x*) fail "$4: /etc/passwd leaked into ctl/result";; esac
    check test "$before" = "$(storesum)"
}
for c in create redefine; do
    hostile 'Invalid argument' 'incomplete' $c notwf
    hostile 'Invalid argument' '' $c mismatch
    hostile 'Invalid argument' 'expecting <domainsnapshot>' $c wrongroot
    hostile 'Invalid argument' 'NUL' $c nul
    hostile 'Invalid argument' 'UTF-8' $c utf8
    hostile 'Invalid argument' 'depth' $c deep
    hostile 'Invalid argument' '' $c xxe
    hostile 'Invalid argument' '' $c dtd
    hostile 'Invalid argument' '' $c netdtd
    hostile 'Invalid argument' '' $c laughs
    hostile 'File too large' 'larger than' $c big
    hostile 'Invalid argument' 'trailing data' $c trailing
    hostile 'Invalid argument' 'only one XML document' $c two
done
hostile 'Invalid argument' "name can't contain '/'" create slash
hostile 'Invalid argument' "name can't start with '.'" create dot
hostile 'Invalid argument' "name can't start with '.'" create dotdot
hostile 'Invalid argument' "name can't contain '/'" create traverse
hostile 'File name too long' '' create long
hostile 'Invalid argument' 'missing creationTime' redefine hugenum
hostile 'Invalid argument' '' redefine dupdisk
check test ! -e /tmp/escape.xml
# An empty write and a blank line: nothing applied.
: > "$d/ctl/create" || fail "open+close without data"
echo > "$d/ctl/create" 2>/dev/null || true
check test "$before" = "$(storesum)"
# Duplicate elements libvirt accepts: the first <name> wins; a second <genid> is refused.
printf '<domainsnapshot><name>first</name><name>second</name></domainsnapshot>' > "$d/ctl/create" ||
    fail "duplicate name: $(result)"
check test -d "$d/snapshots/first"
check test ! -e "$d/snapshots/second"
sed 's|<genid>|<genid>11223344-5566-4788-99aa-bbccddeeff00</genid><genid>|' "$mnt/web/domain.secure.xml" > "$x/dupgenid"
before=$(storesum)
expect_fail 'Invalid argument' bash -c "cat '$x/dupgenid' > '$mnt/ctl/define'"
grep -q "^error: element 'genid' can only appear once" "$mnt/ctl/result" || fail "dup genid: $(cat "$mnt/ctl/result")"
check test "$before" = "$(storesum)"
# A negative creationTime is libvirt-valid (long long): it round-trips.
sed -e 's|<name>s3</name>|<name>neg</name>|' -e 's|<creationTime>[0-9]*<|<creationTime>-5<|' \
    "$d/snapshots/s3/snapshot.secure.xml" > "$d/ctl/redefine" || fail "negative time: $(result)"
check test "$(cat "$d/snapshots/neg/creationTime")" = -5
grep -q '<creationTime>-5</creationTime>' "$snap/neg.xml" || fail "neg.xml"
# creationTime 0 (found by fuzzing): the metadata file must keep it so that the snapshot reloads.
sed -e 's|<name>s3</name>|<name>zero</name>|' -e 's|<creationTime>[0-9]*<|<creationTime>0<|' \
    "$d/snapshots/s3/snapshot.secure.xml" > "$d/ctl/redefine" || fail "zero time: $(result)"
grep -q '<creationTime>0</creationTime>' "$snap/zero.xml" || fail "zero.xml lost creationTime"
touch "$snap"; sleep 1.2          # reloaded from the file: still there
check test -d "$d/snapshots/zero"

# ---- split writes: every byte boundary, one byte per write, a killed writer ---------------
doc() { printf "<domainsnapshot><name>split</name><state>shutoff</state><creationTime>7</creationTime><description>%s</description><domain type='kvm'><name>db</name><uuid>%s</uuid><memory unit='KiB'>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain></domainsnapshot>" "$1" "$(cat "$d/uuid")"; }
full=$(doc d0)
len=${#full}
# One byte per write through one open descriptor (the brace group's stdout: no dup, no close
# between the writes): nothing applies before the last byte.
{
    for ((i = 0; i < len; i++)); do
        printf '%s' "${full:i:1}"
        if ((i == len / 2)); then check test ! -e "$snap/split.xml"; fi
    done
} > "$d/ctl/redefine" || fail "one byte per write: $(result)"
check test "$(cat "$d/snapshots/split/description")" = d0
# Two writes split at every byte boundary: each applies exactly once, with its own text.
for ((i = 1; i < len + 8; i++)); do
    s=$(doc "d$i")
    { printf '%s' "${s:0:i}"; printf '%s' "${s:i}"; } > "$d/ctl/redefine" || fail "split at $i: $(result)"
    check test "$(cat "$d/snapshots/split/description")" = "d$i"
done
# A writer killed half-way: the partial document never applies.
before=$(storesum)
bash -c "printf '%s' '${full:0:40}'; kill -9 \$\$" > "$d/ctl/redefine" || true
check test ! -e "$snap/split2.xml"
check test "$before" = "$(storesum)"
half=$(doc killed); half=${half//split/killed}
bash -c "printf '%s' '${half:0:60}'; kill -9 \$\$" > "$d/ctl/redefine" || true
check test ! -e "$snap/killed.xml"
check test ! -e "$d/snapshots/killed"
check test "$before" = "$(storesum)"

# One byte per write through `exec 3>` and `printf >&3`: each printf dups fd 3 and closes the dup,
# so the driver sees a FLUSH after every byte; the document must still apply once, whole.
# Each such close() reports "incomplete" (bash ignores it); the write that completes applies it.
full=$(doc d-dup)
exec 3> "$d/ctl/redefine"
for ((i = 0; i < ${#full}; i++)); do printf '%s' "${full:i:1}" >&3 || true; done
exec 3>&- || true
check test "$(cat "$d/snapshots/split/description")" = d-dup

# ---- after all that the driver is alive and the rest works --------------------------------
echo s2 > "$d/ctl/revert" 2>/dev/null || true
ls -R "$mnt" > /dev/null
check test "$(cat "$mnt/legacy/uuid" | wc -c)" = 37
fusermount3 -u "$mnt"
wait "$pid" || fail "snapfs exited with $?"
pid=""
if grep -E 'CRITICAL|==[0-9]+==|runtime error|Segmentation' "$work/log"; then fail "suspicious log output"; fi
echo ok
