#!/bin/bash
# backup-errors.sh: every libvirt <domainbackup> error reachable through
# DOMAIN/ctl/backup, plus snapfs's own refusals (pull mode, existing target, EBUSY,
# incremental naming a missing or internal snapshot). Each case checks the errno of the write,
# the exact text in ctl/result, an unchanged job and backup.xml, and that the store and the
# target directory are byte-identical (no target, no temporary file).
#
# The public parse validates against domainbackup.rng first, so every unit case
# (tests/data/xml2xml/invalid-backup-*.xml) is replayed here with the text the mount gives:
# its .err text, or the RNG's. Where the RNG hides a rule, a document that passes the RNG
# reaches it (the RNG compares <value>s as whitespace-normalised tokens, the parser does not).
. "$(dirname "$0")/lib.sh"
make_store
img=$store/images
out=$work/out                 # explicit backup targets go here
mkdir -p "$out"
xmldir=$SNAPFS_SRCDIR/tests/data/xml2xml
rng_path=$SNAPFS_SCHEMA_DIR/domainbackup.rng

EINVAL='Invalid argument'
ENOENT='No such file or directory'
EEXIST='File exists'
EBUSY='Device or resource busy'

# storelist: checksums and names of everything in the store and the target directory.
storelist() { (cd "$work" && find store out -type f -print0 | sort -z | xargs -0 md5sum && find store out | sort); }
rebase() { storelist > "$work/base.list"; }

ncase=0
nfail=0
bad() { echo "FAIL: $*" >&2; nfail=$((nfail + 1)); }

# readall VAR FILE: VAR = the exact content of FILE, trailing newlines included.
readall() { local s; s=$(cat "$2"; echo .); printf -v "$1" '%s' "${s%.}"; }

# refuse ERRNO WANT DOM XML: writing XML to DOM/ctl/backup with bash's printf must fail with ERRNO; DOM/ctl/result must be exactly "error: WANT\n"; DOM/job and
# DOM/backup.xml must not change; the store and $out must be byte-identical.
refuse() {
    local errno=$1 want=$2 dom=$3 xml=$4 msg got job0 bx0 job1 bx1
    ncase=$((ncase + 1))
    readall job0 "$mnt/$dom/job"
    readall bx0 "$mnt/$dom/backup.xml"
    if msg=$(bash -c 'printf "%s" "$1" > "$2"' _ "$xml" "$mnt/$dom/ctl/backup" 2>&1); then
        bad "[$want] $dom: the write succeeded: $(cat "$mnt/$dom/ctl/result")"
        # a started backup would keep changing things: stop it before the next case
        echo cancel 2>/dev/null > "$mnt/$dom/ctl/backup" || true
        waitjob "$dom" > /dev/null
        rebase
        return
    fi
    case "$msg" in *"write error: $errno") ;; *) bad "[$want] $dom: errno: '$msg', expected '$errno'";; esac
    readall got "$mnt/$dom/ctl/result"
    [ "$got" = "error: $want"$'\n' ] || bad "[$want] $dom: result: '$got'"
    readall job1 "$mnt/$dom/job"
    readall bx1 "$mnt/$dom/backup.xml"
    [ "$job1" = "$job0" ] || bad "[$want] $dom: job changed: '$job0' -> '$job1'"
    [ "$bx1" = "$bx0" ] || bad "[$want] $dom: backup.xml changed"
    storelist > "$work/now.list"
    cmp -s "$work/base.list" "$work/now.list" || {
        bad "[$want] $dom: store or targets changed: $(diff "$work/base.list" "$work/now.list" | grep '^[<>]' | tr '\n' ' ')"
        rebase
    }
}

# rng VAR REASON...: VAR = libvirt's text for a document the schema refuses: the schema, then
# libxml2's reasons, each ending in a newline.
rng() {
    local var=$1 s r
    shift
    s="XML document failed to validate against schema: Unable to validate doc against $rng_path"$'\n'
    for r in "$@"; do s+="$r"$'\n'; done
    printf -v "$var" '%s' "$s"
}
rng RNG_SERVER "Extra element server in interleave" "Element domainbackup failed to validate content"
rng RNG_DISKS "Extra element disks in interleave" "Element domainbackup failed to validate content"
rng RNG_MODE "Invalid attribute mode for element domainbackup"

