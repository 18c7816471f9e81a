#!/bin/sh
# Regenerates tests/data/store/tree-*.txt from real virsh (test:///default driver).
# tree-NAME.txt: what `virsh -q snapshot-list test --tree [ARGS]` printed (trailing
# spaces kept; -q drops the newline virsh's command loop adds after every command).
# tree-NAME.parents: "NAME PARENT" per snapshot ("-" for a root) from --parent.
# tree-NAME.args: the extra snapshot-list arguments (--from X [--descendants]).
set -e
out=${1:-.}
gen() {
    name=$1 setup=$2 args=$3
    virsh -q -c test:///default "$setup ; snapshot-list test --tree $args" >"$out/tree-$name.txt"
    virsh -q -c test:///default "$setup ; snapshot-list test --parent" |
        awk 'NF { p = (NF >= 6) ? $6 : "-"; print $1, p }' >"$out/tree-$name.parents"
    printf '%s\n' "$args" >"$out/tree-$name.args"
}
libvirt='snapshot-create-as test s1; snapshot-create-as test s3; snapshot-create-as test s2;
  snapshot-revert test s3; snapshot-create-as test s6; snapshot-create-as test s5;
  snapshot-revert test s6; snapshot-create-as test s4; snapshot-revert test s1;
  snapshot-create-as test s7; snapshot-create-as test s8'
gen libvirt "$libvirt" ""
gen from-s3 "$libvirt" "--from s3"
gen from-s3-desc "$libvirt" "--from s3 --descendants"
gen from-leaf "$libvirt" "--from s8 --descendants"
gen single "snapshot-create-as test only" ""
gen chain "snapshot-create-as test c1; snapshot-create-as test c2; snapshot-create-as test c3;
  snapshot-create-as test c4" ""
# Deleting the root leaves several roots; names sort case-insensitively.
gen roots "snapshot-create-as test top; snapshot-create-as test Beta; snapshot-revert test top;
  snapshot-create-as test alpha; snapshot-create-as test Gamma; snapshot-revert test top;
  snapshot-create-as test delta; snapshot-revert test alpha; snapshot-create-as test Zed;
  snapshot-revert test alpha; snapshot-create-as test _under; snapshot-revert test alpha;
  snapshot-create-as test a-1; snapshot-delete test top" ""
gen deep-fan "snapshot-create-as test r; snapshot-create-as test a; snapshot-create-as test b;
  snapshot-create-as test c; snapshot-revert test a; snapshot-create-as test d;
  snapshot-revert test r; snapshot-create-as test e; snapshot-create-as test f;
  snapshot-revert test b; snapshot-create-as test g; snapshot-revert test r;
  snapshot-create-as test h" ""
