#!/bin/bash
# mkstore.sh: builds a demo/test store in libvirt's layout with real images.
#
#   scripts/mkstore.sh DIR [SIZE_MB]
#
# DIR/images/  qcow2 and raw images made with qemu-img and qemu-io
# DIR/qemu/NAME.xml, DIR/qemu/snapshot/NAME/SNAP.xml  as libvirt writes them
#
# Domains:
#   db      a branching tree of 8 external disk-only snapshots made the way libvirt
#           makes them (overlay base.S next to the image, absolute backing path,
#           backing format recorded), current s8:
#             s1 -> s2 -> s3, s2 -> s4 -> s5, s1 -> s6 -> s7, s6 -> s8
#   web     vda: a 3-deep qcow2 chain on a raw base, found by probing;
#           vdb: a qcow2 overlay whose <backingStore> is an NBD network source;
#           a genid and a VNC password (only the secure files show it); 2 snapshots
#   legacy  vda: a chain written out in the XML with its <backingStore/> terminator,
#           an empty cdrom, no genid, no snapshots
set -euo pipefail

dir=${1:?usage: mkstore.sh DIR [SIZE_MB]}
size=${2:-64}
[ "$size" -ge 16 ] || { echo "mkstore.sh: SIZE_MB must be at least 16" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
img=$dir/images
cfg=$dir/qemu
snapdir=$cfg/snapshot
mkdir -p "$img" "$snapdir"
umask 077

qio() { qemu-io -f "$1" -c "$3" "$2" >/dev/null; }

header_snapshot() {
    cat <<'EOF'
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh snapshot-edit
or other application using the libvirt API.
-->

EOF
}

header_domain() {
    cat <<EOF
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit $1
or other application using the libvirt API.
-->

EOF
}

# domain_xml NAME UUID INDENT DISKS_XML [EXTRA_XML]: an inactive <domain>.
domain_xml() {
    local name=$1 uuid=$2 ind=$3 disks=$4 extra=${5:-}
    sed "s/^/$ind/" <<EOF
<domain type='kvm'>
  <name>$name</name>
  <uuid>$uuid</uuid>
$extra  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
$disks    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
  </devices>
</domain>
EOF
}

file_disk() {   # file_disk DEV PATH FORMAT
    cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='$3'/>
      <source file='$2'/>
      <target dev='$1' bus='virtio'/>
    </disk>
EOF
}

# snapshot_file DOMAIN NAME PARENT TIME ACTIVE OVERLAY DESCRIPTION BEFORE_SOURCE UUID
snapshot_file() {
    local dom=$1 name=$2 parent=$3 time=$4 active=$5 overlay=$6 desc=$7 before=$8 uuid=$9
    mkdir -p "$snapdir/$dom"
    {
        header_snapshot
        echo "<domainsnapshot>"
        echo "  <name>$name</name>"
        [ -n "$desc" ] && echo "  <description>$desc</description>"
        echo "  <state>shutoff</state>"
        if [ -n "$parent" ]; then
            echo "  <parent>"
            echo "    <name>$parent</name>"
            echo "  </parent>"
        fi
        echo "  <creationTime>$time</creationTime>"
        echo "  <memory snapshot='no'/>"
        echo "  <disks>"
        echo "    <disk name='vda' snapshot='external' type='file'>"
        echo "      <driver type='qcow2'/>"
        echo "      <source file='$overlay'/>"
        echo "    </disk>"
        echo "  </disks>"
        domain_xml "$dom" "$uuid" "  " "$(file_disk vda "$before" "$(fmt_of "$before")")
"
        echo "  <active>$active</active>"
        echo "</domainsnapshot>"
    } > "$snapdir/$dom/$name.xml"
}

fmt_of() { qemu-img info --output=json "$1" | sed -n 's/.*"format": "\([a-z0-9]*\)".*/\1/p' | head -1; }

# ---- db: a branching tree of external snapshots ------------------------------
db_uuid=6f1e3b52-7c0e-4c1a-9d55-0d1f5e0a7b11
qemu-img create -q -f qcow2 "$img/db.qcow2" "${size}M"
qio qcow2 "$img/db.qcow2" "write -P 0x11 0 $((size / 2))M"
qio qcow2 "$img/db.qcow2" "write -z $((size / 2))M 1M"

top=$img/db.qcow2
declare -A before
t=1700000000
# take NAME: an external snapshot of the current top, as libvirt names it.
take() {
    local name=$1 base new
    base=${top##*/}
    new=$img/${base%.*}.$name
    qemu-img create -q -f qcow2 -F "$(fmt_of "$top")" -b "$top" "$new"
    before[$name]=$top
    top=$new
}
# revert NAME: a new overlay on the images NAME captured.
revert_to() {
    local name=$1 n=1 base
    base=${before[$name]}
    while [ -e "$img/db.$name-$n" ]; do n=$((n + 1)); done
    qemu-img create -q -f qcow2 -F "$(fmt_of "$base")" -b "$base" "$img/db.$name-$n"
    top=$img/db.$name-$n
}
take s1; qio qcow2 "$top" "write -P 0x21 1M 3M"
take s2; qio qcow2 "$top" "write -P 0x22 2M 1536k"
take s3; qio qcow2 "$top" "write -P 0x23 5M 64k"
revert_to s2; take s4; qio qcow2 "$top" "write -P 0x24 7M 1M"
take s5; qio qcow2 "$top" "write -z 1M 512k"
revert_to s1; take s6; qio qcow2 "$top" "write -P 0x26 3M 4M"
take s7; qio qcow2 "$top" "write -P 0x27 0 4k"
revert_to s6; take s8; qio qcow2 "$top" "write -P 0x28 9M 100k"

declare -A parents
parents=([s1]="" [s2]=s1 [s3]=s2 [s4]=s2 [s5]=s4 [s6]=s1 [s7]=s6 [s8]=s6)
for s in s1 s2 s3 s4 s5 s6 s7 s8; do
    n=${s#s}
    base=${before[$s]##*/}
    active=0; [ "$s" = s8 ] && active=1
    desc=""; [ "$s" = s1 ] && desc="fresh install &amp; updates"
    snapshot_file db "$s" "${parents[$s]}" $((t + n * 3600)) $active \
        "$img/${base%.*}.$s" "$desc" "${before[$s]}" "$db_uuid"
done
{
    header_domain db
    domain_xml db "$db_uuid" "" "$(file_disk vda "$top" qcow2)
"
} > "$cfg/db.xml"

# ---- web: a probed 3-deep qcow2 chain on a raw base, and a network backing ----
web_uuid=2c8e5f0a-1b3d-4e6f-8a9b-0c1d2e3f4a5b
web_genid=8f3c9a1e-5b7d-4c2e-9f0a-1b2c3d4e5f60
qemu-img create -q -f raw "$img/web-base.raw" "${size}M"
qio raw "$img/web-base.raw" "write -P 0x41 0 $((size / 4))M"
qemu-img create -q -f qcow2 -o cluster_size=65536 -F raw -b "$img/web-base.raw" "$img/web-mid.qcow2"
qio qcow2 "$img/web-mid.qcow2" "write -P 0x42 $((size / 8))M $((size / 8))M"
qio qcow2 "$img/web-mid.qcow2" "write -z 512k 256k"
qemu-img create -q -f qcow2 -o cluster_size=512 -F qcow2 -b web-mid.qcow2 "$img/web-top.qcow2"
qio qcow2 "$img/web-top.qcow2" "write -P 0x43 1000 70000"
qemu-img create -q -f qcow2 "$img/web-data.qcow2" "${size}M"
web_disks="$(file_disk vda "$img/web-top.qcow2" qcow2)
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$img/web-data.qcow2'/>
      <backingStore type='network'>
        <format type='raw'/>
        <source protocol='nbd' name='export'>
          <host name='storage.example.com' port='10809'/>
        </source>
        <backingStore/>
      </backingStore>
      <target dev='vdb' bus='virtio'/>
    </disk>
"
web_extra="  <genid>$web_genid</genid>
  <title>Web server</title>
"
{
    header_domain web
    domain_xml web "$web_uuid" "" "$web_disks" "$web_extra" |
        sed "s|  </devices>|    <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret-vnc'/>\n  </devices>|"
} > "$cfg/web.xml"
mkdir -p "$snapdir/web"
for s in installed configured; do
    n=1; p=""; active=0
    [ $s = configured ] && { n=2; p=installed; active=1; }
    {
        header_snapshot
        echo "<domainsnapshot>"
        echo "  <name>$s</name>"
        echo "  <state>shutoff</state>"
        [ -n "$p" ] && printf '  <parent>\n    <name>%s</name>\n  </parent>\n' "$p"
        echo "  <creationTime>$((t + 100000 + n))</creationTime>"
        echo "  <memory snapshot='no'/>"
        echo "  <disks>"
        echo "    <disk name='vda' snapshot='internal'/>"
        echo "    <disk name='vdb' snapshot='no'/>"
        echo "  </disks>"
        domain_xml web "$web_uuid" "  " "$web_disks" "$web_extra" |
            sed "s|    </devices>|      <graphics type='vnc' port='-1' autoport='yes' passwd='s3cret-vnc'/>\n    </devices>|"
        echo "  <active>$active</active>"
        echo "</domainsnapshot>"
    } > "$snapdir/web/$s.xml"
    qemu-img snapshot -c "$s" "$img/web-top.qcow2"
done

# ---- legacy: an explicit chain with its terminator, an empty cdrom ------------
legacy_uuid=0a0b0c0d-0e0f-4010-8111-121314151617
qemu-img create -q -f qcow2 "$img/legacy-base.qcow2" "${size}M"
qio qcow2 "$img/legacy-base.qcow2" "write -P 0x51 0 1M"
qemu-img create -q -f qcow2 -F qcow2 -b "$img/legacy-base.qcow2" "$img/legacy.qcow2"
qio qcow2 "$img/legacy.qcow2" "write -P 0x52 512k 1M"
legacy_disks="    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$img/legacy.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='$img/legacy-base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
"
{
    header_domain legacy
    domain_xml legacy "$legacy_uuid" "" "$legacy_disks"
} > "$cfg/legacy.xml"

chmod 600 "$cfg"/*.xml "$snapdir"/*/*.xml
echo "$dir"