# unit NAME DOM ERRNO [WANT]: the unit case tests/data/xml2xml/invalid-backup-NAME.xml through
# the mount; WANT defaults to its .err text (the mount gives the parser's own error).
declare -A covered
unit() {
    local name=$1 dom=$2 errno=$3 want
    [ -f "$xmldir/invalid-backup-$name.xml" ] || { bad "no unit case $name"; return; }
    covered[$name]=1
    if [ $# -ge 4 ]; then want=$4; else want=$(cat "$xmldir/invalid-backup-$name.err"); fi
    refuse "$errno" "$want" "$dom" "$(cat "$xmldir/invalid-backup-$name.xml")"
}
# unit_skip NAME WHY: a unit case that is no error through the mount.
unit_skip() { covered[$1]=1; echo "skipped unit case $1: $2"; }

# waitjob DOMAIN: until the job line is no longer "running"; prints it.
waitjob() {
    local line
    for _ in $(seq 600); do
        line=$(cat "$mnt/$1/job")
        case "$line" in "backup running"*) sleep 0.1;; *) echo "$line"; return 0;; esac
    done
    fail "job of $1 did not end: $line"
}

# ---- setup: domains for the cases ------------------------------------------------------------
qemu-img create -q -f qcow2 "$img/twin-a.qcow2" 1M
qemu-img create -q -f raw "$img/twin-b.raw" 1M
echo exists > "$out/exists.qcow2"
ln -s "$out/nowhere" "$out/dangling"
mount_fs
define() {   # define NAME DISKS: a minimal domain through the top ctl/define
    printf '%s' "<domain type='kvm'><name>$1</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>$2</devices></domain>" \
        > "$mnt/ctl/define" || fail "define $1: $(cat "$mnt/ctl/result")"
}
fdisk() {    # fdisk DEV PATH FORMAT [DEVICE]: a file disk
    echo "<disk type='file' device='${4:-disk}'><driver name='qemu' type='$3'/><source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}
# backup-test: the domain of the unit test's "aligned-" cases (dom_main of test-backup.c):
# vda, vdb files, vdc a block device, hda an empty cdrom, vde a read-only file.
define backup-test "$(fdisk vda /fake/vda.qcow2 qcow2)$(fdisk vdb /fake/vdb.img raw)<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sdc'/><target dev='vdc' bus='virtio'/></disk><disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hda' bus='ide'/><readonly/></disk><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/fake/vde.iso'/><target dev='vde' bus='virtio'/><readonly/></disk>"
define nodisk ""
define cdonly "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>"
define netvm "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='export'><host name='storage.example.com' port='10809'/></source><target dev='vda' bus='virtio'/></disk>"
define twin "$(fdisk vda "$img/twin-a.qcow2" qcow2)$(fdisk vdb "$img/twin-b.raw" raw)"
# legacy gets a finished job first: the refused writes below must leave it as it is.
echo "<domainbackup><disks><disk name='vda' type='file'><target file='$out/legacy.qcow2'/></disk></disks></domainbackup>" \
    > "$mnt/legacy/ctl/backup" || fail "legacy backup: $(cat "$mnt/legacy/ctl/result")"
case "$(waitjob legacy)" in "backup completed "*) ;; *) fail "legacy backup: $(cat "$mnt/legacy/job")";; esac
for d in db web backup-test nodisk cdonly netvm twin; do
    check test "$(stat -c %s "$mnt/$d/job")" = 0
done
rebase

