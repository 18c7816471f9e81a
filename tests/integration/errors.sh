#!/bin/bash
# errors.sh: every libvirt error text of snapshot XML, creation, redefine, delete, revert and
# genid reachable through the ctl files of an inactive domain: the errno of the write, the exact
# text in ctl/result, and a byte-identical store.
. "$(dirname "$0")/lib.sh"
shopt -s extglob
make_store
img=$store/images
snapdir=$store/qemu/snapshot
db_uuid=6f1e3b52-7c0e-4c1a-9d55-0d1f5e0a7b11
web_genid=8f3c9a1e-5b7d-4c2e-9f0a-1b2c3d4e5f60
legacy_uuid=0a0b0c0d-0e0f-4010-8111-121314151617

# storelist: the checksum of every store file (metadata, domains, images) and every name, to
# prove "nothing changed".
storelist() { (cd "$store" && find . -type f -print0 | sort -z | xargs -0 md5sum && find . | sort); }

# Every case runs; failures are collected and reported together at the end.
ncase=0
nfail=0
bad() { echo "FAIL: $*" >&2; nfail=$((nfail + 1)); }
rebase() { storelist > "$work/base.list"; }

# refuse ERRNO WANT DIR CMD: CMD (a shell command writing to a ctl file under DIR) must fail
# with the errno text ERRNO; DIR/ctl/result must be "error: WANT" (WANT is an extglob pattern
# when REFUSE_GLOB is set); the store must be unchanged.
refuse() {
    local errno=$1 want=$2 dir=$3 cmd=$4 out got
    ncase=$((ncase + 1))
    if out=$(bash -c "$cmd" 2>&1); then
        bad "[$want] '$cmd' succeeded: $(cat "$dir/ctl/result")"
        rebase
        return
    fi
    case "$out" in *"$errno"*) ;; *) bad "[$want] errno: '$out', expected '$errno'";; esac
    got=$(cat "$dir/ctl/result")
    if [ -n "${REFUSE_GLOB:-}" ]; then
        [[ "$got" == "error: "$want ]] || bad "[$want] result: '$got'"
    else
        [ "$got" = "error: $want" ] || bad "[$want] result: '$got'"
    fi
    storelist > "$work/now.list"
    cmp -s "$work/base.list" "$work/now.list" || {
        bad "[$want] store changed: $(diff "$work/base.list" "$work/now.list" | grep '^[<>]' | tr '\n' ' ')"
        rebase
    }
}

# rx ERRNO WANT DOM CTL < XML: the document on stdin written with cat.
rx() {
    cat > "$work/payload.xml"
    refuse "$1" "$2" "$mnt/$3" "cat '$work/payload.xml' > '$mnt/$3/ctl/$4'"
}
# rv ERRNO WANT DOM CTL VALUE: a value written with echo.
rv() { refuse "$1" "$2" "$mnt/$3" "echo '$5' > '$mnt/$3/ctl/$4'"; }
# top ERRNO WANT CTL < XML: a document written to the top ctl/.
top() {
    cat > "$work/payload.xml"
    refuse "$1" "$2" "$mnt" "cat '$work/payload.xml' > '$mnt/ctl/$3'"
}
# snapxml FILE SED...: a saved snapshot document, edited.
snapxml() { local f=$1; shift; sed "$@" "$work/$f.xml"; }

EINVAL='Invalid argument'
ENOENT='No such file'
EEXIST='File exists'

# ---- setup: images and domains for the cases -----------------------------------
qemu-img create -q -f raw "$img/raw.img" 1M
qemu-img create -q -f qcow2 "$img/twin.qcow2" 1M
qemu-img create -q -f raw "$img/twin.raw" 1M
qemu-img create -q -f qcow2 "$img/pair-a.qcow2" 1M
qemu-img create -q -f qcow2 "$img/pair-b.qcow2" 1M
qemu-img create -q -f qcow2 "$img/nosnap.qcow2" 1M
qemu-img create -q -f qcow2 "$img/uefi.qcow2" 1M
echo not-empty > "$img/db.ex"           # the default overlay name of snapshot "ex" of db
: > "$work/empty.img"
# legacy: a snapshot saved by an old libvirt, <domain> with the uuid only.
mkdir -p "$snapdir/legacy"
cat > "$snapdir/legacy/old.xml" <<EOF
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh snapshot-edit
or other application using the libvirt API.
-->

