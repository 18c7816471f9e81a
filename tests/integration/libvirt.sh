#!/bin/bash
# libvirt.sh: round trips with libvirt's own qemu driver (embedded, as user nobody):
# a store libvirt wrote is shown as virsh shows it, and what snapfs writes libvirt reads.
. "$(dirname "$0")/lib.sh"
command -v virsh > /dev/null && command -v qemu-system-x86_64 > /dev/null ||
    fail "virsh and qemu-system-x86_64 are needed (scripts/deps.sh installs them)"
root=$work/lv
home=$work/home
img=$work/img
mkdir -p "$root" "$home" "$img"
chmod 755 "$work"
V() {   # virsh as nobody on the embedded driver, plain output
    runuser -u nobody -- env HOME="$home" XDG_CACHE_HOME="$home/.cache" \
        XDG_CONFIG_HOME="$home/.config" XDG_RUNTIME_DIR="$home/run" \
        virsh -c "qemu:///embed?root=$root" "$@" 2>>"$work/virsh.err"
}
qemu-img create -q -f qcow2 "$img/base.qcow2" 32M
cat > "$work/dom.xml" <<XML
<domain type='qemu'>
  <name>vm1</name>
  <genid/>
  <memory unit='KiB'>65536</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$img/base.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' passwd='pw1'/>
  </devices>
</domain>
XML
chown -R nobody "$root" "$home" "$img" "$work/dom.xml"
V "define $work/dom.xml; snapshot-create-as vm1 s1 --disk-only --description 'first one';
   snapshot-create-as vm1 s2 --disk-only" > /dev/null || { cat "$work/virsh.err"; fail "virsh setup"; }

# libvirt -> snapfs
store=$root
mount_fs -o "config_dir=$root/etc/qemu,snapshot_dir=$root/lib/qemu/snapshot"
d=$mnt/vm1
V "snapshot-list vm1 --tree" > "$work/tree.virsh"
cmp "$work/tree.virsh" "$d/tree" || { diff <(cat -A "$work/tree.virsh") <(cat -A "$d/tree"); fail tree; }
for s in s1 s2; do
    # virsh prints an empty line after each command's output; -q does not: the
    # file is the XML document itself (virDomainSnapshotGetXMLDesc).
    V -q "snapshot-dumpxml vm1 $s" > "$work/$s.virsh"
    cmp "$work/$s.virsh" "$d/snapshots/$s/snapshot.xml" ||
        { diff "$work/$s.virsh" "$d/snapshots/$s/snapshot.xml"; fail "snapshot.xml of $s"; }
    V -q "snapshot-dumpxml vm1 $s --security-info" > "$work/$s.secure.virsh"
    cmp "$work/$s.secure.virsh" "$d/snapshots/$s/snapshot.secure.xml" || fail "snapshot.secure.xml of $s"
done
sed '1,7d' "$root/etc/qemu/vm1.xml" > "$work/vm1.expected"
cmp "$work/vm1.expected" "$d/domain.secure.xml" || { diff "$work/vm1.expected" "$d/domain.secure.xml"; fail domain.xml; }
check test "$(readlink "$d/current")" = "snapshots/$(V 'snapshot-current vm1 --name' | head -1)"
check test "$(cat "$d/snapshots/s1/description")" = "first one"
check test "$(cat "$d/disks/vda/source")" = "$img/base.s2"
check test "$(cat "$d/disks/vda[2]/source")" = "$img/base.qcow2"
V "dumpxml vm1 --inactive" | grep -q "<genid>$(cat "$d/genid")</genid>" || fail genid

# snapfs -> libvirt
echo s3 > "$d/ctl/create" || fail "create s3: $(cat "$d/ctl/result")"
echo s4 > "$d/ctl/create" || fail "create s4"
sed 's|<name>s1</name>|<name>r1</name>|' "$d/snapshots/s1/snapshot.secure.xml" > "$work/r1.xml"
cat "$work/r1.xml" > "$d/ctl/redefine" || fail "redefine r1: $(cat "$d/ctl/result")"
ln -sfn snapshots/s3 "$d/current"
umount_fs
chown -R nobody "$root" "$img"
V "snapshot-list vm1 --tree" > "$work/tree2.virsh"
printf '%s\n' r1 '' s1 '  |' '  +- s2' '      |' '      +- s3' '          |' '          +- s4' \
    '            ' '' > "$work/tree2.expected"
cmp "$work/tree2.expected" "$work/tree2.virsh" ||
    { diff <(cat -A "$work/tree2.expected") <(cat -A "$work/tree2.virsh"); fail "libvirt's tree"; }
check test "$(V 'snapshot-current vm1 --name' | head -1)" = s3
check test "$(V 'snapshot-parent vm1 s4' | head -1)" = s3
V "snapshot-dumpxml vm1 s4" | grep -q "<source file='$img/base.s4'/>" || fail "s4 overlay in libvirt"
V "dumpxml vm1 --inactive" | grep -q "<source file='$img/base.s4'/>" || fail "domain on s4's overlay"
V "snapshot-dumpxml vm1 s2 --security-info" | grep -q "passwd='pw1'" || fail "password lost"
qemu-img info "$img/base.s4" | grep -q "backing file: $img/base.s3" || fail "overlay chain"
# And libvirt's own changes show up in snapfs.
V "snapshot-delete vm1 r1 --metadata; snapshot-create-as vm1 s5 --disk-only" > /dev/null ||
    { cat "$work/virsh.err"; fail "virsh after snapfs"; }
mount_fs -o "config_dir=$root/etc/qemu,snapshot_dir=$root/lib/qemu/snapshot"
check test ! -e "$d/snapshots/r1"
check test "$(readlink "$d/current")" = snapshots/s5
check test "$(readlink "$d/snapshots/s5/parent")" = ../s3
check test "$(cat "$d/disks/vda/source")" = "$img/base.s5"
umount_fs
echo ok
