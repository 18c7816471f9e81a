# libvirtd.sh: a private, throw-away libvirt daemon for integration tests (sourced after
# lib.sh). It touches no system service and keeps all its state under one directory:
#
#   lv_start DIR     starts libvirtd 9.0 (QEMU driver) in session mode and waits until it
#                    answers; sets LV_DIR, LV_URI, LV_STORE (mount this), LV_RUN (its status
#                    files), LV_PID. Stopped, its guests destroyed, when the test exits.
#   lv_guest NAME IMAGE...   defines a TCG guest with IMAGE as vda, vdb ... (qcow2); it needs no
#                    OS: started, it sits in its firmware while qemu holds its images.
#   lv CMD...        virsh on the private daemon
#   lv_snapfs_ready, lv_image_dir DIR   what a test of snapfs -c on it needs
#   lv_stop          destroys its running guests and stops it (by its recorded pid)
#
# Session mode: libvirtd runs as root inside a user namespace that maps uid 0 to 65534, so it
# sees a non-root user and uses qemu:///session semantics with HOME and XDG_* under DIR:
#   domains    DIR/config/libvirt/qemu/NAME.xml     snapshots  .../qemu/snapshot/NAME/SNAP.xml
#   status     DIR/run/libvirt/qemu/run/NAME.xml and NAME.pid (while a guest runs)
#   daemon     DIR/run/libvirt/libvirt-sock and DIR/run/libvirt/libvirtd.pid (libvirt's defaults
#              for XDG_RUNTIME_DIR=DIR/run)
# Needs libvirt-daemon-driver-qemu, libvirt-clients, qemu-system-x86 (scripts/deps.sh) and
# unshare from util-linux >= 2.38 (--map-user).
LV_DIR=""
LV_URI=""
LV_PID=""

lv() {
    virsh -q -c "$LV_URI" "$@"
}

# TRUE when $1 is the libvirtd started for $LV_DIR.
lv_pid_ours() {
    [ -n "$1" ] && { tr '\0' ' ' 2> /dev/null < "/proc/$1/cmdline"; } 2> /dev/null |
        grep -qF "libvirtd --config $LV_DIR/libvirtd.conf"
}

lv_start() {
    local dir=$1 i
    command -v libvirtd > /dev/null && command -v virsh > /dev/null &&
        command -v qemu-system-x86_64 > /dev/null ||
        fail "libvirtd, virsh and qemu-system-x86_64 are needed (scripts/deps.sh installs them)"
    [ "$(id -u)" = 0 ] || fail "a private libvirtd needs root (a user namespace maps it)"
    LV_DIR=$(realpath -m -- "$dir")
    mkdir -p "$LV_DIR/home" "$LV_DIR/config/libvirt" "$LV_DIR/run" "$LV_DIR/cache" \
        "$LV_DIR/data" "$LV_DIR/log"
    chmod 700 "$LV_DIR/run"
    # stdio_handler "file": no virtlogd, which libvirtd would spawn and which would outlive it
    echo 'stdio_handler = "file"' > "$LV_DIR/config/libvirt/qemu.conf"
    cat > "$LV_DIR/libvirtd.conf" <<EOF
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$LV_DIR/log/libvirtd.log"
EOF
    LV_URI="qemu+unix:///session?socket=$LV_DIR/run/libvirt/libvirt-sock"
    LV_STORE=$LV_DIR/config/libvirt
    LV_RUN=$LV_DIR/run/libvirt/qemu/run
    # env and unshare exec: the pid of the background job is libvirtd's
    setsid env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        HOME="$LV_DIR/home" XDG_CONFIG_HOME="$LV_DIR/config" XDG_RUNTIME_DIR="$LV_DIR/run" \
        XDG_CACHE_HOME="$LV_DIR/cache" XDG_DATA_HOME="$LV_DIR/data" \
        unshare --user --map-user=65534 --map-group=65534 \
        libvirtd --config "$LV_DIR/libvirtd.conf" < /dev/null > "$LV_DIR/log/stdout.log" 2>&1 &
    LV_PID=$!
    trap 'lv_stop; cleanup' EXIT
    for i in $(seq 300); do
        if ! kill -0 "$LV_PID" 2> /dev/null; then
            tail -n 20 "$LV_DIR/log/stdout.log" "$LV_DIR/log/libvirtd.log" >&2
            LV_PID=""
            fail "libvirtd exited during start-up"
        fi
        lv version > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "libvirtd did not answer within 30 s"
}

# lv_snapfs_ready: a test of snapfs -c on this daemon is skipped when snapfs is built without
# libvirt, and needs qemu-io (it writes the guests' data).
lv_snapfs_ready() {
    "$FS" --help 2>&1 | grep -q -- '--connect' || { echo "built without libvirt"; exit 77; }
    command -v qemu-io > /dev/null || fail "qemu-io is needed (scripts/deps.sh installs qemu-utils)"
}

# lv_image_dir DIR: a directory for the guests' images; the session daemon runs as an
# unprivileged user and makes the overlays there.
lv_image_dir() {
    mkdir -p "$1"
    chmod 777 "$1"
}

# lv_guest NAME IMAGE...: defines a TCG guest (type 'qemu': KVM here is paravirtual) on qcow2
# images, vda first.
lv_guest() {
    local name=$1 dev=a img
    shift
    {
        echo "<domain type='qemu'><name>$name</name><memory unit='KiB'>65536</memory>"
        echo "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
        echo "<emulator>/usr/bin/qemu-system-x86_64</emulator>"
        for img in "$@"; do
            echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            echo "<source file='$img'/><target dev='vd$dev' bus='virtio'/></disk>"
            dev=$(echo "$dev" | tr 'a-y' 'b-z')
        done
        echo "</devices></domain>"
    } > "$LV_DIR/$name.xml"
    lv define "$LV_DIR/$name.xml" > /dev/null || fail "virsh define $name"
}

# Runs from the EXIT trap too, under set -e: no command here may fail.
lv_stop() {
    local dom i qpid
    [ -n "$LV_PID" ] || return 0
    # a test that stopped the daemon (SIGSTOP) and failed before it let it go on
    if lv_pid_ours "$LV_PID"; then kill -CONT "$LV_PID" 2> /dev/null || :; fi
    if lv_pid_ours "$LV_PID"; then
        for dom in $(lv list --name 2> /dev/null); do
            lv destroy "$dom" > /dev/null 2>&1 || :
        done
    fi
    # a guest the daemon could not destroy: its qemu, by the pid libvirt recorded
    for qpid in $(cat "$LV_RUN"/*.pid 2> /dev/null); do
        { tr '\0' ' ' < "/proc/$qpid/cmdline"; } 2> /dev/null | grep -q '^[^ ]*qemu-system' &&
            { kill -KILL "$qpid" 2> /dev/null || :; }
    done
    if lv_pid_ours "$LV_PID"; then
        kill -TERM "$LV_PID" || :
        for i in $(seq 100); do
            lv_pid_ours "$LV_PID" || break
            sleep 0.1
        done
        if lv_pid_ours "$LV_PID"; then kill -KILL "$LV_PID" || :; fi
    fi
    wait "$LV_PID" 2> /dev/null || :
    LV_PID=""
    return 0
}