# ---- the unit cases, through the mount -------------------------------------------------------
# Checked before the schema: the root element.
unit wrong-root backup-test "$EINVAL"
# The schema refuses these first: the mount gives the RNG text, not the parser's.
unit bad-mode backup-test "$EINVAL" "$RNG_MODE"
unit empty-mode backup-test "$EINVAL" "$RNG_MODE"
unit server-push backup-test "$EINVAL" "$RNG_SERVER"
unit server-bad-port backup-test "$EINVAL" "$RNG_SERVER"
unit server-bad-tls backup-test "$EINVAL" "$RNG_SERVER"
unit server-bad-transport backup-test "$EINVAL" "$RNG_SERVER"
unit server-rdma backup-test "$EINVAL" "$RNG_SERVER"
unit server-rdma-noname backup-test "$EINVAL" "$RNG_SERVER"
unit server-relative-socket backup-test "$EINVAL" "$RNG_SERVER"
unit server-tcp-socket backup-test "$EINVAL" "$RNG_SERVER"
unit server-unix-nosocket backup-test "$EINVAL" "$RNG_SERVER"
unit disk-noname backup-test "$EINVAL" "$RNG_DISKS"
unit disk-bad-backup backup-test "$EINVAL" "$RNG_DISKS"
unit disk-bad-backupmode backup-test "$EINVAL" "$RNG_DISKS"
unit disk-bad-format backup-test "$EINVAL" "$RNG_DISKS"
unit disk-bad-type backup-test "$EINVAL" "$RNG_DISKS"
unit disk-network-type backup-test "$EINVAL" "$RNG_DISKS"
unit aligned-by-path backup-test "$EINVAL" "$RNG_DISKS"          # '/' is no diskTargetDev
unit norng-internal-bad-index backup-test "$EINVAL" "$RNG_DISKS"  # state= and index= are internal
unit norng-internal-bad-state backup-test "$EINVAL" "$RNG_DISKS"
unit_skip norng-internal-no-state "state= is required by the status parse only; publicly the document is valid"
# Valid for the schema: the parser's and the alignment's own texts.
unit server-port-range backup-test "$EINVAL"
unit aligned-all-block backup-test "$EINVAL"
unit aligned-block-no-target backup-test "$EINVAL"
unit aligned-incremental-noname backup-test "$EINVAL"
unit aligned-no-media backup-test "$EINVAL"
unit aligned-twice backup-test "$EINVAL"
unit aligned-unknown-disk backup-test "$ENOENT"
for f in "$xmldir"/invalid-backup-*.xml; do
    name=${f##*/invalid-backup-}; name=${name%.xml}
    [ -n "${covered[$name]:-}" ] || bad "unit case $name is not replayed through the mount"
done

# ---- rules the unit cases only reach without the schema: documents that pass it -----------
refuse "$EINVAL" "unknown backup mode ' push '" db "<domainbackup mode=' push '/>"
refuse "$EINVAL" "unknown backup mode ' pull '" db \
    "<domainbackup mode=' pull '><server name='localhost' port='10809'/></domainbackup>"
refuse "$EINVAL" "unknown protocol transport type ' tcp '" db \
    "<domainbackup mode='pull'><server transport=' tcp ' name='localhost' port='10809'/></domainbackup>"
refuse "$EINVAL" "unknown protocol transport type ' unix '" db \
    "<domainbackup mode='pull'><server transport=' unix ' socket='/run/nbd.sock'/></domainbackup>"
refuse "$EINVAL" "Invalid value for attribute 'tls' in element 'server': ' yes '." db \
    "<domainbackup mode='pull'><server name='localhost' port='10809' tls=' yes '/></domainbackup>"
refuse "$EINVAL" "port '065536' out of range" db \
    "<domainbackup mode='pull'><server name='localhost' port='065536'/></domainbackup>"
refuse "$EINVAL" "Invalid value for attribute 'backup' in element 'disk': ' no '." db \
    "<domainbackup><disks><disk name='vda' backup=' no '/></disks></domainbackup>"
refuse "$EINVAL" "Invalid value for attribute 'backupmode' in element 'disk': ' full '." db \
    "<domainbackup><disks><disk name='vda' type='file' backupmode=' full '><target file='$out/x.qcow2'/></disk></disks></domainbackup>"
refuse "$EINVAL" "unknown storage source type ' file '" db \
    "<domainbackup><disks><disk name='vda' type=' file '><target file='$out/x.qcow2'/></disk></disks></domainbackup>"
refuse "$EINVAL" "unknown storage source format ' qcow2 '" db \
    "<domainbackup><disks><disk name='vda' type='file'><driver type=' qcow2 '/><target file='$out/x.qcow2'/></disk></disks></domainbackup>"

# ---- alignment on the store's and the defined domains ------------------------------------------
refuse "$EINVAL" "domain must have at least one disk to perform backup" nodisk "<domainbackup/>"
refuse "$ENOENT" "no disk named 'vdz'" db \
    "<domainbackup><disks><disk name='vdz' type='file'><target file='$out/x.qcow2'/></disk></disks></domainbackup>"
refuse "$ENOENT" "no disk named 'vdz'" legacy "<domainbackup><disks><disk name='vdz' backup='no'/></disks></domainbackup>"
refuse "$EINVAL" "disk 'vdb' specified twice" web \
    "<domainbackup><disks><disk name='vdb' backup='no'/><disk name='vda' type='file'/><disk name='vdb' backup='no'/></disks></domainbackup>"
refuse "$EINVAL" "'incremental' backup mode of disk 'vda' requires setting 'incremental' field for disk or backup" db \
    "<domainbackup><disks><disk name='vda' type='file' backupmode='incremental'><target file='$out/x.qcow2'/></disk></disks></domainbackup>"
refuse "$EINVAL" "disk 'sda' has no media" legacy \
    "<domainbackup><disks><disk name='sda' type='file'><target file='$out/cd.iso'/></disk></disks></domainbackup>"
refuse "$EINVAL" "disk 'sda' has no media" cdonly \
    "<domainbackup><disks><disk name='sda' type='file'/></disks></domainbackup>"
refuse "$EINVAL" "refusing to generate file name for disk 'vda'" netvm "<domainbackup/>"
refuse "$EINVAL" "refusing to generate file name for disk 'vdc'" backup-test \
    "<domainbackup><disks><disk name='vdc' type='file'/></disks></domainbackup>"

# ---- qemu's runtime checks that apply offline -----------------------------------------------
refuse "$EINVAL" "no disks selected for backup" db \
    "<domainbackup><disks><disk name='vda' backup='no'/></disks></domainbackup>"
refuse "$EINVAL" "no disks selected for backup" cdonly "<domainbackup/>"       # empty, read-only
refuse "$EINVAL" "no disks selected for backup" legacy \
    "<domainbackup><disks><disk name='sda' backup='no'/><disk name='vda' backup='no'/></disks></domainbackup>"

# ---- snapfs: pull mode is refused (only push backups of an inactive domain) ------------------
PULL="pull mode backups need a running domain; snapfs only does push backups"
refuse "$EINVAL" "$PULL" db "<domainbackup mode='pull'><server name='localhost' port='10809'/></domainbackup>"
refuse "$EINVAL" "$PULL" db "<domainbackup mode='pull'><server transport='unix' socket='/run/nbd.sock'/></domainbackup>"
# without a port (qemu's "<domainbackup> must specify TCP port for now" never comes: refused first)
refuse "$EINVAL" "$PULL" legacy "<domainbackup mode='pull'><server name='localhost'/></domainbackup>"
refuse "$EINVAL" "$PULL" web "<domainbackup mode='pull'><server name='localhost' port='10809' tls='yes'/><disks><disk name='vda' type='file'><scratch file='$out/scratch.qcow2'/><driver type='qcow2'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>"
refuse "$EINVAL" "$PULL" nodisk "<domainbackup mode='pull'><server name='localhost' port='10809'/></domainbackup>"

# ---- snapfs: targets ---------------------------------------------------------------------------
refuse "$EEXIST" "target file '$out/exists.qcow2' already exists" db \
    "<domainbackup><disks><disk name='vda' type='file'><target file='$out/exists.qcow2'/></disk></disks></domainbackup>"
refuse "$EEXIST" "target file '$out/dangling' already exists" db \
    "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/dangling'/></disk></disks></domainbackup>"
# an image of the store itself: never overwritten
refuse "$EEXIST" "target file '$img/db.s3' already exists" db \
    "<domainbackup><disks><disk name='vda' type='file'><target file='$img/db.s3'/></disk></disks></domainbackup>"
refuse "$EEXIST" "target file '$out/legacy.qcow2' already exists" legacy \
    "<domainbackup><disks><disk name='vda' type='file'><target file='$out/legacy.qcow2'/></disk></disks></domainbackup>"
refuse "$EINVAL" "disks 'vda' and 'vdb' have the same backup target '$out/same.raw'" twin \
    "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/same.raw'/></disk><disk name='vdb' type='file'><driver type='raw'/><target file='$out/same.raw'/></disk></disks></domainbackup>"
refuse "$EINVAL" "backup target format 'vmdk' of disk 'vda' is not supported (raw or qcow2)" db \
    "<domainbackup><disks><disk name='vda' type='file'><driver type='vmdk'/><target file='$out/x.vmdk'/></disk></disks></domainbackup>"
refuse "$ENOENT" "cannot stat target device '$out/nodev': No such file or directory" db \
    "<domainbackup><disks><disk name='vda' type='block'><driver type='raw'/><target dev='$out/nodev'/></disk></disks></domainbackup>"
# vda's temporary file is made before vdb's fails: it must be gone again
refuse "$ENOENT" "cannot create a temporary file for target '$out/nodir/b.raw': No such file or directory" twin \
    "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/a.raw'/></disk><disk name='vdb' type='file'><driver type='raw'/><target file='$out/nodir/b.raw'/></disk></disks></domainbackup>"
refuse "$EINVAL" "disk 'vdb': backing chain element 'vdb[1]' is not a local image" web \
    "<domainbackup><disks><disk name='vda' type='file'><target file='$out/web-a.qcow2'/></disk><disk name='vdb' type='file'><target file='$out/web-b.qcow2'/></disk></disks></domainbackup>"

# ---- snapfs: incremental (the name is a snapshot) ------------------------------------------------
incr() {   # incr NAME [FORMAT]: an incremental backup of db's vda against NAME
    echo "<domainbackup><incremental>$1</incremental><disks><disk name='vda' type='file'><driver type='${2:-qcow2}'/><target file='$out/incr.qcow2'/></disk></disks></domainbackup>"
}
refuse "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'nosuch'" db "$(incr nosuch)"
refuse "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'nosuch'" db \
    "<domainbackup><disks><disk name='vda' type='file' incremental='nosuch'><target file='$out/incr.qcow2'/></disk></disks></domainbackup>"
refuse "$EINVAL" "incremental backup of disk 'vda' needs an external snapshot of it: snapshot 'installed' is not one" web \
    "<domainbackup><incremental>installed</incremental><disks><disk name='vda' type='file'><target file='$out/incr.qcow2'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>"
refuse "$EINVAL" "image '$img/db.s2' of snapshot 's3' is not in the backing chain of disk 'vda'" db "$(incr s3)"
refuse "$EINVAL" "incremental backup of disk 'vda' needs a qcow2 target" db "$(incr s8 raw)"

# ---- a second backup while one runs: EBUSY -------------------------------------------------------
# 1 GiB of data keeps the job running long enough (about a second; under valgrind, where each
# request is slower, 4 GiB); the source lies outside the store. The writes come first, while the
# job surely runs; the store is compared after the cancel (the job's temporary file lives in $out
# meanwhile).
bigsize=1
[ -n "${FS_WRAPPER:-}" ] && bigsize=4
qemu-img create -q -f raw "$work/big.raw" "${bigsize}G"
for g in $(seq 0 $((bigsize - 1))); do   # qemu-io writes at most 2 GiB at a time
    qemu-io -f raw -c "write -P 0x5a ${g}G 1G" "$work/big.raw" > /dev/null
done
define big "$(fdisk vda "$work/big.raw" raw)"
rebase
echo "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/big.raw'/></disk></disks></domainbackup>" \
    > "$mnt/big/ctl/backup" || fail "big backup: $(cat "$mnt/big/ctl/result")"
cp "$mnt/big/backup.xml" "$work/big-backup.xml"
# libvirt's order (qemuBackupBegin): the document is parsed (and pull mode refused) before the
# busy check, the disks are aligned after it: a pull document gets its own error, an unknown
# disk gets EBUSY.
PULL="pull mode backups need a running domain; snapfs only does push backups"
BUSY="another backup job is already running"
busy=()
for x in "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/big2.raw'/></disk></disks></domainbackup>" \
         "<domainbackup><disks><disk name='vda' type='file'><target file='$out/big2.qcow2'/></disk></disks></domainbackup>" \
         "<domainbackup><disks><disk name='vdz' type='file'><target file='$out/big3.qcow2'/></disk></disks></domainbackup>" \
         "<domainbackup mode='pull'><server name='localhost' port='10809'/></domainbackup>"; do
    if msg=$(bash -c 'printf "%s" "$1" > "$2"' _ "$x" "$mnt/big/ctl/backup" 2>&1); then msg=succeeded; fi
    readall got "$mnt/big/ctl/result"
    busy+=("$msg" "$got")
done
if msg=$(bash -c "echo x1 > '$mnt/big/ctl/create'" 2>&1); then msg=succeeded; fi
readall got "$mnt/big/ctl/result"
busy+=("$msg" "$got")
line=$(cat "$mnt/big/job")
echo cancel > "$mnt/big/ctl/backup" || fail "cancel: $(cat "$mnt/big/ctl/result")"
case "$line" in "backup running "*) ;; *) fail "the big job ended too soon for the EBUSY cases: $line";; esac
cmp -s "$work/big-backup.xml" "$mnt/big/backup.xml" || bad "[EBUSY] backup.xml changed"
wants=("$EBUSY" "$BUSY" "$EBUSY" "$BUSY" "$EBUSY" "$BUSY" "$EINVAL" "$PULL" "$EBUSY" "domain 'big' is busy: $BUSY")
for ((i = 0; i < ${#busy[@]}; i += 2)); do
    ncase=$((ncase + 1))
    case "${busy[i]}" in *"write error: ${wants[i]}") ;; *) bad "[busy $i] errno: '${busy[i]}', expected '${wants[i]}'";; esac
    [ "${busy[i + 1]}" = "error: ${wants[i + 1]}"$'\n' ] || bad "[busy $i] result: '${busy[i + 1]}'"
done
case "$(waitjob big)" in "backup cancelled"*) ;; *) bad "after cancel: $(cat "$mnt/big/job")";; esac
storelist | cmp -s "$work/base.list" - || bad "[EBUSY] store or targets changed: $(ls -A "$out")"

