#!/usr/bin/env bash
# Lookup benchmark (issue 5): 10,000 synthetic persons stored, `caregate serve` answering
# GET /v1/persons/{id} (health user, SystmOne view, every lookup audited durably before
# the response), measured with wrk; then the bare one-thread Boost.Beast floor on the
# same machine, and the ratio.
#
#   tests/bench/lookup_bench.sh [BUILD_DIR]     (default build/release; build first:
#     cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
#     cmake --build build/release --target caregate beast_floor_server)
#
# Environment: PERSONS (10000), DURATION (10s), CONNECTIONS (64), THREADS (wrk, 1),
# IDS (all shareable ids), USERS (1: distinct health users the requests take turns as).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
persons=${PERSONS:-10000}
duration=${DURATION:-10s}
conns=${CONNECTIONS:-64}
wrk_threads=${THREADS:-1}
caregate=$build/bin/caregate
floor_bin=$build/bin/beast_floor_server
for bin in "$caregate" "$floor_bin"; do
  [[ -x $bin ]] || { echo "missing $bin: build it first (see the header of $0)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 2; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

start_server() {
  local out=$1; shift
  "$@" >"$out" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    grep -q '^listening on ' "$out" && return 0
    sleep 0.05
  done
  echo "server did not start:" >&2; cat "$out" >&2; exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# --- data: synthesise, ingest, list the ids ------------------------------------------
db=$tmp/caregate.db
"$caregate" synth --records "$persons" --seed 42 --format cis --out "$tmp/persons.ndjson"
start=$(date +%s.%N)
"$caregate" ingest --from cis --db "$db" "$tmp/persons.ndjson"
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" -v n="$persons" 'BEGIN { printf "ingest: %.1f s (%.0f records/s)\n", b - a, n / (b - a) }'
# The synthetic extract and the store are ~200 MB of dirty page cache: write it back now,
# not during the measured runs (where it would compete with the audit trail's fsyncs).
sync
grep -v '"Consent_To_Share":"No"' "$tmp/persons.ndjson" | grep -o '"LA_Person_Unique_Identifier":"[^"]*"' | sed 's/.*:"\(.*\)"/cis:\1/' | awk -v n="${IDS:-$persons}" 'NR <= n' >"$tmp/ids.txt"
echo "$(wc -l <"$tmp/ids.txt") person ids to cycle through (records with consent No are left out: 403 for a health user)"

users=${USERS:-1}
: >"$tmp/tokens.txt"
for ((u = 0; u < users; u++)); do
  printf 'sha256:%s health bench.user%d\n' "$(printf 'bench-health-token-%d' "$u" | sha256sum | cut -d' ' -f1)" "$u" \
    >>"$tmp/tokens.txt"
done
echo "$users health user(s), requests taking turns"
cat >"$tmp/lookup.lua" <<LUA
local ids = {}
for line in io.lines("$tmp/ids.txt") do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i + 1
  local id = ids[(i % #ids) + 1]
  local token = "bench-health-token-" .. (i % $users)
  return wrk.format("GET", "/v1/persons/" .. id, { ["Authorization"] = "Bearer " .. token })
end
LUA

results=()
run() {  # NAME URL_PATH WRK_EXTRA... -- SERVER_CMD...
  local name=$1 path=$2; shift 2
  local extra=()
  while [[ $1 != -- ]]; do extra+=("$1"); shift; done
  shift
  start_server "$tmp/server.out" "$@"
  local addr
  addr=$(sed -n 's/^listening on //p' "$tmp/server.out" | head -1)
  local cpu0 cpu1 rss
  cpu0=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
  wrk -t"$wrk_threads" -c"$conns" -d"$duration" --latency "${extra[@]}" "http://$addr$path" >"$tmp/wrk.out"
  cpu1=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
  rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
  curl -s "http://$addr/metrics" >"$tmp/metrics.out" 2>/dev/null || : >"$tmp/metrics.out"  # optional
  stop_server
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.out")")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$tmp/wrk.out")
  [[ -z $non2xx ]] || { echo "$name: $non2xx non-2xx responses" >&2; cat "$tmp/wrk.out" >&2; exit 1; }
  printf '%-44s %10.0f req/s   p50 %7s ms   p99 %7s ms\n' "$name" "$rps" "$p50" "$p99"
  sed -n 's/^ *\(Socket errors:.*\)/    wrk: \1/p' "$tmp/wrk.out"  # connect/read/write errors, timeouts
  # Server CPU (user + system) per request, and peak RSS; for caregate, audit batching.
  awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")" \
    -v rss="$rss" 'BEGIN { printf "    server CPU %.1f us/request, peak RSS %.0f MiB\n", (b - a) / hz / n * 1e6, rss / 1024 }'
  awk '$1 == "caregate_audit_events_committed" { e = $2 } $1 == "caregate_audit_commits" { c = $2 }
       $1 == "caregate_audit_writer_commit_seconds" { cs = $2 } $1 == "caregate_audit_writer_insert_seconds" { is = $2 }
       END { if (c > 0) printf "    audit: %d events in %d commits (%.1f events/commit), per commit: insert %.2f ms, COMMIT %.2f ms\n", e, c, e / c, is / c * 1000, cs / c * 1000 }' \
    "$tmp/metrics.out"
  results+=("$rps")
}

echo "wrk -t$wrk_threads -c$conns -d$duration --latency; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# The first pass over the ids decodes and renders each person (then cached); with IDS
# set to a few hundred the run measures the warm path.
run "caregate lookups (audited, $persons persons)" / -s "$tmp/lookup.lua" -- \
  "$caregate" serve --db "$db" --tokens "$tmp/tokens.txt" --listen 127.0.0.1:0
events=$(sqlite3 "$db" 'SELECT count(*) FROM audit_events' 2>/dev/null || echo "?")
run "beast floor (1 thread, fixed 1 KB)" / -- "$floor_bin" 0
awk -v a="${results[0]}" -v b="${results[1]}" 'BEGIN { printf "caregate lookups / floor: %.2f\n", a / b }'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "audit events in the database after the run: $events"
"$caregate" audit verify --db "$db" >/dev/null && echo "audit chain verifies"
