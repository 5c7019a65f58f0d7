#!/usr/bin/env bash
# Alternating fixed-work runs of two export_record_bench binaries (one export worker's
# per-record work): CPU microseconds per record, from `perf stat` task-clock of
# --batches B minus that of --batches 0 (so start-up is not counted).
#
#   CAREGATE_EXTRACT=EXTRACT.ndjson tests/bench/export_worker_ab.sh OLD NEW [ROUNDS=3]
#
# B defaults to 240 batches (env B). Needs perf (linux-perf).
set -euo pipefail
old=$(readlink -f "$1"); new=$(readlink -f "$2"); rounds=${3:-3}; B=${B:-240}
: "${CAREGATE_EXTRACT:?set CAREGATE_EXTRACT to an extract (caregate synth --format cis)}"
recs=$(mktemp)
trap 'rm -f "$recs"' EXIT
tc() {
  perf stat -x, -e task-clock "$1" --batches "$2" 2>&1 |
    awk -F, -v out="$recs" '/task-clock/ {print $1} / records/ {split($1, a, " "); print a[1] > out}'
}
z_old=$(tc "$old" 0); z_new=$(tc "$new" 0)
for _ in $(seq "$rounds"); do
  for b in "$old" "$new"; do
    if [[ $b == "$old" ]]; then z=$z_old; name=old; else z=$z_new; name=new; fi
    t=$(tc "$b" "$B"); r=$(cat "$recs")
    echo "$name $(awk -v t="$t" -v z="$z" -v r="$r" 'BEGIN {printf "%.2f", (t-z)*1000/r}')"
  done
done | awk '{t[$1]+=$2; k[$1]++; l[$1]=l[$1]" "$2} {if (!(($1) in mn) || $2 < mn[$1]) mn[$1]=$2}
  END {for (x in t) printf "%-4s us/record mean %.2f min %.2f [%s ]\n", x, t[x]/k[x], mn[x], l[x]}'
