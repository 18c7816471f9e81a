# bench-daemon.sh: the `daemon` section of scripts/bench.sh (sourced by it: it uses its
# snap_mount, timeit, record and say): snapfs -c URI on a private libvirtd against the files
# backend on the same store and against virsh.
#
# The daemon is its own: libvirtd 9.0 in session mode in a user namespace, started and
# stopped by tests/integration/libvirtd.sh, its state and socket under WORK/lvd, stopped
# (its guests destroyed) when the section ends or bench.sh exits. It holds:
#   big   a shut-off domain with DAEMON_COUNT snapshots (scripts/bench-mkmeta.sh snapshots,
#         written before the daemon starts, which loads them as its own)
#   run   a running TCG guest (no OS: it sits in its firmware) for disk-only creates
# Needs root (the user namespace), libvirtd, virsh, qemu-system-x86_64, and snapfs built
# with libvirt; without them the section says why and records nothing.

. "$src/tests/integration/libvirtd.sh"
# what libvirtd.sh calls on a failure (the tests' lib.sh has its own)
fail() { echo "bench.sh: $*" >&2; exit 1; }

section_daemon() {
    local n=$DAEMON_COUNT img store k i t0 t1 t2
    say "daemon: snapfs -c on a private libvirtd: a domain of $n snapshots, creates on a running TCG guest"
    if [ "$(id -u)" != 0 ] || ! command -v libvirtd > /dev/null ||
        ! command -v qemu-system-x86_64 > /dev/null || ! "$SNAPFS" --help 2>&1 | grep -q -- --connect; then
        echo "  skipped: needs root, libvirtd, qemu-system-x86_64 and snapfs built with libvirt"
        return 0
    fi
    local dir=$WORK/lvd
    lv_stop
    rm -rf "$dir"
    img=$dir/img
    mkdir -p "$img"
    chmod 777 "$img"   # the session daemon runs as an unprivileged user: it makes the overlays
    qemu-img create -q -f qcow2 "$img/big.qcow2" 16M
    qemu-img create -q -f qcow2 "$img/run.qcow2" 16M
    chmod 666 "$img"/*.qcow2

    # big's snapshots are written while the daemon is stopped, around its own definition
    lv_start "$dir"
    store=$LV_STORE
    lv_guest big "$img/big.qcow2"
    lv dumpxml --inactive big > "$dir/big.inactive.xml"
    lv_stop
    "$src/scripts/bench-mkmeta.sh" snapshots "$store/qemu/snapshot/big" "$n" "$dir/big.inactive.xml"
    lv_start "$dir"
    [ "$(lv snapshot-list big --name | grep -c .)" -eq "$n" ] ||
        fail "libvirtd loaded $(lv snapshot-list big --name | grep -c .) of $n snapshots"
    lv_guest run "$img/run.qcow2"
    lv start run > /dev/null

    local B=$MNT/big
    lsR() { ls -lR "$B" > /dev/null; }
    catall() { cat "$B"/snapshots/*/snapshot.xml > /dev/null; }
    # correctness first: the same snapshots and documents through both backends
    snap_mount "$LV_URI" -c
    [ "$(ls "$B/snapshots" | wc -l)" -eq "$n" ] || { echo "bench.sh: snapfs -c lists $(ls "$B/snapshots" | wc -l) of $n" >&2; exit 1; }
    cat "$B/snapshots/s$n/snapshot.xml" > "$res/daemon.snap.c"
    snap_mount "$store"
    cmp -s "$B/snapshots/s$n/snapshot.xml" "$res/daemon.snap.c" ||
        echo "  note: s$n/snapshot.xml differs between the backends (libvirt's formatting against the file's)"

    # 1. warm: the files backend, then -c, on the same store
    lsR; catall
    timeit daemon.lsR.files noop lsR
    timeit daemon.catall.files noop catall
    record daemon.rss.files_mib "$(rss_mib)"
    snap_mount "$LV_URI" -c
    lsR; catall
    timeit daemon.lsR.c noop lsR
    timeit daemon.catall.c noop catall
    record daemon.rss.c_mib "$(rss_mib)"

    # 2. the first listing after mounting against one virsh (the tree, then every snapshot's
    # XML): from starting snapfs to ls -lR done, then the cat of every snapshot.xml too; and
    # the cat alone, the same documents as virsh prints (each names its parent)
    : > "$res/daemon.first.c.runs"; : > "$res/daemon.firstcat.c.runs"
    for ((i = 0; i < WARM + RUNS; i++)); do
        snap_umount
        t0=$(now)
        snap_mount "$LV_URI" -c
        lsR
        t1=$(now)
        catall
        t2=$(now)
        if ((i >= WARM)); then
            echo "$(((t1 - t0) / 1000))e-6" >> "$res/daemon.first.c.runs"
            echo "$(((t2 - t0) / 1000))e-6" >> "$res/daemon.firstcat.c.runs"
        fi
    done
    record daemon.rss.first_mib "$(rss_mib)"
    pre_c() { snap_umount; }
    mount_cat() { snap_mount "$LV_URI" -c; catall; }
    timeit daemon.firstdocs.c pre_c mount_cat
    snap_umount
    for k in first.c firstcat.c; do
        record "daemon.$k" "$(median < "$res/daemon.$k.runs")"
        printf '  %-34s %10.4f s  (runs: %s)\n' "daemon.$k" "$(value "daemon.$k")" "$(tr '\n' ' ' < "$res/daemon.$k.runs")"
    done
    local cmd="snapshot-list big --tree;"
    for ((k = 1; k <= n; k++)); do cmd+="snapshot-dumpxml big s$k;"; done
    tree_virsh() { virsh -q -c "$LV_URI" "$cmd" > "$res/daemon.virsh.out"; }
    timeit daemon.first.virsh noop tree_virsh
    [ "$(grep -c '^<domainsnapshot>' "$res/daemon.virsh.out")" -eq "$n" ] ||
        { echo "bench.sh: virsh printed $(grep -c '^<domainsnapshot>' "$res/daemon.virsh.out") of $n documents" >&2; exit 1; }

    # 3. a disk-only create on the running guest: the mount and virsh take turns, so that
    # both see chains of the same depth
    snap_mount "$LV_URI" -c
    : > "$res/daemon.create.c.runs"; : > "$res/daemon.create.virsh.runs"
    for ((i = 0; i < WARM + RUNS; i++)); do
        t0=$(now)
        echo "c$i" > "$MNT/run/ctl/create"
        t1=$(now)
        ((i >= WARM)) && echo "$(((t1 - t0) / 1000))e-6" >> "$res/daemon.create.c.runs"
        t0=$(now)
        lv snapshot-create-as run "v$i" --disk-only --atomic > /dev/null
        t1=$(now)
        ((i >= WARM)) && echo "$(((t1 - t0) / 1000))e-6" >> "$res/daemon.create.virsh.runs"
    done
    [ "$(lv snapshot-list run --name | grep -c .)" -eq $((2 * (WARM + RUNS))) ] ||
        { echo "bench.sh: the creates made $(lv snapshot-list run --name | grep -c .) snapshots" >&2; exit 1; }
    lv domblklist run | grep -q "run.v$((WARM + RUNS - 1))" || { echo "bench.sh: qemu does not write the last overlay" >&2; exit 1; }
    for k in create.c create.virsh; do
        record "daemon.$k" "$(median < "$res/daemon.$k.runs")"
        printf '  %-34s %10.4f s  (runs: %s)\n' "daemon.$k" "$(value "daemon.$k")" "$(tr '\n' ' ' < "$res/daemon.$k.runs")"
    done
    snap_umount
    echo "  RSS of snapfs after the warm rows: files $(value daemon.rss.files_mib) MiB, -c $(value daemon.rss.c_mib) MiB; after the first listing and cat, -c $(value daemon.rss.first_mib) MiB"
    lv_stop
}
