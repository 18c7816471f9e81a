#!/bin/sh
# mkfixtures.sh: builds sample disk images (qcow2 chains, odd cluster sizes, broken images) into DIR.
#
# usage: scripts/mkfixtures.sh DIR
# Needs qemu-img, qemu-io and python3 (seeded random data: the same bytes every run).
# Good chains (top first; each qcow2 records its backing format unless noted):
#   chain3-top.qcow2 -> chain3-mid.qcow2 (internal snapshot s1) -> chain3-base.raw (sparse)
#   c512-top.qcow2 (512 B clusters) -> c512-base.raw
#   c2m-top.qcow2 -> c2m-base.qcow2 (2 MiB clusters)
#   comp-top.qcow2 -> comp-zstd.qcow2 (compressed, zstd); comp-zlib.qcow2, comp-4k.qcow2 (zlib)
#   short-top.qcow2 (8 MiB) -> short-base.qcow2 (2 MiB) -> short-bottom.raw (8 MiB)
#   v2-top.qcow2 -> v2-base.qcow2 (compat=0.10)
#   probe-top.qcow2 -> probe-base.qcow2 (format not recorded; base has no backing: accepted)
#   extl2-top.qcow2 (32 KiB clusters) -> extl2-mid.qcow2 (64 KiB) -> extl2-base.raw: extended L2 (subclusters)
#   odd.raw (1000 bytes: qemu reads 1024), odd.qcow2 (virtual size 1000 in its header: qemu reads 512),
#   odd-top.qcow2 (64 KiB) -> odd.qcow2, odd-raw-top.qcow2 (64 KiB) -> odd.raw
#   datafile-top.qcow2 -> datafile.qcow2 (external data file datafile.raw, named relative),
#   datafile-raw.qcow2 (data file datafile-raw.raw with data_file_raw=on, named by absolute path)
#   beyond-eof.qcow2: a data cluster and bad-l1.qcow2 an L2 table beyond the end of the file (qemu
#   reads zeros there)
# Broken: trunc-header.qcow2, trunc-l1.qcow2, bad-l1.qcow2, loop-self.qcow2, loop-a.qcow2 <-> loop-b.qcow2,
#   deep/deep-200.qcow2 (201 layers), missing.qcow2, evil-top.qcow2 -> evil-guest.raw (a raw disk
#   whose content is a qcow2 header naming /etc/shadow; format not recorded; evil-safe.qcow2 records
#   it as raw, which is fine), huge-size.qcow2 (1 EiB),
#   huge-l1.qcow2, encrypted.qcow2 (LUKS, secret "snapfs").
# Read by qemu as EIO (qemu-img convert fails): zero-unaligned.qcow2 (zero cluster with an unaligned
#   host offset), extl2-both.qcow2 (a subcluster both allocated and zero), v2-zero.qcow2 (zero flag in a
#   version 2 image), l2-unaligned.qcow2 (unaligned L2 table offset), datafile-moved.qcow2 (data file
#   cluster away from its guest offset), datafile-comp.qcow2 (compressed cluster with a data file).
set -eu

dir=${1:?usage: mkfixtures.sh DIR}
scripts=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"

