#!/bin/bash
# bench.sh: the benchmark suite: snapfs against baselines measured in the same run.
#
#   scripts/bench.sh [--quick] [--sections data,rand,meta,ctl,daemon] [--size-mb N] [--runs N]
#                    [--warm N] [--scales 1000,10000,100000] [--ctl-count N] [--ctl-runs N]
#                    [--reads N] [--daemon-count N]
#                    [--workdir DIR] [--no-deps] [--no-build] [--no-docs] [--report-only]
#
# Builds its own data (qemu-img, qemu-io, scripts/bench-mk*.sh; kept in --workdir between
# runs), installs the comparison tools (scripts/bench-deps.sh), builds the driver in
# build-bench (release), runs each comparison --warm times unrecorded then --runs times
# (the ctl section: --ctl-runs times, no warm-up: each run rebuilds its store),
# prints a table of medians and ratios, and rewrites the generated part of
# docs/performance.md and docs/perf-*.png (--no-docs: only the table). Never a test:
# the numbers are ratios on a shared, noisy machine. --report-only: the table and docs
# again from the last run's WORKDIR/results (same --sections/--scales/--size-mb).
# The daemon section (scripts/bench-daemon.sh) starts a private libvirtd of its own.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
SECTIONS=data,rand,meta,ctl,daemon
SIZE_MB=1024
RUNS=5
WARM=1
SCALES=1000,10000,100000
CTL_COUNT=1000
READS=10000
CTL_RUNS=1
DAEMON_COUNT=1000
LOAD_BEFORE=-
REPORT_ONLY=0
WORK=/var/tmp/snapfs-bench
DEPS=1
BUILD=1
DOCS=1
QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; SIZE_MB=256; RUNS=3; SCALES=1000,10000; CTL_COUNT=200; CTL_RUNS=2; READS=5000 ;;
    --sections) SECTIONS=$2; shift ;;
    --size-mb) SIZE_MB=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --warm) WARM=$2; shift ;;
    --scales) SCALES=$2; shift ;;
    --ctl-count) CTL_COUNT=$2; shift ;;
    --reads) READS=$2; shift ;;
    --ctl-runs) CTL_RUNS=$2; shift ;;
    --daemon-count) DAEMON_COUNT=$2; shift ;;
    --workdir) WORK=$2; shift ;;
    --no-deps) DEPS=0 ;;
    --no-build) BUILD=0 ;;
    --no-docs) DOCS=0 ;;
    --report-only) REPORT_ONLY=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
export LC_ALL=C
has() { case ",$SECTIONS," in *",$1,"*) return 0 ;; esac; return 1; }

[ "$REPORT_ONLY" = 1 ] && { DEPS=0; BUILD=0; }
[ "$DEPS" = 1 ] && { sh "$src/scripts/deps.sh"; sh "$src/scripts/bench-deps.sh"; }
if [ "$BUILD" = 1 ]; then
    [ -d "$src/build-bench" ] || meson setup "$src/build-bench" "$src" -Dbuildtype=release >/dev/null
    ninja -C "$src/build-bench" >/dev/null
