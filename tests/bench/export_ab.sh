#!/usr/bin/env bash
# Alternating A/B runs of two `caregate export` binaries on the same extract, each run on
# a fresh database and output directory; prints mean wall, user and system seconds.
# The VM's speed drifts by more than most changes, so runs alternate.
#
#   tests/bench/export_ab.sh OLD_CAREGATE NEW_CAREGATE [ROUNDS=3] [EXTRACT]
#
# EXTRACT defaults to a 200,000-record one made with `caregate synth` (as export_bench.sh).
set -euo pipefail
old=$(readlink -f "$1"); new=$(readlink -f "$2"); rounds=${3:-3}
work=$(mktemp -d /tmp/caregate-export-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
in=${4:-}
if [[ -z $in ]]; then
  in=$work/extract.ndjson
  "$new" synth --records 200000 --seed 42 --format cis --invalid-every 97 --out "$in"
fi
for _ in $(seq "$rounds"); do
  for b in "$old" "$new"; do
    rm -rf "$work/o" "$work/o.db"*
    sync
    /usr/bin/time -f "%e %U %S" -o "$work/t" "$b" export --in "$in" --out "$work/o" --db "$work/o.db" \
      --run-date 2024-05-01 > /dev/null 2>&1
    echo "$b $(cat "$work/t")"
  done
done | awk '{w[$1]+=$2; u[$1]+=$3; s[$1]+=$4; k[$1]++; l[$1]=l[$1]" "$2}
  END {for (x in w) printf "%-50s wall %.2f user %.2f sys %.2f  [%s ]\n", x, w[x]/k[x], u[x]/k[x], s[x]/k[x], l[x]}'
