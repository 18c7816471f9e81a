#!/bin/bash
# bench-mkmeta.sh: writes metadata-only stores and snapshot documents for scripts/bench.sh.
#
#   scripts/bench-mkmeta.sh store DIR DOMAINS PER_DOMAIN
#       DIR/qemu/dNNN.xml and DIR/qemu/snapshot/dNNN/sK.xml as libvirt writes them
#       (warning header, <active>, the domain embedded), K = 1..PER_DOMAIN; the tree
#       is a binary heap (parent of sK is s(K/2)), s1 the root, the last one current.
#   scripts/bench-mkmeta.sh docs DIR COUNT
#       DIR/sK.xml, K = 1..COUNT: `virsh snapshot-dumpxml`-style documents for the
#       test driver's built-in domain 'test' (same heap tree; K order is parents first),
#       DIR/store/qemu/test.xml: that domain, for a snapfs store to redefine them into.
#   scripts/bench-mkmeta.sh snapshots DIR COUNT DOMAIN_XML
#       DIR/sK.xml, K = 1..COUNT, as `store` writes them, each embedding the domain of the
#       file DOMAIN_XML as it is (`virsh dumpxml --inactive` of a domain a libvirt daemon
#       holds: written before the daemon starts, it loads them as its own).
# Every snapshot is metadata-only: the domain's disk is internal (the test driver's
# rule), no memory, state shutoff; nothing refers to an image that must exist.
set -euo pipefail

# The test driver's domain ('virsh -c test:///default dumpxml --inactive test').
domain_xml() {
    cat <<'EOF'
<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
EOF
}

# gen MODE OUTDIR DOMAIN COUNT UUID: the snapshot files of one domain (awk, one pass), the
# test driver's domain renamed; gen_from MODE OUTDIR COUNT: the domain XML read from stdin.
gen() {
    local mode=$1 out=$2 dom=$3 count=$4 uuid=$5
    domain_xml | sed "s|<name>test</name>|<name>$dom</name>|; s|<uuid>.*</uuid>|<uuid>$uuid</uuid>|" |
        gen_from "$mode" "$out" "$count"
}
gen_from() {
    local mode=$1 out=$2 count=$3
    awk -v mode="$mode" -v out="$out" -v count="$count" '
    { dom[n++] = "  " $0 }
    END {
        hdr = "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n" \
              "OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n" \
              "  virsh snapshot-edit\nor other application using the libvirt API.\n-->\n"
        body = ""
        for (i = 0; i < n; i++) body = body dom[i] "\n"
        for (k = 1; k <= count; k++) {
            f = out "/s" k ".xml"
            s = (mode == "store") ? hdr "\n" : ""
            s = s "<domainsnapshot>\n  <name>s" k "</name>\n  <state>shutoff</state>\n"
            if (k > 1)
                s = s "  <parent>\n    <name>s" int(k / 2) "</name>\n  </parent>\n"
            s = s "  <creationTime>" (1700000000 + k) "</creationTime>\n"
            s = s "  <disks>\n    <disk name=\x27vda\x27 snapshot=\x27internal\x27/>\n  </disks>\n"
            s = s body
            if (mode == "store")
                s = s "  <active>" (k == count ? 1 : 0) "</active>\n"
            s = s "</domainsnapshot>\n"
            printf "%s", s > f
            close(f)
        }
    }'
}

case ${1:-} in
store)
    dir=${2:?}; ndom=${3:?}; per=${4:?}
    mkdir -p "$dir/qemu/snapshot"
    for ((d = 0; d < ndom; d++)); do
        name=$(printf 'd%03d' "$d")
        uuid=$(printf '6695eb01-f6a4-8304-79aa-%012d' "$d")
        {
            printf '<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n'
            printf 'OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n'
            printf '  virsh edit %s\nor other application using the libvirt API.\n-->\n\n' "$name"
            domain_xml | sed "s|<name>test</name>|<name>$name</name>|; s|<uuid>.*</uuid>|<uuid>$uuid</uuid>|"
        } > "$dir/qemu/$name.xml"
        mkdir -p "$dir/qemu/snapshot/$name"
        gen store "$dir/qemu/snapshot/$name" "$name" "$per" "$uuid"
    done
    chmod 600 "$dir"/qemu/*.xml
    ;;
snapshots)
    dir=${2:?}; count=${3:?}; xml=${4:?}
    mkdir -p "$dir"
    sed '/^$/d' "$xml" | gen_from store "$dir" "$count"
    ;;
docs)
    dir=${2:?}; count=${3:?}
    mkdir -p "$dir/store/qemu/snapshot"
    gen docs "$dir" test "$count" 6695eb01-f6a4-8304-79aa-97f2502e193f
    domain_xml > "$dir/store/qemu/test.xml"
    ;;
*)
    echo "usage: bench-mkmeta.sh store DIR DOMAINS PER_DOMAIN | snapshots DIR COUNT DOMAIN_XML | docs DIR COUNT" >&2
    exit 2
    ;;
esac
