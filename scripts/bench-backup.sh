#!/bin/bash
# bench-backup.sh: times snapfs's backup engine against qemu-img convert on a 1 GiB 3-layer chain.
#
#   scripts/bench-backup.sh [BUILD_DIR [RUNS [SIZE_MB]]]     (defaults: build 5 1024)
#
# Builds a store with one domain whose disk is base.qcow2 <- mid.qcow2 <- top.qcow2
# (each layer writes 30-50% of the disk's 64 KiB clusters, in random 256 KiB
# extents, random patterns), then times, RUNS times each, with a warm page cache:
#   engine raw     a full raw backup by core/files/backup_job.c (a small driver compiled here
#                  against BUILD_DIR's static libraries: no mount needed)
#   qemu raw       qemu-img convert -O raw of the chain
#   engine qcow2   a full qcow2 backup by core/files/backup_job.c
#   qemu qcow2     qemu-img convert -O qcow2 of the chain
# and prints the medians and the ratios engine/qemu (below 1: the engine is faster).
# The engine fsyncs its target (it must, before the rename); qemu-img convert does
# not, so convert+fsync (convert, then sync(1) of the output) is timed too and is
# the like-for-like number. Each run starts after a sync so writeback of the
# previous run does not count.
# Every run's output is checked (cmp against the chain) before its time counts.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
runs=${2:-5}
size=${3:-1024}
case $build in /*) ;; *) build=$src/$build ;; esac
[ -f "$build/core/libcore_job.a" ] || { echo "bench-backup.sh: build $build first (ninja -C $build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/snapfs-bench-XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
img=$work/images
mkdir -p "$img" "$work/qemu" "$work/out"

# ---- the driver ------------------------------------------------------------------------
cat > "$work/bench-job.c" <<'EOF'
/* bench-job.c: runs one backup job to completion and prints its wall time in seconds. */
#include <stdio.h>
#include <string.h>
#include "backup_job.h"

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(Store) store = NULL;
    g_autoptr(BackupJob) job = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *line = NULL;
    gsize len = 0;
    gint64 t0;

    if (argc != 4 || !g_file_get_contents(argv[3], &xml, &len, &error)) {
        fprintf(stderr, "usage: bench-job STORE DOMAIN XMLFILE\n");
        return 2;
    }
    if (!(store = store_open(argv[1], NULL, NULL, &error))) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    t0 = g_get_monotonic_time();
    if (!(job = backup_job_start(store, argv[2], xml, len, NULL, &error))) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    if (backup_job_wait(job) != BACKUP_JOB_COMPLETED) {
        line = backup_job_describe(job);
        fprintf(stderr, "%s", line);
        return 1;
    }
    printf("%.3f\n", (g_get_monotonic_time() - t0) / 1e6);
    return 0;
}
EOF
libs=""
for l in manage store image model base; do
    libs="$libs $build/core/libcore_$l.a"
