# lib.sh: shared setup of the integration tests (sourced). Each test gets its own
# directory, a store made by scripts/mkstore.sh, and a real FUSE mount.
set -eu
[ -r /dev/fuse ] && [ -w /dev/fuse ] || { echo "no usable /dev/fuse"; exit 77; }
: "${FS:?FS must name the snapfs binary}"
: "${SNAPFS_SRCDIR:?}"
: "${SNAPFS_SCHEMA_DIR:=/usr/share/libvirt/schemas}"
FS_WRAPPER=${FS_WRAPPER:-}
if [ "$FS_WRAPPER" = valgrind ]; then
    FS_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
        --suppressions=$SNAPFS_SRCDIR/tests/valgrind.supp --log-file=%q{VGLOG}"
fi
work=$(mktemp -d /tmp/snapfs-test.XXXXXX)
mnt=$work/mnt
store=$work/store
mkdir -p "$mnt"
pid=""
export VGLOG=$work/valgrind.log
export LC_ALL=C

cleanup() {
    set +e
    if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
check() { "$@" || fail "$*"; }

make_store() {
    "$SNAPFS_SRCDIR/scripts/mkstore.sh" "$store" "${1:-16}" >/dev/null
}

# one_disk_domain NAME FORMAT IMAGE N: writes the config of domain NAME whose only disk, vda, is
# IMAGE in FORMAT; N (a number) makes its UUID unique.
one_disk_domain() {
    cat > "$store/qemu/$1.xml" <<EOF
<domain type='kvm'>
  <name>$1</name>
  <uuid>0a0b0c0d-0e0f-4010-8111-$(printf %012d "$4")</uuid>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='$2'/>
      <source file='$3'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
}

# mount_fs [OPTIONS...]: mounts $store on $mnt in the foreground, waits for it.
mount_fs() {
    mount_args "$@" "$store"
}

# mount_args ARGS...: runs snapfs -f ARGS... $mnt (the source among ARGS: a store, or
# -c URI) in the foreground, waits for the mount.
mount_args() {
    G_DEBUG=fatal-criticals $FS_WRAPPER "$FS" -f "$@" "$mnt" 2>>"$work/log" &
    pid=$!
    for _ in $(seq 300); do
        mountpoint -q "$mnt" && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; fail "snapfs exited before mounting"; }
        sleep 0.1
    done
    fail "not mounted within 30 s"
}

# umount_fs: unmounts and checks that the driver exits 0 and logged nothing bad.
umount_fs() {
    fusermount3 -u "$mnt"
    wait "$pid" || fail "snapfs exited with $?"
    pid=""
    if grep -E 'CRITICAL|WARNING|ERROR|==[0-9]+==|runtime error' "$work/log"; then
        fail "suspicious log output"
    fi
    if [ -f "$VGLOG" ] && grep -q 'ERROR SUMMARY: [1-9]' "$VGLOG"; then
        cat "$VGLOG" >&2
        fail "valgrind found errors"
    fi
}

# expect_errno EXPECTED CMD...: runs CMD, requires failure with EXPECTED text.
expect_fail() {
    local want=$1; shift
    local out
    if out=$("$@" 2>&1); then fail "'$*' succeeded, expected $want"; fi
    case "$out" in *"$want"*) ;; *) fail "'$*' said '$out', expected '$want'";; esac
}