fi
SNAPFS=$src/build-bench/fs/snapfs
[ -x "$SNAPFS" ] || { echo "bench.sh: $SNAPFS missing (drop --no-build)" >&2; exit 1; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
res=$WORK/results
[ "$REPORT_ONLY" = 1 ] || rm -rf "$res"
mkdir -p "$res" "$WORK/mnt" "$WORK/nbd"
MNT=$WORK/mnt
NBDMNT=$WORK/nbd
LOG=$WORK/bench.log
[ "$REPORT_ONLY" = 1 ] || : > "$LOG"
SHM=/dev/shm/snapfs-bench.$$
cc -O2 -pthread -o "$WORK/randread" "$src/scripts/bench/randread.c"
# the least FUSE filesystem, for the floor under the warm cat row
cc -O2 -o "$WORK/fusefloor" "$src/scripts/bench-fusefloor.c" $(pkg-config --cflags --libs fuse3)

SNAP_PID=""; NBD_PID=""; NBDFUSE_PID=""; FLOOR_PID=""
FLOORMNT=$WORK/floor
snap_umount() {
    if [ -n "$SNAP_PID" ]; then
        fusermount3 -u "$MNT" 2>/dev/null || true
        wait "$SNAP_PID" 2>/dev/null || true
        SNAP_PID=""
    fi
}
nbd_umount() {
    if [ -n "$NBDFUSE_PID" ]; then
        fusermount3 -u "$NBDMNT" 2>/dev/null || true
        wait "$NBDFUSE_PID" 2>/dev/null || true
        NBDFUSE_PID=""
    fi
    if [ -n "$NBD_PID" ]; then
        kill "$NBD_PID" 2>/dev/null || true
        wait "$NBD_PID" 2>/dev/null || true
        NBD_PID=""
    fi
}
floor_umount() {
    if [ -n "$FLOOR_PID" ]; then
        fusermount3 -u "$FLOORMNT" 2>/dev/null || true
        wait "$FLOOR_PID" 2>/dev/null || true
        FLOOR_PID=""
    fi
}
# floor_mount N SIZE [noopen]: scripts/bench-fusefloor.c with N files of SIZE bytes.
floor_mount() {
    floor_umount
    mkdir -p "$FLOORMNT"
    "$WORK/fusefloor" "$FLOORMNT" "$@" 2>>"$LOG" &
    FLOOR_PID=$!
    local i
    for ((i = 0; i < 10000; i++)); do
        [ -e "$FLOORMNT/s1" ] && return 0
        kill -0 "$FLOOR_PID" 2>/dev/null || break
        sleep 0.001
    done
    echo "bench.sh: fusefloor did not mount" >&2
    exit 1
}
. "$src/scripts/bench-daemon.sh"
cleanup() { set +e; snap_umount; nbd_umount; floor_umount; rm -f "$SHM"; }
trap cleanup EXIT

# snap_mount STORE [OPTION...]: snapfs in the foreground (its pid known), back when
# ctl shows.
snap_mount() {
    snap_umount
    "$SNAPFS" -f "${@:2}" "$1" "$MNT" 2>>"$LOG" &
    SNAP_PID=$!
    local i
    for ((i = 0; i < 20000; i++)); do
        [ -e "$MNT/ctl" ] && return 0
        sleep 0.001
    done
    echo "bench.sh: snapfs did not mount $1" >&2
    exit 1
}
# nbd_mount IMAGE: qemu-nbd (read-only, 8 clients) on a socket, nbdfuse on it.
nbd_mount() {
    nbd_umount
    rm -f "$WORK/nbd.sock"
    qemu-nbd -r -t -e 8 -f qcow2 --socket="$WORK/nbd.sock" "$1" 2>>"$LOG" &
    NBD_PID=$!
    local i
    for ((i = 0; i < 10000; i++)); do [ -S "$WORK/nbd.sock" ] && break; sleep 0.001; done
    nbdfuse -r "$NBDMNT" --unix "$WORK/nbd.sock" 2>>"$LOG" &
    NBDFUSE_PID=$!
    for ((i = 0; i < 10000; i++)); do [ -f "$NBDMNT/nbd" ] && break; sleep 0.001; done
    [ -f "$NBDMNT/nbd" ] || { echo "bench.sh: nbdfuse did not mount" >&2; exit 1; }
}

# ---- measuring -----------------------------------------------------------------
now() { date +%s%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
record() { echo "$1 $2" >> "$res/values"; }   # record KEY VALUE
value() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "nan" : v) }' "$res/values" 2>/dev/null; }
noop() { :; }
# timeit KEY PRE BODY [WARM]: PRE (untimed) then BODY (timed), WARM + RUNS times; the
# median seconds of the last RUNS is recorded as KEY.
timeit() {
    local key=$1 pre=$2 body=$3 warm=${4:-$WARM} i t0 t1
    : > "$res/$key.runs"
    for ((i = 0; i < warm + RUNS; i++)); do
        $pre
        t0=$(now)
        $body
        t1=$(now)
        if ((i >= warm)); then echo "$(((t1 - t0) / 1000))e-6" >> "$res/$key.runs"; fi
    done
    record "$key" "$(median < "$res/$key.runs")"
    printf '  %-34s %10.4f s  (runs: %s)\n' "$key" "$(value "$key")" "$(tr '\n' ' ' < "$res/$key.runs")"
}
say() { printf '\n== %s\n' "$*"; }