done
# shellcheck disable=SC2046
cc -O2 -o "$work/bench-job" "$work/bench-job.c" $(for d in "$src"/core "$src"/core/*/; do printf -- "-I%s " "$d"; done) -I"$build" $libs \
    $(pkg-config --cflags --libs glib-2.0 libxml-2.0 libqcow zlib libzstd) -lpthread

# ---- the chain ------------------------------------------------------------------------
# layer FILE PERCENT SEED: random 256 KiB extents covering about PERCENT% of the disk
layer() {
    local file=$1 pct=$2 seed=$3
    awk -v n=$((size * 4)) -v pct="$pct" -v seed="$seed" 'BEGIN {
        srand(seed);
        for (i = 0; i < n; i++)
            if (rand() * 100 < pct)
                printf "write -P %d %d 256k\n", 1 + int(rand() * 254), i * 262144;
    }' | qemu-io -f qcow2 "$file" >/dev/null
}
qemu-img create -q -f qcow2 "$img/base.qcow2" "${size}M"
layer "$img/base.qcow2" 50 1
qemu-img create -q -f qcow2 -F qcow2 -b "$img/base.qcow2" "$img/mid.qcow2"
layer "$img/mid.qcow2" 40 2
qemu-img create -q -f qcow2 -F qcow2 -b "$img/mid.qcow2" "$img/top.qcow2"
layer "$img/top.qcow2" 30 3
cat > "$work/qemu/bench.xml" <<EOF
<domain type='kvm'>
  <name>bench</name>
  <uuid>0b5e1d7c-2f3a-4b6c-8d9e-0f1a2b3c4d5e</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
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
for f in raw qcow2; do
    cat > "$work/$f.xml" <<EOF
<domainbackup>
  <disks>
    <disk name='vda' type='file'>
      <driver type='$f'/>
      <target file='$work/out/vda.$f'/>
    </disk>
  </disks>
</domainbackup>
EOF
done
qemu-img convert -O raw "$img/top.qcow2" "$work/ref.raw"
for l in base mid top; do
    printf 'bench-backup.sh: %s.qcow2 allocates %s\n' "$l" \
        "$(qemu-img map --output=json "$img/$l.qcow2" | awk -F'[:,]' -v s=$((size << 20)) '
            /"depth": 0/ && /"data": true/ { for (i = 1; i <= NF; i++) if ($i ~ /"length"/) t += $(i + 1) }
            END { printf "%.0f%%", 100 * t / s }')"
done
cat "$img"/*.qcow2 "$work/ref.raw" > /dev/null   # warm the page cache

# ---- timing ---------------------------------------------------------------------------
# Wall time is what users wait for; CPU time (user + sys, children included) is
# printed too: on a loaded machine it is the steadier of the two.
TIMEFORMAT='%R %U %S'
check() {   # check FORMAT FILE: the output reads as the chain
    if [ "$1" = raw ]; then cmp -s "$2" "$work/ref.raw"; else
        qemu-img compare -q -f qcow2 -F raw "$2" "$work/ref.raw"; fi
}
timed() {   # timed CMD...: prints "WALL CPU"
    local t
    t=$( { time "$@" >/dev/null; } 2>&1 ) || { echo "bench-backup.sh: $* failed: $t" >&2; exit 1; }
    awk '{ printf "%s %.3f", $1, $2 + $3 }' <<<"$t"
}
engine() { "$work/bench-job" "$work" bench "$work/$1.xml"; }                # fsyncs, renames
convert() { qemu-img convert -O "$1" "$img/top.qcow2" "$work/out/q.$1"; }    # no fsync
convert_sync() { convert "$1" && sync "$work/out/q.$1"; }
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A wall cpu
for ((r = 1; r <= runs; r++)); do
    for f in raw qcow2; do
        for what in engine convert convert_sync; do
            rm -f "$work"/out/*; sync
            read -r w c <<<"$(timed $what "$f")"
            out=$work/out/q.$f
            [ $what = engine ] && out=$work/out/vda.$f
            check "$f" "$out" || { echo "bench-backup.sh: $what $f: wrong output" >&2; exit 1; }
            wall[$what-$f]+="$w "
            cpu[$what-$f]+="$c "
        done
    done
done
rm -f "$work"/out/*
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
echo "bench-backup.sh: ${size} MiB 3-layer chain in $work, $runs runs each, medians in seconds"
echo "bench-backup.sh: the engine fsyncs its target; qemu-img convert does not (convert+sync does)"
for f in raw qcow2; do
    ew=$(med "${wall[engine-$f]}"); ec=$(med "${cpu[engine-$f]}")
    qw=$(med "${wall[convert-$f]}"); qc=$(med "${cpu[convert-$f]}")
    sw=$(med "${wall[convert_sync-$f]}")
    printf '%-5s wall: engine %6s  convert %6s  convert+sync %6s   ratio engine/convert %.2f  engine/(convert+sync) %.2f\n' \
        "$f" "$ew" "$qw" "$sw" "$(echo "$ew / $qw" | bc -l)" "$(echo "$ew / $sw" | bc -l)"
    printf '%-5s cpu:  engine %6s  convert %6s                        ratio engine/convert %.2f\n' \
        "$f" "$ec" "$qc" "$(echo "$ec / $qc" | bc -l)"
    printf '      wall runs: engine %s| convert %s| convert+sync %s\n' \
        "${wall[engine-$f]}" "${wall[convert-$f]}" "${wall[convert_sync-$f]}"
done