# ---- a change that would resolve an interrupted one, while a backup runs: EBUSY ------------------
# An interrupted create of big (its overlay made, no metadata written) is undone by the next change
# of big, whatever that change is: that removes an image. While a backup of big reads its images,
# every change through the mount (a link made current, a ctl file) is refused the same way before
# anything is resolved; once the backup has ended the next change resolves it.
jdir=$store/qemu/snapshot/.snapfs-journal
qemu-img create -q -f qcow2 -b "$work/big.raw" -F raw "$work/big.ghost"
mkdir -p "$jdir"
printf '[journal]\noperation=create\nsteps=1\nsnapshot=ghost\n\n[step 0]\naction=overlay\nargs=vda;%s;new;\ndone=true\n' \
    "$work/big.ghost" > "$jdir/big"
cp "$jdir/big" "$work/big.journal"
echo "<domainbackup><disks><disk name='vda' type='file'><driver type='raw'/><target file='$out/big4.raw'/></disk></disks></domainbackup>" \
    > "$mnt/big/ctl/backup" || fail "big backup: $(cat "$mnt/big/ctl/result")"
busy=()
for cmd in "ln -sfn snapshots/ghost '$mnt/big/current'" "echo new > '$mnt/big/ctl/genid'" \
           "echo ghost > '$mnt/big/ctl/delete'" "mkdir '$mnt/big/snapshots/x2'" \
           "echo big > '$mnt/ctl/undefine'"; do
    if msg=$(bash -c "$cmd" 2>&1); then msg=succeeded; fi
    readall got "$mnt/big/ctl/result"
    [ "$cmd" = "echo big > '$mnt/ctl/undefine'" ] && readall got "$mnt/ctl/result"
    busy+=("$cmd" "$msg" "$got")