rnd() {   # rnd FILE SEED BYTES
    python3 -c "import random,sys; random.seed($2); sys.stdout.buffer.write(random.randbytes($3))" >"$1"
}
img() { qemu-img "$@" >/dev/null; }
io() {    # io FORMAT FILE 'cmd' ...
    fmt=$1; file=$2; shift 2
    for c in "$@"; do set -- "$@" -c "$c"; shift; done
    qemu-io -f "$fmt" "$file" "$@" >/dev/null
}
patch() { # patch FILE OFFSET PRINTF-BYTES
    printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
ext_offset() { # offset of the backing-format header extension
    LC_ALL=C grep -obUaP '\xe2\x79\x2a\xca' "$1" | head -n 1 | cut -d: -f1
}
forget_backing_format() {  # turn the backing-format extension into an unknown one
    patch "$1" "$(ext_offset "$1")" '\000\000\000\001'
}
be64() { od -An -tu8 --endian=big -j"$2" -N8 "$1" | tr -d ' '; }
l2set() {  # l2set FILE GUEST-OFFSET ENTRY-EXPR [BITMAP-EXPR]
    python3 "$scripts/qcow2-l2set.py" "$@"
}

for i in 1 2 3 4 5 6 7 8; do rnd r$i.bin $i 1200000; done

# chain3: sparse raw base, mid with snapshot, top with zero/compressed/sub-cluster writes
truncate -s 8M chain3-base.raw
rnd base-data.bin 100 1048576
dd if=base-data.bin of=chain3-base.raw bs=1024 seek=1024 conv=notrunc status=none
dd if=r1.bin of=chain3-base.raw bs=1 seek=5243003 count=300000 conv=notrunc status=none
img create -f qcow2 -o cluster_size=65536 -b chain3-base.raw -F raw chain3-mid.qcow2 8M
io qcow2 chain3-mid.qcow2 'write -s r1.bin 0 100k' 'write -s r2.bin 200k 3k' \
    'write -s r3.bin 2098176 1M' 'write -z 6M 256k'
img snapshot -c s1 chain3-mid.qcow2
io qcow2 chain3-mid.qcow2 'write -s r4.bin 3M 64k' 'write -s r5.bin 7340132 50k' \
    'write -s r6.bin 100k 7k'
img create -f qcow2 -o cluster_size=65536 -b chain3-mid.qcow2 -F qcow2 chain3-top.qcow2 8M
io qcow2 chain3-top.qcow2 'write -s r6.bin 50k 200k' 'write -z 1114112 128k' \
    'write -z 2101248 1k' 'write -s r7.bin 5M 600k' 'write -c -s r8.bin 4M 64k' \
    'write -s r2.bin 8387584 512' 'write -z -u 3M 64k'

# c512: 512-byte clusters, scattered writes of odd sizes
truncate -s 3M c512-base.raw
dd if=r3.bin of=c512-base.raw bs=4096 seek=64 count=200 conv=notrunc status=none
img create -f qcow2 -o cluster_size=512 -b c512-base.raw -F raw c512-top.qcow2 3M
cmds=""
i=0
while [ $i -lt 24 ]; do
    off=$(( (i * 131071 + i * i * 977) % 3000000 ))
    len=$(( 1 + (i * 7919) % 40000 ))
    set -- "write -s r$(( i % 8 + 1 )).bin $off $len"
    io qcow2 c512-top.qcow2 "$1"
    i=$((i + 1))
done
io qcow2 c512-top.qcow2 'write -z 1000000 5000' 'write -z 1M 64k' 'write -c -s r4.bin 2M 4k'

# c2m: 2 MiB clusters
img create -f qcow2 -o cluster_size=2097152 c2m-base.qcow2 16M
io qcow2 c2m-base.qcow2 'write -s r1.bin 1M 1M' 'write -s r2.bin 5000000 700000' 'write -s r3.bin 14M 2M'
img create -f qcow2 -o cluster_size=2097152 -b c2m-base.qcow2 -F qcow2 c2m-top.qcow2 16M
io qcow2 c2m-top.qcow2 'write -s r4.bin 1500000 10000' 'write -z 14M 2M' 'write -s r5.bin 9M 3000'

# compressed clusters: zlib, zstd, 4 KiB clusters, and an overlay on the zstd image
truncate -s 8M comp-src.raw
dd if=base-data.bin of=comp-src.raw bs=1024 seek=512 conv=notrunc status=none
dd if=r2.bin of=comp-src.raw bs=1024 seek=4000 count=1000 conv=notrunc status=none
printf 'compressible %.0s' $(seq 1 20000) | dd of=comp-src.raw bs=1024 seek=6000 conv=notrunc status=none
img convert -c -O qcow2 comp-src.raw comp-zlib.qcow2
img convert -c -O qcow2 -o compression_type=zstd comp-src.raw comp-zstd.qcow2
img convert -c -O qcow2 -o cluster_size=4096 comp-src.raw comp-4k.qcow2
img create -f qcow2 -b comp-zstd.qcow2 -F qcow2 comp-top.qcow2 8M
io qcow2 comp-top.qcow2 'write -s r5.bin 600k 5k' 'write -z 4100k 64k'

# a backing file shorter than its overlay (whose own, longer, backing must not show through)
rnd short-bottom.raw 200 8388608
img create -f qcow2 -b short-bottom.raw -F raw short-base.qcow2 2M
io qcow2 short-base.qcow2 'write -s r1.bin 0 1M'
img create -f qcow2 -b short-base.qcow2 -F qcow2 short-top.qcow2 8M
io qcow2 short-top.qcow2 'write -s r2.bin 1M 100k' 'write -s r3.bin 6M 100k'

# qcow2 version 2
img create -f qcow2 -o compat=0.10 v2-base.qcow2 8M
io qcow2 v2-base.qcow2 'write -s r4.bin 0 1M' 'write -s r5.bin 3M 333333'
img create -f qcow2 -o compat=0.10 -b v2-base.qcow2 -F qcow2 v2-top.qcow2 8M
io qcow2 v2-top.qcow2 'write -s r6.bin 512k 1k' 'write -z 3M 64k'

# a backing format that has to be probed: accepted, the base has no backing
img create -f qcow2 probe-base.qcow2 4M
io qcow2 probe-base.qcow2 'write -s r7.bin 1M 1M'
img create -f qcow2 -b probe-base.qcow2 -F qcow2 probe-top.qcow2 4M
forget_backing_format probe-top.qcow2

# extended L2 entries: 32 subclusters per cluster, sub-cluster writes and zero writes
truncate -s 4M extl2-base.raw
dd if=r5.bin of=extl2-base.raw bs=1024 seek=100 count=1000 conv=notrunc status=none
img create -f qcow2 -o extended_l2=on,cluster_size=65536 -b extl2-base.raw -F raw extl2-mid.qcow2 4M
io qcow2 extl2-mid.qcow2 'write -s r1.bin 3000 5000' 'write -s r2.bin 200k 70k' \
    'write -z 500k 3k' 'write -s r3.bin 2M 1M'
img create -f qcow2 -o extended_l2=on,cluster_size=32768 -b extl2-mid.qcow2 -F qcow2 extl2-top.qcow2 4M
io qcow2 extl2-top.qcow2 'write -s r4.bin 1024 1024' 'write -s r6.bin 210k 9k' \
    'write -z 2100k 2k' 'write -z 2200k 64k' 'write -c -s r7.bin 3M 32k' 'write -s r8.bin 4150000 1234'

# --- broken images ---
cp chain3-mid.qcow2 trunc-header.qcow2
truncate -s 50 trunc-header.qcow2
cp chain3-top.qcow2 trunc-l1.qcow2
truncate -s $(( $(be64 trunc-l1.qcow2 40) + 4 )) trunc-l1.qcow2
cp chain3-top.qcow2 bad-l1.qcow2       # first L1 entry points far beyond the end of the file
patch bad-l1.qcow2 "$(be64 bad-l1.qcow2 40)" '\200\000\000\001\000\000\000\000'

img create -f qcow2 loop-self.qcow2 1M
img rebase -u -F qcow2 -b loop-self.qcow2 loop-self.qcow2
img create -f qcow2 loop-a.qcow2 1M
img create -f qcow2 -b loop-a.qcow2 -F qcow2 loop-b.qcow2 1M
img rebase -u -F qcow2 -b loop-b.qcow2 loop-a.qcow2

mkdir -p deep
img create -f qcow2 deep/deep-000.qcow2 1M
i=1
while [ $i -le 200 ]; do
    img create -f qcow2 -u -b "deep-$(printf %03d $((i - 1))).qcow2" -F qcow2 \
        "deep/deep-$(printf %03d $i).qcow2" 1M
    i=$((i + 1))
done

img create -f qcow2 -u -b does-not-exist.qcow2 -F qcow2 missing.qcow2 1M

# the guest wrote a qcow2 header naming /etc/shadow into its raw disk
img create -f qcow2 -u -b /etc/shadow -F raw evil-guest.raw 1M
img create -f qcow2 -u -b evil-guest.raw -F raw evil-top.qcow2 1M
forget_backing_format evil-top.qcow2
img create -f qcow2 -u -b evil-guest.raw -F raw evil-safe.qcow2 1M  # recorded as raw: never probed

img create -f qcow2 huge-size.qcow2 1M
patch huge-size.qcow2 24 '\020\000\000\000\000\000\000\000'     # 1 EiB
img create -f qcow2 huge-l1.qcow2 1M
patch huge-l1.qcow2 36 '\177\377\377\377'

# qemu-img 7.2 times its PBKDF benchmark with the thread's CPU clock and gives up
# ("Unable to get accurate CPU usage") when a round reads 0 ms, which happens on a
# loaded machine: try again. A short iter-time keeps the benchmark cheap.
try=1
until qemu-img create --object secret,id=sec0,data=snapfs -f qcow2 \
        -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100 \
        encrypted.qcow2 1M >/dev/null; do
    try=$((try + 1))
    [ "$try" -le 5 ] || exit 1
done

# odd sizes: qemu counts whole 512-byte sectors
rnd odd.raw 300 1000
img create -f qcow2 odd.qcow2 1024
io qcow2 odd.qcow2 'write -s r1.bin 0 1024'
patch odd.qcow2 24 '\000\000\000\000\000\000\003\350'   # 1000
img create -f qcow2 -b odd.qcow2 -F qcow2 odd-top.qcow2 64k
io qcow2 odd-top.qcow2 'write -s r2.bin 4096 512'
img create -f qcow2 -b odd.raw -F raw odd-raw-top.qcow2 64k
io qcow2 odd-raw-top.qcow2 'write -s r3.bin 8192 512'

# external data files: relative (data in the L2 only), absolute and raw (all mapped)
img create -f qcow2 -o data_file=datafile.raw datafile.qcow2 1M
io qcow2 datafile.qcow2 'write -s r1.bin 0 100k' 'write -s r2.bin 300k 5k' 'write -z 64k 64k'
img create -f qcow2 -b datafile.qcow2 -F qcow2 datafile-top.qcow2 1M
io qcow2 datafile-top.qcow2 'write -s r3.bin 20k 50k'
rnd datafile-raw.raw 301 2097152
img create -f qcow2 -o data_file="$PWD/datafile-raw.raw",data_file_raw=on datafile-raw.qcow2 2M
io qcow2 datafile-raw.qcow2 'write -s r4.bin 1M 10k' 'write -z 1500k 64k'

# --- what qemu reads as zeros (beyond the end of the file) or fails with EIO ---
img create -f qcow2 beyond-eof.qcow2 1M
io qcow2 beyond-eof.qcow2 'write -s r5.bin 0 192k'
l2set beyond-eof.qcow2 65536 '(1 << 63) | (1 << 40)'
img create -f qcow2 zero-unaligned.qcow2 1M
io qcow2 zero-unaligned.qcow2 'write -s r5.bin 0 128k'
l2set zero-unaligned.qcow2 65536 '(e & 0x00fffffffffffe00) + 512 | 1 | (1 << 63)'
img create -f qcow2 -o extended_l2=on extl2-both.qcow2 1M
io qcow2 extl2-both.qcow2 'write -s r5.bin 0 128k'
l2set extl2-both.qcow2 65536 'e' 'b | (1 << 37)'    # subcluster 5: allocated and zero
img create -f qcow2 -o compat=0.10 v2-zero.qcow2 1M
io qcow2 v2-zero.qcow2 'write -s r5.bin 0 128k'
l2set v2-zero.qcow2 65536 'e | 1'
img create -f qcow2 l2-unaligned.qcow2 1M
io qcow2 l2-unaligned.qcow2 'write -s r5.bin 0 128k'
patch l2-unaligned.qcow2 "$(( $(be64 l2-unaligned.qcow2 40) + 6 ))" '\002'   # L2 offset + 512
img create -f qcow2 -o data_file=datafile-moved.raw datafile-moved.qcow2 1M
io qcow2 datafile-moved.qcow2 'write -s r5.bin 0 128k'
l2set datafile-moved.qcow2 65536 '(1 << 63) | 131072'
img create -f qcow2 -o data_file=datafile-comp.raw datafile-comp.qcow2 1M
io qcow2 datafile-comp.qcow2 'write -s r5.bin 0 128k'
l2set datafile-comp.qcow2 65536 '(1 << 62) | 65536'

rm -f r[1-8].bin base-data.bin