# ---- data: copying out a 1 GiB 3-layer chain -------------------------------------
chain=$WORK/chain-$SIZE_MB
TOP=$chain/images/top.qcow2
DATA=$MNT/vm/disks/vda/data
SPARSE_OUT=$SHM.sparse
section_data() {
    say "data: cp of a ${SIZE_MB} MiB 3-layer qcow2 chain (compressed base, zero clusters)"
    [ -f "$chain/.done" ] || { rm -rf "$chain"; "$src/scripts/bench-mkchain.sh" "$chain" "$SIZE_MB" >/dev/null; touch "$chain/.done"; }
    for f in base mid top; do
        qemu-img check "$chain/images/$f.qcow2" 2>/dev/null | sed -n "s/^/  $f: /; /allocated/p"
    done
    cat "$chain"/images/*.qcow2 > /dev/null   # every tool reads the images from the page cache
    record size_bytes "$((SIZE_MB * 1048576))"

    # correctness first: the bytes must be those of qemu-img convert
    qemu-img convert -O raw "$TOP" "$WORK/raw.img"
    snap_mount "$chain"
    cmp "$DATA" "$WORK/raw.img" || { echo "bench.sh: snapfs data differs from qemu-img convert" >&2; exit 1; }
    snap_umount

    pre_snap() { rm -f "$SHM"; snap_mount "$chain"; }
    cp_snap() { cp "$DATA" "$SHM"; }
    timeit data.cp.snapfs pre_snap cp_snap
    # the same without pushing ahead, with the kernel's readahead alone: what pushing gains
    pre_snap_plain() { rm -f "$SHM"; snap_mount "$chain" -o nopush,readahead_kb=0; }
    timeit data.cp.snapfs_nopush pre_snap_plain cp_snap
    pre_conv() { snap_umount; rm -f "$SHM"; }
    conv() { qemu-img convert -O raw "$TOP" "$SHM"; }
    timeit data.convert pre_conv conv
    pre_nbd() { rm -f "$SHM"; nbd_mount "$TOP"; }
    cp_nbd() { cp "$NBDMNT/nbd" "$SHM"; }
    timeit data.cp.nbdfuse pre_nbd cp_nbd
    nbd_umount

    # re-reading an unchanged file: the kernel page cache, against cat of a cached local file
    snap_mount "$chain"
    cat "$DATA" > /dev/null
    cat_snap() { cat "$DATA" > /dev/null; }
    timeit data.reread.snapfs noop cat_snap
    cat "$WORK/raw.img" > /dev/null
    cat_native() { cat "$WORK/raw.img" > /dev/null; }
    timeit data.reread.native noop cat_native

    # sparse copies: time and what they allocate; SEEK_DATA extents seen
    pre_sparse() { rm -f "$SPARSE_OUT"; snap_mount "$chain"; }
    sparse_snap() { cp --sparse=always "$DATA" "$SPARSE_OUT"; }
    timeit data.sparse.snapfs pre_sparse sparse_snap
    record data.sparse.snapfs.alloc_mib "$(($(stat -c %b "$SPARSE_OUT") * 512 / 1048576))"
    read -r _ ext bytes _ < <("$WORK/randread" --seekmap "$DATA")
    record data.seek.snapfs.extents "$ext"
    record data.seek.snapfs.data_mib "$((bytes / 1048576))"
    snap_umount
    pre_sparse_nbd() { rm -f "$SPARSE_OUT"; nbd_mount "$TOP"; }
    sparse_nbd() { cp --sparse=always "$NBDMNT/nbd" "$SPARSE_OUT"; }
    timeit data.sparse.nbdfuse pre_sparse_nbd sparse_nbd
    record data.sparse.nbdfuse.alloc_mib "$(($(stat -c %b "$SPARSE_OUT") * 512 / 1048576))"
    nbd_umount
    record data.convert.alloc_mib "$(($(stat -c %b "$WORK/raw.img") * 512 / 1048576))"
    read -r _ ext bytes _ < <("$WORK/randread" --seekmap "$WORK/raw.img")
    record data.seek.raw.extents "$ext"
    rm -f "$SHM" "$SPARSE_OUT"
}

# ---- rand: 8 readers of random 4 KiB blocks ---------------------------------------
section_rand() {
    say "rand: 8 threads x $READS random 4 KiB preads of data (POSIX_FADV_RANDOM, seed 42, fresh mount each run)"
    [ -f "$chain/.done" ] || { rm -rf "$chain"; "$src/scripts/bench-mkchain.sh" "$chain" "$SIZE_MB" >/dev/null; touch "$chain/.done"; }
    pre_snap_r() { snap_mount "$chain"; }
    rr_snap() { "$WORK/randread" "$DATA" 8 "$READS" 42 >> "$res/rand.snapfs.out"; }
    timeit rand.snapfs pre_snap_r rr_snap
    snap_umount
    pre_nbd_r() { nbd_mount "$TOP"; }
    rr_nbd() { "$WORK/randread" "$NBDMNT/nbd" 8 "$READS" 42 >> "$res/rand.nbdfuse.out"; }
    timeit rand.nbdfuse pre_nbd_r rr_nbd
    nbd_umount
    record rand.snapfs.iops "$(awk '{ print $4 }' "$res/rand.snapfs.out" | tail -n "$RUNS" | median)"
    record rand.nbdfuse.iops "$(awk '{ print $4 }' "$res/rand.nbdfuse.out" | tail -n "$RUNS" | median)"
    echo "  IOPS: snapfs $(value rand.snapfs.iops), nbdfuse $(value rand.nbdfuse.iops)"
}

# ---- meta: stores of 1,000 / 10,000 / 100,000 snapshots ---------------------------
store_of() {   # store_of N: 1 domain of N up to 10,000; N/1000 domains of 1,000 above
    local n=$1 dir=$WORK/meta-$1
    if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir"
        if ((n <= 10000)); then
            "$src/scripts/bench-mkmeta.sh" store "$dir" 1 "$n"
        else
            "$src/scripts/bench-mkmeta.sh" store "$dir" "$((n / 1000))" 1000
        fi
        touch "$dir/.done"
    fi
    echo "$dir"
}
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SNAP_PID/status"; }
section_meta() {
    local n store per one
    IFS=, read -r -a scales <<< "$SCALES"
    for n in "${scales[@]}"; do
        say "meta: store of $n snapshots"
        store=$(store_of "$n")
        per=$n; ((n > 10000)) && per=1000
        one=$MNT/d000/snapshots/s$((per / 2 + 1))
        # first ls after mounting: from starting snapfs to `ls` done; then the first
        # `ls -l` of one domain's snapshots
        : > "$res/meta.$n.firstls.runs"; : > "$res/meta.$n.firstdom.runs"
        local i t0 t1 t2
        for ((i = 0; i < WARM + RUNS; i++)); do
            snap_umount
            t0=$(now)
            snap_mount "$store"
            ls "$MNT" > /dev/null
            t1=$(now)
            ls -l "$MNT/d000/snapshots" > /dev/null
            t2=$(now)
            if ((i >= WARM)); then
                echo "$(((t1 - t0) / 1000))e-6" >> "$res/meta.$n.firstls.runs"
                echo "$(((t2 - t0) / 1000))e-6" >> "$res/meta.$n.firstdom.runs"
            fi
        done
        record "meta.$n.firstls" "$(median < "$res/meta.$n.firstls.runs")"
        record "meta.$n.firstdom" "$(median < "$res/meta.$n.firstdom.runs")"
        record "meta.$n.rss_first_mib" "$(rss_mib)"
        echo "  first ls $(value "meta.$n.firstls") s, first ls -l of a domain $(value "meta.$n.firstdom") s, RSS $(value "meta.$n.rss_first_mib") MiB"

        pre_m() { snap_mount "$store"; }
        stat_one() { stat "$one" > /dev/null; }
        timeit "meta.$n.stat_cold" pre_m stat_one 0
        stat_warm() { stat "$one" > /dev/null; }
        timeit "meta.$n.stat_warm" noop stat_warm
        cat_one() { cat "$one/snapshot.xml" > /dev/null; }
        timeit "meta.$n.cat_cold" pre_m cat_one 0
        # listing every snapshot directory of the store: once cold (a fresh mount;
        # the store's files read first, so that the row measures snapfs, not the
        # disk: this VM pages out page cache that was cold for 60 s), then warm
        find "$store" -type f -exec cat {} + > /dev/null
        snap_mount "$store"
        t0=$(now); ls -l "$MNT"/*/snapshots > /dev/null; t1=$(now)
        record "meta.$n.list_cold" "$(((t1 - t0) / 1000))e-6"
        record "meta.$n.rss_listed_mib" "$(rss_mib)"
        list_all() { ls -l "$MNT"/*/snapshots > /dev/null; }
        timeit "meta.$n.list_warm" noop list_all 0
        echo "  cold listing of all $n: $(value "meta.$n.list_cold") s, RSS after it $(value "meta.$n.rss_listed_mib") MiB"
        snap_umount
    done
    # the 10,000-snapshot domain against a plain tree of the same shape on local disk
    local big=0
    for n in "${scales[@]}"; do ((n <= 10000 && n > big)) && big=$n; done
    ((big > 0)) || return 0
    say "meta: one domain of $big snapshots against a plain directory tree"
    store=$(store_of "$big")
    plain=$WORK/plain-$big
    if [ ! -f "$plain.done" ]; then
        rm -rf "$plain"; mkdir -p "$plain"
        snap_mount "$store"
        cp -a "$MNT/d000" "$plain/" 2>/dev/null || true   # ctl/* are write-only
        for f in "$MNT"/d000/ctl/*; do [ -e "$plain/d000/ctl/${f##*/}" ] || touch "$plain/d000/ctl/${f##*/}"; done
        snap_umount
        touch "$plain.done"
    fi
    record meta.plain.entries "$(find "$plain/d000" | wc -l)"
    pre_dom() { snap_mount "$store"; }
    lsR_snap() { ls -lR "$MNT/d000" > /dev/null; }
    lsR_plain() { ls -lR "$plain/d000" > /dev/null; }
    find_snap() { find "$MNT/d000" > /dev/null; }
    find_plain() { find "$plain/d000" > /dev/null; }
    catall_snap() { cat "$MNT"/d000/snapshots/*/snapshot.xml > /dev/null; }
    catall_plain() { cat "$plain"/d000/snapshots/*/snapshot.xml > /dev/null; }
    # first after mounting, and the plain tree first after dropping the kernel's
    # caches (root only; else the cold rows compare with the warm plain tree): at
    # most 3 runs (each can take tens of seconds at 10,000)
    local RUNS_ALL=$RUNS cold=0
    drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
    drop_caches 2>/dev/null && cold=1
    pre_dom_cold() { snap_umount; ((cold == 0)) || drop_caches; snap_mount "$store"; }
    pre_plain_cold() { ((cold == 0)) || drop_caches; }
    RUNS=$((RUNS < 3 ? RUNS : 3))
    timeit meta.lsR.snapfs_cold pre_dom_cold lsR_snap 0
    timeit meta.find.snapfs_cold pre_dom_cold find_snap 0
    timeit meta.catall.snapfs_cold pre_dom_cold catall_snap 0
    snap_umount
    if ((cold)); then
        timeit meta.lsR.plain_cold pre_plain_cold lsR_plain 0
        timeit meta.find.plain_cold pre_plain_cold find_plain 0
        timeit meta.catall.plain_cold pre_plain_cold catall_plain 0
    fi
    RUNS=$RUNS_ALL
    snap_mount "$store"
    timeit meta.lsR.snapfs noop lsR_snap
    timeit meta.lsR.plain noop lsR_plain
    timeit meta.find.snapfs noop find_snap
    timeit meta.find.plain noop find_plain
    timeit meta.catall.snapfs noop catall_snap
    timeit meta.catall.plain noop catall_plain
    record meta.big "$big"
    snap_umount
    # The floor under the warm cat: the least FUSE filesystem with the same number
    # of files of the same size, answering OPEN (keep_cache, noflush), then not
    # (no_open for the whole mount, which snapfs's control files rule out).
    local xml_size
    xml_size=$(stat -c %s "$plain/d000/snapshots/s1/snapshot.xml")
    catall_floor() { cat "$FLOORMNT"/*/snapshot.xml > /dev/null; }
    floor_mount "$big" "$xml_size"
    timeit meta.catall.floor noop catall_floor
    floor_mount "$big" "$xml_size" noopen
    timeit meta.catall.floor_noopen noop catall_floor
    floor_umount
}

# ---- ctl: redefining and creating 1,000 snapshots ---------------------------------
section_ctl() {
    local n=$CTL_COUNT docs=$WORK/docs-$CTL_COUNT RUNS=$CTL_RUNS WARM=0
    say "ctl: redefine $n snapshots (cat > ctl/redefine loop vs one virsh -c test:///default)"
    [ -f "$docs/.done" ] || { rm -rf "$docs"; "$src/scripts/bench-mkmeta.sh" docs "$docs" "$n"; touch "$docs/.done"; }
    local st=$WORK/redefine-store
    pre_redef() { snap_umount; rm -rf "$st"; mkdir -p "$st/qemu/snapshot"; cp "$docs/store/qemu/test.xml" "$st/qemu/"; snap_mount "$st"; }
    redef_snap() {
        local k
        for ((k = 1; k <= n; k++)); do cat "$docs/s$k.xml" > "$MNT/test/ctl/redefine"; done
    }
    timeit ctl.redefine.snapfs pre_redef redef_snap
    # the floor of any such loop: the same cat processes writing to /dev/null
    redef_floor() {
        local k
        for ((k = 1; k <= n; k++)); do cat "$docs/s$k.xml" > /dev/null; done
    }
    timeit ctl.redefine.floor noop redef_floor
    [ "$(($(wc -l < "$MNT/test/snapshots.tsv")))" -ge "$n" ] || { echo "bench.sh: redefine lost snapshots" >&2; exit 1; }
    snap_umount
    local cmd="" k
    for ((k = 1; k <= n; k++)); do cmd+="snapshot-create test --redefine $docs/s$k.xml;"; done
    redef_virsh() { virsh -c test:///default "$cmd" > "$res/virsh.out"; }
    timeit ctl.redefine.virsh noop redef_virsh
    [ "$(grep -c created "$res/virsh.out")" -eq "$n" ] || { echo "bench.sh: virsh redefined $(grep -c created "$res/virsh.out") of $n" >&2; exit 1; }

    local doms=10 per=$((n / 10))
    say "ctl: create $n external snapshots ($doms domains x $per: echo NAME > ctl/create vs qemu-img create + metadata files)"
    local cs=$WORK/create-store
    mkstore_create() {
        snap_umount
        rm -rf "$cs"; mkdir -p "$cs/images" "$cs/qemu/snapshot"
        local d
        for ((d = 0; d < doms; d++)); do
            qemu-img create -q -f qcow2 "$cs/images/c$d.qcow2" 64M
            cat > "$cs/qemu/c$d.xml" <<EOF
<domain type='kvm'>
  <name>c$d</name>
  <uuid>0b6c3e1a-3f7d-4d2a-9c61-5a0e7b2d9f$((10 + d))</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$cs/images/c$d.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
        done
    }
    pre_create() { mkstore_create; snap_mount "$cs"; }
    create_snap() {
        local d k
        for ((d = 0; d < doms; d++)); do
            for ((k = 1; k <= per; k++)); do echo "s$k" > "$MNT/c$d/ctl/create"; done
        done
    }
    timeit ctl.create.snapfs pre_create create_snap
    [ -e "$cs/images/c$((doms - 1)).s$per" ] || { echo "bench.sh: create made no overlay" >&2; exit 1; }
    snap_umount
    create_plain() {
        local d k prev new f
        for ((d = 0; d < doms; d++)); do
            prev=$cs/images/c$d.qcow2
            mkdir -p "$cs/qemu/snapshot/c$d"
            for ((k = 1; k <= per; k++)); do
                new=$cs/images/c$d.s$k
                qemu-img create -q -f qcow2 -o "backing_fmt=qcow2,backing_file=$prev" "$new"
                f=$cs/qemu/snapshot/c$d/s$k.xml
                cat > "$f" <<EOF
<domainsnapshot>
  <name>s$k</name>
  <state>shutoff</state>
  <creationTime>$((1700000000 + k))</creationTime>
  <memory snapshot='no'/>
  <disks>
    <disk name='vda' snapshot='external' type='file'>
      <driver type='qcow2'/>
      <source file='$new'/>
    </disk>
  </disks>
  <domain type='kvm'>
    <name>c$d</name>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='$prev'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
  </domain>
  <active>1</active>
</domainsnapshot>
EOF
                sed -i "s|<source file='$prev'/>|<source file='$new'/>|" "$cs/qemu/c$d.xml"
                prev=$new
            done
        done
    }
    timeit ctl.create.qemuimg mkstore_create create_plain
    rm -rf "$cs" "$st"
}

machine() {
    echo "- nproc: $(nproc); RAM: $(free -m | awk '/^Mem:/ { print $2 }') MiB; kernel: $(uname -r)"
    echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "- $("$SNAPFS" --version 2>&1 | grep -m1 '^snapfs'); $(qemu-img --version | head -1); $(nbdfuse --version 2>&1 | head -1); virsh $(virsh --version); libfuse $(pkg-config --modversion fuse3 2>/dev/null); $(gnuplot --version)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); options: sections=$SECTIONS size=${SIZE_MB}MiB runs=$RUNS warm=$WARM scales=$SCALES ctl=$CTL_COUNT reads=$READS daemon=$DAEMON_COUNT; load before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

if [ "$REPORT_ONLY" = 0 ]; then
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    t_start=$(now)
    has data && section_data
    has rand && section_rand
    has meta && section_meta
    has ctl && section_ctl
    has daemon && section_daemon
    t_end=$(now)
    record total_s "$(((t_end - t_start) / 1000000000))"
    machine | tee "$res/machine.md"
fi
[ -f "$res/machine.md" ] || machine > "$res/machine.md"

# ---- the table ---------------------------------------------------------------------
# row LABEL SNAPKEY BASEKEY BASELABEL TARGET [iops]: speedup = base/snap time (or snap/base IOPS)
table() {
    local mb=$SIZE_MB
    echo "| measure | snapfs | baseline | baseline value | speedup (higher is better) | target | met |"
    echo "|---|---|---|---|---|---|---|"
    row() {
        local label=$1 sk=$2 bk=$3 bl=$4 target=$5 kind=${6:-time} s b r met fmt
        s=$(value "$sk"); b=$(value "$bk")
        [ "$s" = nan ] && return 0
        if [ "$kind" = iops ]; then
            r=$(awk -v s="$s" -v b="$b" 'BEGIN { if (b == "nan" || b == 0) print "nan"; else printf "%.2f", s / b }')
            fmt() { printf '%.0f IOPS' "$1"; }
        else
            r=$(awk -v s="$s" -v b="$b" 'BEGIN { if (b == "nan" || s == 0) print "nan"; else printf "%.2f", b / s }')
            if [ "$kind" = mbs ]; then fmt() { awk -v t="$1" -v m="$mb" 'BEGIN { printf "%.3f s (%.0f MiB/s)", t, m / t }'; }
            else fmt() { awk -v t="$1" 'BEGIN { if (t < 0.1) printf "%.2f ms", t * 1000; else printf "%.3f s", t }'; }; fi
        fi
        met=$(awk -v r="$r" -v t="$target" 'BEGIN { if (t == "" || r == "nan") print "-"; else print (r + 0 >= t + 0 ? "yes" : "no") }')
        echo "| $label | $(fmt "$s") | $bl | $([ "$b" = nan ] && echo - || fmt "$b") | ${r}x | $([ -n "$target" ] && echo "≥ ${target}x") | $met |"
    }
    row "cp data (${mb} MiB chain) → /dev/shm" data.cp.snapfs data.convert "qemu-img convert -O raw" 1 mbs
    row "cp data → /dev/shm" data.cp.snapfs data.cp.nbdfuse "cp from nbdfuse + qemu-nbd" 2 mbs
    row "re-read data (page cache)" data.reread.snapfs data.reread.native "cat of a cached local file" 0.8 mbs
    row "cp --sparse=always data" data.sparse.snapfs data.sparse.nbdfuse "cp --sparse=always from nbdfuse" "" mbs
    row "8 x random 4 KiB reads" rand.snapfs.iops rand.nbdfuse.iops "nbdfuse + qemu-nbd" 1 iops
    row "ls -lR of a $(value meta.big)-snapshot domain (warm)" meta.lsR.snapfs meta.lsR.plain "plain tree on local disk" 0.5
    row "cp data, no pushing, kernel readahead" data.cp.snapfs_nopush data.convert "qemu-img convert -O raw" "" mbs
    local coldkey=meta.lsR.plain_cold coldlabel="plain tree, caches dropped"
    [ "$(value meta.lsR.plain_cold)" != nan ] || { coldkey=meta.lsR.plain; coldlabel="plain tree (warm)"; }
    row "ls -lR, first after mount (caches dropped)" meta.lsR.snapfs_cold "$coldkey" "$coldlabel" 0.5
    row "find of that domain (warm)" meta.find.snapfs meta.find.plain "plain tree" 0.5
    row "find, first after mount (caches dropped)" meta.find.snapfs_cold "${coldkey/lsR/find}" "$coldlabel" 0.5
    row "cat every snapshot.xml (warm)" meta.catall.snapfs meta.catall.plain "plain files" 0.33
    row "the same cat of the least FUSE fs that answers OPEN (its floor)" meta.catall.floor meta.catall.plain "plain files" ""
    row "the same cat of the least FUSE fs, no OPEN at all (no_open)" meta.catall.floor_noopen meta.catall.plain "plain files" ""
    row "cat every snapshot.xml, first after mount (caches dropped)" meta.catall.snapfs_cold "${coldkey/lsR/catall}" "${coldlabel/tree/files}" 0.33
    row "redefine $CTL_COUNT (cat > ctl/redefine loop)" ctl.redefine.snapfs ctl.redefine.virsh "one virsh -c test:///default" 1
    row "the same loop writing to /dev/null (its floor)" ctl.redefine.floor ctl.redefine.virsh "one virsh -c test:///default" ""
    row "create $CTL_COUNT external (echo > ctl/create)" ctl.create.snapfs ctl.create.qemuimg "qemu-img create + metadata loop" 1
    row "-c: ls -lR of a $DAEMON_COUNT-snapshot domain (warm)" daemon.lsR.c daemon.lsR.files "the files backend, same store" 0.5
    row "-c: cat every snapshot.xml (warm)" daemon.catall.c daemon.catall.files "the files backend, same store" 0.5
    row "-c: mount + first ls -lR of that domain" daemon.first.c daemon.first.virsh "one virsh: snapshot-list --tree + a snapshot-dumpxml each" 1
    row "-c: mount + first ls -lR + cat every snapshot.xml" daemon.firstcat.c daemon.first.virsh "the same virsh" 1
    row "-c: mount + cat every snapshot.xml (virsh's documents)" daemon.firstdocs.c daemon.first.virsh "the same virsh" 1
    row "-c: disk-only create on a running TCG guest" daemon.create.c daemon.create.virsh "virsh snapshot-create-as --disk-only --atomic" 0.67
    echo
    if has data; then
        echo "Allocated after cp --sparse=always: snapfs $(value data.sparse.snapfs.alloc_mib) MiB, nbdfuse $(value data.sparse.nbdfuse.alloc_mib) MiB, qemu-img convert output $(value data.convert.alloc_mib) MiB. SEEK_DATA extents in data: $(value data.seek.snapfs.extents) ($(value data.seek.snapfs.data_mib) MiB of data; the converted raw file has $(value data.seek.raw.extents))."
        echo
    fi
    if has meta; then
        echo "| snapshots in store | first ls after start | first ls -l of a domain | stat one (cold) | stat one (warm) | cat one snapshot.xml (cold) | ls -l of every snapshot dir (fresh mount) | (warm) | RSS after first ls | RSS after listing all |"
        echo "|---|---|---|---|---|---|---|---|---|---|"
        local n
        IFS=, read -r -a scales <<< "$SCALES"
        for n in "${scales[@]}"; do
            awk -v n="$n" -v a="$(value "meta.$n.firstls")" -v b="$(value "meta.$n.firstdom")" -v c="$(value "meta.$n.stat_cold")" \
                -v w="$(value "meta.$n.stat_warm")" -v d="$(value "meta.$n.cat_cold")" -v e="$(value "meta.$n.list_cold")" \
                -v f="$(value "meta.$n.list_warm")" -v r1="$(value "meta.$n.rss_first_mib")" -v r2="$(value "meta.$n.rss_listed_mib")" \
                'BEGIN { printf "| %d | %.1f ms | %.1f ms | %.2f ms | %.2f ms | %.2f ms | %.3f s | %.3f s | %s MiB | %s MiB |\n", n, a*1000, b*1000, c*1000, w*1000, d*1000, e, f, r1, r2 }'
        done
        echo
        echo "Targets: first ls of the 100,000 store < 2 s; RSS < 200 MiB; stat and cat of one flat; listing linear. (The one-snapshot times include starting stat/cat, about 1 ms.)"
    fi
}
echo
echo "== results (medians of $RUNS runs after $WARM warm-up; total $(value total_s) s)"
table | tee "$res/table.md"

# ---- docs and plots ---------------------------------------------------------------
if [ "$DOCS" = 1 ] && command -v gnuplot > /dev/null; then
    doc=$src/docs/performance.md
    if has data; then
        {
            echo "\"cp snapfs\" $(value data.cp.snapfs)"
            echo "\"qemu-img convert\" $(value data.convert)"
            echo "\"cp nbdfuse\" $(value data.cp.nbdfuse)"
            echo "\"re-read snapfs\" $(value data.reread.snapfs)"
            echo "\"cat local (cached)\" $(value data.reread.native)"
            echo "\"sparse cp snapfs\" $(value data.sparse.snapfs)"
            echo "\"sparse cp nbdfuse\" $(value data.sparse.nbdfuse)"
        } | awk -v m="$SIZE_MB" '{ t = $NF; $NF = ""; if (t != "nan") printf "%s %.1f\n", $0, m / t }' > "$res/throughput.dat"
        gnuplot <<EOF
set terminal pngcairo size 900,480 font ",10"
set output "$src/docs/perf-throughput.png"
set title "Reading a ${SIZE_MB} MiB 3-layer qcow2 chain (MiB/s, higher is better)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -25
set ylabel "MiB/s"
set grid ytics
set yrange [0:*]
unset key
plot "$res/throughput.dat" using 2:xtic(1) lc rgb "#3070b0", '' using 0:2:(sprintf("%.0f",\$2)) with labels offset 0,0.7
EOF
    fi
    if has meta; then
        IFS=, read -r -a scales <<< "$SCALES"
        for n in "${scales[@]}"; do
            echo "$n $(value "meta.$n.firstls") $(value "meta.$n.firstdom") $(value "meta.$n.stat_cold") $(value "meta.$n.cat_cold") $(value "meta.$n.list_cold") $(value "meta.$n.list_warm") $(value "meta.$n.rss_listed_mib")"
        done > "$res/scale.dat"
        gnuplot <<EOF
set terminal pngcairo size 900,520 font ",10"
set output "$src/docs/perf-scale.png"
set title "Cost against store size (log-log; seconds, lower is better)"
set logscale xy
set xlabel "snapshots in the store"
set ylabel "seconds"
set y2label "daemon RSS after listing all (MiB)"
set y2tics
set logscale y2
set grid
set key top left
plot "$res/scale.dat" using 1:6 with linespoints title "ls -l of every snapshot dir (fresh mount)", \
     '' using 1:7 with linespoints title "the same, warm", \
     '' using 1:2 with linespoints title "first ls after start", \
     '' using 1:3 with linespoints title "first ls -l of one domain", \
     '' using 1:4 with linespoints title "stat one snapshot (cold)", \
     '' using 1:5 with linespoints title "cat one snapshot.xml (cold)", \
     '' using 1:8 axes x1y2 with linespoints dt 2 title "RSS (right axis)"
EOF
    fi
    {
        echo "<!-- bench:begin (generated by scripts/bench.sh; edit outside these markers) -->"
        echo "### Machine"
        echo
        cat "$res/machine.md"
        echo
        echo "### Results"
        echo
        cat "$res/table.md"
        echo
        has data && echo '![throughput](perf-throughput.png)'
        has meta && echo '![cost against store size](perf-scale.png)'
        echo "<!-- bench:end -->"
    } > "$res/generated.md"
    if [ -f "$doc" ] && grep -q 'bench:begin' "$doc"; then
        awk -v gen="$res/generated.md" '
            /bench:begin/ { while ((getline l < gen) > 0) print l; skip = 1; next }
            /bench:end/ { skip = 0; next }
            !skip { print }' "$doc" > "$doc.new" && mv "$doc.new" "$doc"
    else
        { echo "# Performance"; echo; cat "$res/generated.md"; } > "$doc"
    fi
    echo "wrote $doc"
fi
