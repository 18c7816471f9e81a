#!/bin/bash
# backup-progress.sh: starts a push backup through a snapfs mount and shows its progress until it ends.
#
#   scripts/backup-progress.sh MOUNTPOINT DOMAIN XMLFILE
#
# Writes XMLFILE (a <domainbackup>) to MOUNTPOINT/DOMAIN/ctl/backup, then reads
# MOUNTPOINT/DOMAIN/job, one line such as
#   backup running 104857600/1073741824 bytes 512.3 MB/s
#   backup failed 4096/1073741824 bytes 1.2 MB/s: REASON
# and draws a progress bar (on a terminal; elsewhere one line a second) until the
# job is no longer running. Exit status: 0 when the backup completed, 1 when it was
# refused, failed or was cancelled (the reason goes to stderr), 2 on usage errors.
# Ctrl-C cancels the backup (writes "cancel" to ctl/backup).
set -u

[ $# -eq 3 ] || { echo "usage: backup-progress.sh MOUNTPOINT DOMAIN XMLFILE" >&2; exit 2; }
dir=$1/$2
xml=$3
[ -r "$xml" ] || { echo "backup-progress.sh: cannot read '$xml'" >&2; exit 2; }
[ -d "$dir" ] || { echo "backup-progress.sh: no domain '$2' under '$1'" >&2; exit 2; }

# one write(2) of the whole document: the control file takes it in one go
if ! cat "$xml" > "$dir/ctl/backup"; then
    reason=$(cat "$dir/ctl/result" 2>/dev/null)
    reason=${reason#error: }
    echo "backup-progress.sh: backup refused${reason:+: $reason}" >&2
    exit 1
fi
trap 'echo cancel > "$dir/ctl/backup" 2>/dev/null' INT TERM

tty=0
[ -t 1 ] && tty=1
width=40
last=0
while :; do
    line=$(cat "$dir/job" 2>/dev/null) || { echo "backup-progress.sh: cannot read $dir/job" >&2; exit 1; }
    # backup STATE DONE/TOTAL bytes RATE MB/s[: REASON]
    read -r _ state counts _ rate _ <<<"${line%%: *}"
    done_b=${counts%/*}
    total=${counts#*/}
    case $done_b$total in *[!0-9]*|'') done_b=0; total=0 ;; esac
    pct=0
    [ "$total" -gt 0 ] && pct=$((done_b * 100 / total))
    fill=$((pct * width / 100))
    bar=$(printf '%*s' "$fill" '' | tr ' ' '#')$(printf '%*s' $((width - fill)) '' | tr ' ' '.')
    text=$(printf '[%s] %3d%% %d/%d MiB %s MB/s %s' "$bar" "$pct" $((done_b >> 20)) \
           $((total >> 20)) "${rate:-0}" "${state:-?}")
    now=$SECONDS
    if [ $tty -eq 1 ]; then
        printf '\r%s' "$text"
    elif [ "$state" != running ] || [ $now -ne $last ]; then
        echo "$text"
        last=$now
    fi
    [ "$state" = running ] || break
    sleep 0.2
done
[ $tty -eq 1 ] && echo
case $state in
completed) exit 0 ;;
*)
    reason=
    [[ $line == *": "* ]] && reason=${line#*: }
    echo "backup-progress.sh: backup $state${reason:+: $reason}" >&2
    exit 1
    ;;
esac