done
for ((i = 0; i < ${#busy[@]}; i += 3)); do
    ncase=$((ncase + 1))
    case "${busy[i + 1]}" in *"$EBUSY"*) ;; *) bad "[journal] ${busy[i]}: '${busy[i + 1]}', expected $EBUSY";; esac
    [ "${busy[i + 2]}" = "error: domain 'big' is busy: $BUSY"$'\n' ] || bad "[journal] ${busy[i]}: result: '${busy[i + 2]}'"
done
line=$(cat "$mnt/big/job")
echo cancel > "$mnt/big/ctl/backup" || fail "cancel: $(cat "$mnt/big/ctl/result")"
case "$line" in "backup running "*) ;; *) fail "the big job ended too soon for the journal cases: $line";; esac
case "$(waitjob big)" in "backup cancelled"*) ;; *) bad "after cancel: $(cat "$mnt/big/job")";; esac
ncase=$((ncase + 1))
cmp -s "$jdir/big" "$work/big.journal" && test -f "$work/big.ghost" && test -f "$store/qemu/big.xml" ||
    bad "[journal] the interrupted create was resolved while the backup ran"
echo new > "$mnt/big/ctl/genid" || bad "[journal] genid after the backup: $(cat "$mnt/big/ctl/result")"
ncase=$((ncase + 1))
test ! -e "$jdir/big" && test ! -e "$work/big.ghost" || bad "[journal] not resolved after the backup"
rm "$work/big.raw"

umount_fs
echo "$ncase cases, $nfail failed"
[ "$nfail" = 0 ] || exit 1
echo ok
