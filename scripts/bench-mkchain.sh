#!/bin/bash
# bench-mkchain.sh: builds the 3-layer qcow2 chain and its store for scripts/bench.sh.
#
#   scripts/bench-mkchain.sh DIR SIZE_MB [SEED]
#
# DIR/images/base.qcow2  compressed base (qemu-img convert -c): ~44 % of the clusters
#                        written, two thirds compressible text, one third random bytes
#                        (those stay uncompressed: compression does not shrink them)
# DIR/images/mid.qcow2   overlay: ~37 % of the clusters rewritten, ~3 % zeroed (write -z)
# DIR/images/top.qcow2   overlay: ~34 % rewritten, ~3 % zeroed
# DIR/qemu/vm.xml        domain 'vm' whose vda is top.qcow2 (the store snapfs mounts)
# The layout is drawn from a fixed seed: the same arguments give the same chain.
set -euo pipefail

dir=${1:?usage: bench-mkchain.sh DIR SIZE_MB [SEED]}
size=${2:?usage: bench-mkchain.sh DIR SIZE_MB [SEED]}
seed=${3:-7}
mkdir -p "$dir/images" "$dir/qemu/snapshot"
dir=$(cd "$dir" && pwd)
img=$dir/images

# Pattern files: 256 KiB of random bytes, and 256 KiB of base64 text.
head -c 262144 /dev/urandom > "$img/pat-rand"
head -c 200000 /dev/urandom | base64 -w 76 > "$img/pat-text"
truncate -s 262144 "$img/pat-text"

# cmds SEED WRITE_PCT ZERO_PCT MODE: qemu-io commands over 256 KiB units.
cmds() {
    awk -v seed="$1" -v wp="$2" -v zp="$3" -v mode="$4" -v units="$((size * 4))" \
        -v rnd="$img/pat-rand" -v txt="$img/pat-text" 'BEGIN {
        srand(seed)
        for (u = 0; u < units; u++) {
            r = rand() * 100
            off = u * 262144
            if (r < wp) {
                # a 64 KiB .. 256 KiB extent inside the unit, cluster aligned
                n = 1 + int(rand() * 4); start = int(rand() * (5 - n))
                src = (mode == "base" && rand() < 0.67) ? txt : rnd
                printf "write -q -s %s %d %d\n", src, off + start * 65536, n * 65536
            } else if (r < wp + zp) {
                printf "write -q -z %d 65536\n", off
            }
        }
    }'
}

qemu-img create -q -f qcow2 "$img/base-plain.qcow2" "${size}M"
cmds "$seed" 70 0 base | qemu-io -f qcow2 "$img/base-plain.qcow2" >/dev/null
qemu-img convert -c -O qcow2 "$img/base-plain.qcow2" "$img/base.qcow2"
rm -f "$img/base-plain.qcow2"
qemu-img create -q -f qcow2 -F qcow2 -b "$img/base.qcow2" "$img/mid.qcow2"
cmds "$((seed + 1))" 60 3 over | qemu-io -f qcow2 "$img/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -F qcow2 -b "$img/mid.qcow2" "$img/top.qcow2"
cmds "$((seed + 2))" 55 3 over | qemu-io -f qcow2 "$img/top.qcow2" >/dev/null

cat > "$dir/qemu/vm.xml" <<EOF
<domain type='kvm'>
  <name>vm</name>
  <uuid>0b6c3e1a-3f7d-4d2a-9c61-5a0e7b2d9f10</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$img/top.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
chmod 600 "$dir/qemu/vm.xml"
echo "$dir"