<domainsnapshot>
  <name>old</name>
  <state>shutoff</state>
  <creationTime>1600000000</creationTime>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='internal'/>
  </disks>
  <domain>
    <uuid>$legacy_uuid</uuid>
  </domain>
  <active>0</active>
</domainsnapshot>
EOF
chmod 600 "$snapdir/legacy/old.xml"
mount_fs

disk() {   # disk DEV PATH FORMAT [DISK_ATTRS]
    echo "<disk type='file' device='disk'${4:+ $4}><driver name='qemu' type='$3'/><source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}
define() {   # define NAME DISKS [OS_EXTRA]
    cat > "$work/def.xml" <<EOF
<domain type='kvm'>
  <name>$1</name>
  <memory unit='KiB'>65536</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>${3:-}
  </os>
  <devices>
    $2
  </devices>
</domain>
EOF
    cat "$work/def.xml" > "$mnt/ctl/define" || fail "define $1: $(cat "$mnt/ctl/result")"
}
define rawvm "$(disk vda "$img/raw.img" raw)"
define twin "$(disk vda "$img/twin.qcow2" qcow2)$(disk vdb "$img/twin.raw" raw)"
define pair "$(disk vda "$img/pair-a.qcow2" qcow2)$(disk vdb "$img/pair-b.qcow2" qcow2 "snapshot='no'")"
define nosnap "$(disk vda "$img/nosnap.qcow2" qcow2 "snapshot='no'")"
define ghost "$(disk vda "$img/missing/ghost.qcow2" qcow2)"
define netvm "<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='export'><host name='storage.example.com' port='10809'/></source><target dev='vda' bus='virtio'/></disk>"
define uefi "$(disk vda "$img/uefi.qcow2" qcow2)" "
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>"
# web: an external snapshot e1 under the internal ones (configured -> e1).
echo e1 > "$mnt/web/ctl/create" || fail "web e1: $(cat "$mnt/web/ctl/result")"
check test "$(readlink "$mnt/web/snapshots/e1/parent")" = ../configured
cp "$mnt/db/snapshots/s2/snapshot.secure.xml" "$work/s2.xml"
cp "$mnt/db/snapshots/s3/snapshot.secure.xml" "$work/s3.xml"
cp "$mnt/web/snapshots/installed/snapshot.secure.xml" "$work/installed.xml"
check grep -q "<genid>$web_genid</genid>" "$work/installed.xml"
rebase

# ---- 1.1 <domainsnapshot> elements ---------------------------------------------
# Redefine requires name, creationTime and state.
snapxml s2 -e 's|<name>s2</name>|<name></name>|' > "$work/in.xml"
rx "$EINVAL" "a redefined snapshot must have a name" db redefine < "$work/in.xml"
snapxml s2 -e '/<name>s2<\/name>/d' > "$work/in.xml"
rx "$EINVAL" "a redefined snapshot must have a name" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e '/<creationTime>/d' > "$work/in.xml"
rx "$EINVAL" "missing creationTime from existing snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<creationTime>.*</creationTime>|<creationTime>soon</creationTime>|' > "$work/in.xml"
rx "$EINVAL" "missing creationTime from existing snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e '/<state>/d' > "$work/in.xml"
rx "$EINVAL" "missing state from existing snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>bogus</state>|' > "$work/in.xml"
rx "$EINVAL" "Invalid state 'bogus' in domain snapshot XML" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>nostate</state>|' > "$work/in.xml"
rx "$EINVAL" "Invalid state 'nostate' in domain snapshot XML" db redefine-current < "$work/in.xml"
# Memory.
rx "$EINVAL" "'manual' memory snapshot mode not supported" db create <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='manual'/></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<memory snapshot='no'/>|<memory snapshot='manual'/>|" > "$work/in.xml"
rx "$EINVAL" "'manual' memory snapshot mode not supported" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>running</state>|' \
        -e "s|<memory snapshot='no'/>|<memory snapshot='external' file='mem.save'/>|" > "$work/in.xml"
rx "$EINVAL" "memory snapshot file path (mem.save) must be absolute" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>running</state>|' \
        -e "s|<memory snapshot='no'/>|<memory snapshot='internal' file='/var/tmp/m.save'/>|" > "$work/in.xml"
rx "$EINVAL" "memory filename '/var/tmp/m.save' requires external snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>running</state>|' \
        -e "s|<memory snapshot='no'/>|<memory snapshot='external'/>|" > "$work/in.xml"
rx "$EINVAL" "external memory snapshots require a filename" db redefine < "$work/in.xml"
rx "$EINVAL" "external memory snapshots require a filename" db create <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='external'/></domainsnapshot>
EOF
rx "$EINVAL" "memory filename '/var/tmp/m.save' requires external snapshot" db create <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='no' file='/var/tmp/m.save'/></domainsnapshot>
EOF
# Offline: an inactive domain, or a redefined shutoff/disk-snapshot state, cannot save memory.
rx "$EINVAL" "memory state cannot be saved with offline or disk-only snapshot" db create <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='internal'/></domainsnapshot>
EOF
rx "$EINVAL" "memory state cannot be saved with offline or disk-only snapshot" web create <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='external' file='/var/tmp/m.save'/></domainsnapshot>
EOF
rx "$EINVAL" "memory state cannot be saved with offline or disk-only snapshot" db create-no-metadata <<'EOF'
<domainsnapshot><name>m1</name><memory snapshot='internal'/></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<memory snapshot='no'/>|<memory snapshot='internal'/>|" > "$work/in.xml"
rx "$EINVAL" "memory state cannot be saved with offline or disk-only snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>disk-snapshot</state>|' \
        -e "s|<memory snapshot='no'/>|<memory snapshot='external' file='/var/tmp/m.save'/>|" > "$work/in.xml"
rx "$EINVAL" "memory state cannot be saved with offline or disk-only snapshot" db redefine < "$work/in.xml"

# ---- 1.2 snapshot <disk> and alignment -------------------------------------------
rx "$EINVAL" "missing name from disk snapshot element" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk snapshot='external'/></disks></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<disk name='vda' |<disk |" > "$work/in.xml"
rx "$EINVAL" "missing name from disk snapshot element" db redefine < "$work/in.xml"
rx "$EINVAL" "unsupported disk snapshot type 'dir'" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external' type='dir'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "unsupported disk snapshot type 'volume'" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external' type='volume'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "unknown disk snapshot driver 'bogus'" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda'><driver type='bogus'/></disk></disks></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<driver type='qcow2'/>|<driver type='bogus'/>|" > "$work/in.xml"
rx "$EINVAL" "unknown disk snapshot driver 'bogus'" db redefine < "$work/in.xml"
rx "$EINVAL" "disk snapshot image path 'rel/db.d1' must be absolute" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda'><source file='rel/db.d1'/></disk></disks></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<source file='[^']*/db.s2'/>|<source file='db.n1'/>|" > "$work/in.xml"
rx "$EINVAL" "disk snapshot image path 'db.n1' must be absolute" db redefine < "$work/in.xml"
rx "$EINVAL" "disk snapshot image path 'dev/sdz' must be absolute" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' type='block'><source dev='dev/sdz'/></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "too many disk snapshot requests for domain" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda'/><disk name='vda'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "too many disk snapshot requests for domain" db create-no-metadata <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda'/><disk name='vdb'/></disks></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<disks>|<disks><disk name='vdb' snapshot='no'/>|" > "$work/in.xml"
rx "$EINVAL" "too many disk snapshot requests for domain" db redefine < "$work/in.xml"
rx "$EINVAL" "no disk named 'vdz'" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vdz' snapshot='external'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "no disk named '/nonexistent/db.qcow2'" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='/nonexistent/db.qcow2' snapshot='external'/></disks></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<disk name='vda' |<disk name='vdz' |" > "$work/in.xml"
rx "$EINVAL" "no disk named 'vdz'" db redefine < "$work/in.xml"
rx "$EINVAL" "disk 'vda' specified twice" web create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external'/><disk name='vda' snapshot='external'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "disk '$img/web-top.e1' specified twice" web create <<EOF
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external'/><disk name='$img/web-top.e1' snapshot='external'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "disk 'vdb' must use snapshot mode 'internal'" web create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='no'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "file '/var/tmp/web.d1' for disk 'vda' requires use of external snapshot mode" web create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='internal'><source file='/var/tmp/web.d1'/></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "file '/var/tmp/cd.d1' for disk 'sda' requires use of external snapshot mode" legacy create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='sda' snapshot='no'><source file='/var/tmp/cd.d1'/></disk></disks></domainsnapshot>
EOF
# Default overlay names.
rx "$EINVAL" "cannot generate external snapshot name for disk 'vda' on a 'block' device" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external' type='block'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "cannot generate external snapshot name for disk 'vda' on a 'network' device" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external' type='network'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "cannot generate external snapshot name for disk 'sda' without source" legacy create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='sda' snapshot='external'/></disks></domainsnapshot>
EOF
rv "$EINVAL" "source for disk 'vda' is not a regular file; refusing to generate external snapshot name" ghost create d1
rv "$EINVAL" "source for disk 'vda' is not a regular file; refusing to generate external snapshot name" netvm create d1
refuse "$EINVAL" "source for disk 'vda' is not a regular file; refusing to generate external snapshot name" \
    "$mnt/ghost" "mkdir '$mnt/ghost/snapshots/d1'"
# ... on redefine too: a disk-snapshot without explicit paths whose image is gone.
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<state>shutoff</state>|<state>disk-snapshot</state>|' \
        -e "/<source file='[^']*\/db.s2'\/>/d" -e "s|<source file='[^']*/db.s1'/>|<source file='$img/gone.qcow2'/>|" > "$work/in.xml"
rx "$EINVAL" "source for disk 'vda' is not a regular file; refusing to generate external snapshot name" db redefine < "$work/in.xml"
rv "$EINVAL" "cannot generate external snapshot name for disk 'vdb': collision with disk 'vda'" twin create d1

# ---- 3. create -------------------------------------------------------------------
# Name rules, create and redefine.
rv "$EINVAL" "invalid snapshot name '.d1': name can't start with '.'" db create .d1
rx "$EINVAL" "invalid snapshot name 'a/b': name can't contain '/'" db create <<'EOF'
<domainsnapshot><name>a/b</name></domainsnapshot>
EOF
rx "$EINVAL" "invalid snapshot name '.d1': name can't start with '.'" web create <<'EOF'
<domainsnapshot><name>.d1</name></domainsnapshot>
EOF
snapxml s2 -e 's|<name>s2</name>|<name>.n1</name>|' > "$work/in.xml"
rx "$EINVAL" "invalid snapshot name '.n1': name can't start with '.'" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>x/n1</name>|' > "$work/in.xml"
rx "$EINVAL" "invalid snapshot name 'x/n1': name can't contain '/'" db redefine-current < "$work/in.xml"
# Allowed states (redefine: the XML's state).
snapxml s2 -e 's|<name>s2</name>|<name>nb</name>|' -e 's|<state>shutoff</state>|<state>blocked</state>|' > "$work/in.xml"
rx "$EINVAL" "Invalid domain state blocked" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>np</name>|' -e 's|<state>shutoff</state>|<state>pmsuspended</state>|' > "$work/in.xml"
rx "$EINVAL" "qemu doesn't support taking snapshots of PMSUSPENDED guests" db redefine < "$work/in.xml"
# Disk selection.
rx "$EINVAL" "nothing selected for snapshot" nosnap create <<'EOF'
<domainsnapshot><name>d1</name></domainsnapshot>
EOF
rx "$EINVAL" "disk 'vda' must use snapshot mode 'internal'" db create <<'EOF'
<domainsnapshot><name>d1</name><memory snapshot='no'/><disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>
EOF
# An inactive domain's disk-only snapshot has state shutoff, so libvirt's check is this one too.
rv "$EINVAL" "nothing selected for snapshot" nosnap create d1
rx "$EINVAL" "internal and full system snapshots require all disks to be selected for snapshot" pair create <<'EOF'
<domainsnapshot><name>d1</name></domainsnapshot>
EOF
rx "$EINVAL" "mixing internal and external targets for a snapshot is not yet supported" web create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='external'/></disks></domainsnapshot>
EOF
rx "$EINVAL" "internal snapshot for disk vda unsupported for storage type raw" rawvm create <<'EOF'
<domainsnapshot><name>d1</name></domainsnapshot>
EOF
rx "$EINVAL" "internal snapshot for disk vdb unsupported for storage type raw" twin create <<'EOF'
<domainsnapshot><name>d1</name></domainsnapshot>
EOF
rx "$EINVAL" "external snapshot format for disk vda is unsupported: raw" db create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external'><driver type='raw'/></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "external snapshot format for disk vda is unsupported: vmdk" db create-no-metadata <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda'><driver type='vmdk'/></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "metadata cache max size control is supported only with qcow2 images" db create <<'EOF'
<domainsnapshot><name>dmc</name><disks><disk name='vda' snapshot='external'><driver type='qed'><metadata_cache><max_size unit='bytes'>65536</max_size></metadata_cache></driver></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "internal snapshots of a VM with pflash based firmware are not supported" uefi create <<'EOF'
<domainsnapshot><name>d1</name></domainsnapshot>
EOF
rx "$EINVAL" "external inactive snapshots are not supported on 'network' disks using 'nbd' protocol" netvm create <<'EOF'
<domainsnapshot><name>d1</name><disks><disk name='vda' snapshot='external'><source file='/var/tmp/netvm.d1'/></disk></disks></domainsnapshot>
EOF
# An existing non-empty overlay file.
rv "$EEXIST" "external snapshot file for disk vda already exists and is not a block device: $img/db.ex" db create ex
refuse "$EEXIST" "external snapshot file for disk vda already exists and is not a block device: $img/db.ex" \
    "$mnt/db" "mkdir '$mnt/db/snapshots/ex'"
rx "$EEXIST" "external snapshot file for disk vda already exists and is not a block device: $img/db.s3" db create <<EOF
<domainsnapshot><name>dex</name><disks><disk name='vda'><source file='$img/db.s3'/></disk></disks></domainsnapshot>
EOF
# Duplicate names.
rv "$EEXIST" "domain moment s3 already exists" db create s3
rx "$EEXIST" "domain moment configured already exists" web create <<'EOF'
<domainsnapshot><name>configured</name></domainsnapshot>
EOF
refuse "$EEXIST" "domain moment s3 already exists" "$mnt/db" "mkdir '$mnt/db/snapshots/s3'"

# ---- 4. redefine -------------------------------------------------------------------
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e 's|<name>s1</name>|<name>nosuch</name>|' > "$work/in.xml"
rx "$ENOENT" "parent nosuch for moment n1 not found" db redefine < "$work/in.xml"
snapxml s3 -e 's|<name>s2</name>|<name>s3</name>|' > "$work/in.xml"
rx "$EINVAL" "cannot set moment s3 as its own parent" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s1</name>|<name>s3</name>|' > "$work/in.xml"
rx "$EINVAL" "parent s3 would create cycle to s2" db redefine-current < "$work/in.xml"
snapxml s2 -e 's|^  <name>s2</name>|  <name>s1</name>|' -e 's|^    <name>s1</name>|    <name>s3</name>|' > "$work/in.xml"
rx "$EINVAL" "parent s2 would create cycle to s1" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>n1</name>|' -e "s|<uuid>$db_uuid</uuid>|<uuid>11111111-2222-4333-8444-555555555555</uuid>|" > "$work/in.xml"
rx "$EINVAL" "definition for snapshot n1 must use uuid $db_uuid" db redefine < "$work/in.xml"
snapxml s3 -e "s|<uuid>$db_uuid</uuid>|<uuid>11111111-2222-4333-8444-555555555555</uuid>|" > "$work/in.xml"
rx "$EINVAL" "definition for snapshot s3 must use uuid $db_uuid" db redefine < "$work/in.xml"
snapxml s3 -e 's|<state>shutoff</state>|<state>running</state>|' > "$work/in.xml"
rx "$EINVAL" "cannot change between online and offline snapshot state in snapshot s3" db redefine < "$work/in.xml"
snapxml s3 -e 's|<state>shutoff</state>|<state>paused</state>|' > "$work/in.xml"
rx "$EINVAL" "cannot change between online and offline snapshot state in snapshot s3" db redefine-current < "$work/in.xml"
snapxml s3 -e 's|<state>shutoff</state>|<state>disk-snapshot</state>|' > "$work/in.xml"
rx "$EINVAL" "cannot change between disk only and full system in snapshot s3" db redefine < "$work/in.xml"
# ABI check of an existing snapshot, with libvirt's genid messages.
snapxml installed -e 's|<vcpu placement=.static.>2</vcpu>|<vcpu placement="static">3</vcpu>|' > "$work/in.xml"
rx "$EINVAL" "Target domain vCPU max 3 does not match source 2" web redefine < "$work/in.xml"
snapxml installed -e 's|<name>web</name>|<name>other</name>|' > "$work/in.xml"
rx "$EINVAL" "Target domain name 'other' does not match source 'web'" web redefine < "$work/in.xml"
snapxml installed -e "s|<genid>$web_genid</genid>|<genid>00112233-4455-4677-8899-aabbccddeeff</genid>|" > "$work/in.xml"
rx "$EINVAL" "Target domain genid 00112233-4455-4677-8899-aabbccddeeff does not match source $web_genid" web redefine < "$work/in.xml"
snapxml installed -e "/<genid>/d" > "$work/in.xml"
rx "$EINVAL" "Target domain requested genid does not match source" web redefine < "$work/in.xml"
snapxml installed -e "s|<genid>$web_genid</genid>|<genid/>|" > "$work/in.xml"
REFUSE_GLOB=1 rx "$EINVAL" "Target domain genid +([0-9a-f-]) does not match source $web_genid" web redefine < "$work/in.xml"
snapxml installed -e "s|<genid>$web_genid</genid>|<genid>not-a-guid</genid>|" > "$work/in.xml"
rx "$EINVAL" "malformed genid element" web redefine < "$work/in.xml"
# A new snapshot needs a full domain.
snapxml s2 -e 's|<name>s2</name>|<name>nm1</name>|' -e '/<domain type/,/<\/domain>/d' > "$work/in.xml"
rx "$EINVAL" "missing domain in snapshot" db redefine < "$work/in.xml"
snapxml s2 -e 's|<name>s2</name>|<name>nm2</name>|' -e '/<domain type/,/<\/domain>/d' -e "s|</disks>|</disks><domain><uuid>$db_uuid</uuid></domain>|" > "$work/in.xml"
rx "$EINVAL" "missing domain in snapshot" db redefine-current < "$work/in.xml"

# ---- 5. delete and revert ------------------------------------------------------------
rv "$EINVAL" "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive" db delete "s2 --children --children-only"
rv "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'nosuch'" db delete nosuch
rv "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'nosuch'" db delete "nosuch --metadata"
rv "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'nosuch'" db revert nosuch
rv "$EINVAL" "deletion of external disk snapshots with children not supported" db delete "s8 --children"
rv "$EINVAL" "deletion of external disk snapshots with children not supported" db delete "s2 --children"
rv "$EINVAL" "deletion of external children disk snapshots not supported" db delete "s1 --children-only"
rv "$EINVAL" "deletion of external and internal children disk snapshots not supported" web delete "installed --children-only"
rv "$EINVAL" "deleting external snapshot that has internal snapshot as parent not supported" web delete e1
REFUSE_GLOB=1 rv "$EINVAL" "@(could not find base disk source in disk source chain|VM disk source and snapshot disk source are not the same)" db delete s7
rv "$EINVAL" "snapshot 'old' lacks domain 'legacy' rollback info" legacy revert old
refuse "$EINVAL" "cannot delete inactive domain with 1 snapshots" "$mnt" "echo legacy > '$mnt/ctl/undefine'"
refuse "$EINVAL" "cannot delete inactive domain with 3 snapshots" "$mnt" "echo web > '$mnt/ctl/undefine'"

# ---- 6. current ------------------------------------------------------------------------
refuse "$ENOENT" "Domain snapshot not found: no domain snapshot with matching name 'zz'" \
    "$mnt/db" "ln -sfn snapshots/zz '$mnt/db/current'"

# ---- 7. genid ----------------------------------------------------------------------------
rv "$EINVAL" "malformed genid element" web genid bad-guid
rv "$EINVAL" "malformed genid element" web genid 8f3c9a1e-5b7d-4c2e-9f0a-1b2c3d4e5f
rv "$EINVAL" "malformed genid element" legacy genid 8f3c9a1e5b7d4c2e9f0a1b2c3d4e5f60aa
top "$EINVAL" "malformed genid element" define <<EOF
<domain type='kvm'><name>g1</name><genid>xyz</genid><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>
EOF
top "$EINVAL" "element 'genid' can only appear once" define <<EOF
<domain type='kvm'><name>g1</name><genid/><genid/><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>
EOF

# ---- cases that may change the store when the check is missing: last ------------------
# The snapshot's own definition must name the image below its overlay.
echo p1 > "$mnt/db/ctl/create" || fail "db p1: $(cat "$mnt/db/ctl/result")"
sed "/<domain type/,/<\/domain>/{/<source /d}" "$mnt/db/snapshots/p1/snapshot.secure.xml" > "$work/p1.xml"
cat "$work/p1.xml" > "$mnt/db/ctl/redefine" || fail "redefine p1: $(cat "$mnt/db/ctl/result")"
rebase
rv "$EINVAL" "snapshot VM disk source and parent disk source are not the same" db delete p1
# An interrupted external delete left <snapshotDeleteInProgress/> on the disks: a retry is refused.
echo m > "$mnt/db/ctl/create" || fail "db m: $(cat "$mnt/db/ctl/result")"
for s in "$(basename "$(readlink "$mnt/db/snapshots/m/parent")")" m; do
    sed "0,/<source [^>]*\/>/s||&<snapshotDeleteInProgress/>|" \
        "$mnt/db/snapshots/$s/snapshot.secure.xml" > "$work/dip.xml"
    grep -q snapshotDeleteInProgress "$work/dip.xml" || fail "no marker in $s"
    cat "$work/dip.xml" > "$mnt/db/ctl/redefine" || fail "redefine $s: $(cat "$mnt/db/ctl/result")"
done
rebase
rv "$EINVAL" "snapshot disk 'vda' was target of not completed snapshot delete" db delete m

rx "$EINVAL" "block device snapshot target '$work/nodev' doesn't exist" db create <<EOF
<domainsnapshot><name>d2</name><disks><disk name='vda' snapshot='external' type='block'><source dev='$work/nodev'/></disk></disks></domainsnapshot>
EOF
rx "$EINVAL" "mismatch between configured type for snapshot disk 'vda' and the type of existing file '$work/empty.img'" db create <<EOF
<domainsnapshot><name>d3</name><disks><disk name='vda' snapshot='external' type='block'><source dev='$work/empty.img'/></disk></disks></domainsnapshot>
EOF

# ---- read-only mount: libvirt's read-only connection text ---------------------------------
umount_fs
rebase
mount_fs -o ro
# The kernel refuses the open itself: snapfs never sees the write, so ctl/result cannot hold
# libvirt's "read only access prevents virDomainSnapshotCreateXML"; errno and store only.
ncase=$((ncase + 1))
if out=$(bash -c "echo r1 > '$mnt/db/ctl/create'" 2>&1); then bad "write on -o ro succeeded"; fi
case "$out" in *'Read-only file system'*) ;; *) bad "-o ro: '$out'";; esac
storelist | cmp -s "$work/base.list" - || bad "-o ro: store changed"
umount_fs

echo "$ncase cases, $nfail failed"
[ "$nfail" = 0 ] || exit 1
echo ok
