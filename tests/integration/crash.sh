#!/bin/bash
# crash.sh: kill -9 of snapfs at random points during creates, redefines, deletes and reverts;
# after each kill the store is consistent and a restart cleans up.
. "$(dirname "$0")/lib.sh"
command -v xmllint > /dev/null || { echo "xmllint missing (libxml2-utils)"; exit 77; }
make_store
rounds=${CRASH_ROUNDS:-200}
img=$store/images
snap=$store/qemu/snapshot/db
cp "$snap/s3.xml" "$work/template.xml"      # parent s1, never deleted below
RANDOM=${CRASH_SEED:-4242}

# One operation loop against the mount until it dies; every error is ignored.
ops() {
    set +e
    local round=$1 i=0 d=$mnt/db names n
    while mountpoint -q "$mnt"; do
        i=$((i + 1))
        n=r${round}x$i
        names=$(ls "$d/snapshots" 2>/dev/null | grep -vx s1)
        pick=$(echo "$names" | shuf -n 1 2>/dev/null)
        case $((RANDOM % 6)) in
        0) echo "$n" > "$d/ctl/create" ;;
        1) sed -e "s|<name>s3</name>|<name>$n</name>|" -e 's|<active>1</active>|<active>0</active>|' \
               "$work/template.xml" > "$d/ctl/redefine" ;;
        2) [ -n "$pick" ] && echo "$pick --metadata" > "$d/ctl/delete" ;;
        3) [ -n "$pick" ] && echo "$pick" > "$d/ctl/delete" ;;
        4) [ -n "$pick" ] && echo "$pick" > "$d/ctl/revert" ;;
        5) [ -n "$pick" ] && ln -sfn "snapshots/$pick" "$d/current" ;;
        esac
    done 2>/dev/null
}

# The store's invariants, read from the files (no mount involved).
check_store() {
    local when=$1 f parent n cur=0
    shopt -s nullglob
    local files=("$snap"/*.xml)
    shopt -u nullglob
    xmllint --noout "$store/qemu/db.xml" ${files[@]+"${files[@]}"} ||
        fail "$when: a metadata file does not parse"
    for f in ${files[@]+"${files[@]}"}; do
        n=$(sed -n 's|^  <name>\(.*\)</name>$|\1|p' "$f" | head -n 1)
        check test "$snap/$n.xml" = "$f"
        parent=$(sed -n '/^  <parent>$/{n;s|^    <name>\(.*\)</name>$|\1|p}' "$f")
        [ -z "$parent" ] || [ -f "$snap/$parent.xml" ] || fail "$when: $n's parent $parent is missing"
        grep -q '<active>1</active>' "$f" && cur=$((cur + 1))
        # Every image the snapshot names (its overlays and the domain it captured) exists.
        for p in $(grep -o "<source file='[^']*'" "$f" | sed "s|<source file='||; s|'\$||"); do
            [ -e "$p" ] || fail "$when: $n references missing image $p"
        done
    done
    check test "$cur" -le 1
    for p in $(grep -o "<source file='[^']*'" "$store/qemu/db.xml" | sed "s|<source file='||; s|'\$||"); do
        [ -e "$p" ] || fail "$when: the domain references missing image $p"
    done
}

ops_total=0
for round in $(seq "$rounds"); do
    mount_fs
    # After a restart: the load removed every .new leftover.
    ls "$mnt/db/snapshots" > /dev/null
    cat "$mnt/db/tree" > /dev/null
    left=$(find "$store" -name '*.new')
    [ -z "$left" ] || fail "round $round: .new leftovers after a load: $left"
    ops "$round" &
    opspid=$!
    sleep "0.$(printf %02d $((RANDOM % 25 + 3)))"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
    wait "$opspid" 2>/dev/null || true
    check_store "round $round"
    ops_total=$((ops_total + 1))
done
# A last clean mount: everything loads, the tree is consistent with the files.
mount_fs
check test "$(ls "$mnt/db/snapshots" | wc -l)" = "$(ls "$snap" | grep -c '\.xml$')"
check test "$(cut -f5 "$mnt/db/snapshots.tsv" | grep -c yes)" -le 1
check test -z "$(find "$store" -name '*.new')"
umount_fs
applied=$(grep -c 'db/[a-z-]*\( failed\)\?: ' "$work/log" || true)
echo "ok ($ops_total kills, $applied operations answered)"
