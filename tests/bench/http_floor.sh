#!/usr/bin/env bash
# HTTP floor benchmark: caregate's server framework against a bare one-thread Boost.Beast
# server, both answering 1 KB over keep-alive, measured with wrk.
#
#   tests/bench/http_floor.sh [BUILD_DIR]        (default build/release; build it first:
#     cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release
#     cmake --build build/release --target beast_floor_server caregate_http_bench_server)
#
# Environment: DURATION (10s), CONNECTIONS (64), COMMIT_US (700: the simulated audit
# group commit of the last run). On a machine with 2+ cores the server is pinned to
# core 0 and wrk to core 1, so the two do not fight over one core; the last run (the
# target scenario: every request waits for a group-committed fsync) leaves the server
# unpinned, as it would run in production.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
duration=${DURATION:-10s}
conns=${CONNECTIONS:-64}
commit_us=${COMMIT_US:-700}
bench_dir=$build/bin
[[ -d $bench_dir ]] || bench_dir=$build/tests/bench

for bin in beast_floor_server caregate_http_bench_server; do
  [[ -x $bench_dir/$bin ]] || { echo "missing $bench_dir/$bin: build it first (see the header of $0)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 2; }

server_cpu=() wrk_cpu=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
  server_cpu=(taskset -c 0)
  wrk_cpu=(taskset -c 1)
fi

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server OUTFILE CMD... : starts CMD in the background, waits for "listening on".
start_server() {
  local out=$1; shift
  "$@" >"$out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    [[ -f $out ]] && grep -q '^listening on ' "$out" && return 0
    sleep 0.05
  done
  echo "server did not start:" >&2; cat "$out" >&2; exit 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# wrk's latency to milliseconds: 850.00us, 1.20ms, 1.05s
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# run NAME PIN(yes|no) PATH SERVER_CMD... : prints one result line, sets rps/p99.
results=() cpu=()
run() {
  local name=$1 pin=$2 path=$3; shift 3
  local out=$tmp/server.out
  local srv=() cli=()
  if [[ $pin == yes ]]; then srv=("${server_cpu[@]}"); cli=("${wrk_cpu[@]}"); fi
  start_server "$out" "${srv[@]}" "$@"
  local addr
  addr=$(sed -n 's/^listening on //p' "$out" | head -1)
  local ticks0 ticks1 hz
  hz=$(getconf CLK_TCK)
  ticks0=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
  "${cli[@]}" wrk -t1 -c"$conns" -d"$duration" --latency -H 'Authorization: Bearer bench-token' \
    "http://$addr$path" >"$tmp/wrk.out"
  ticks1=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
  stop_server
  local requests cpu_us
  requests=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
  # Server CPU time (user + system) per request: unlike req/s, it hardly moves when other
  # work shares the machine.
  cpu_us=$(awk -v t=$((ticks1 - ticks0)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.out")")
  local non2xx
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$tmp/wrk.out")
  [[ -z $non2xx ]] || { echo "$name: $non2xx non-2xx responses" >&2; cat "$tmp/wrk.out" >&2; exit 1; }
  printf '%-46s %8.0f req/s  p50 %6s ms  p99 %6s ms  %6s us CPU/req\n' "$name" "$rps" "$p50" "$p99" "$cpu_us"
  results+=("$rps")
  cpu+=("$cpu_us")
}

echo "wrk -t1 -c$conns -d$duration --latency; $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ ${#server_cpu[@]} -gt 0 ]] && echo "server pinned to core 0, wrk to core 1 (first three runs)"
run "beast floor (1 thread, fixed 1 KB)" yes / "$bench_dir/beast_floor_server" 0
floor=${results[0]}
run "caregate, defaults (io = cores, 64 handlers)" yes /v1/bench "$bench_dir/caregate_http_bench_server"
ours=${results[1]}
run "caregate, handlers inline (1 io thread)" yes /v1/bench \
  "$bench_dir/caregate_http_bench_server" --io-threads 1 --handler-threads 0
run "caregate + ${commit_us} us group commit, unpinned" no /v1/bench \
  "$bench_dir/caregate_http_bench_server" --commit-us "$commit_us"
awk -v a="$ours" -v b="$floor" -v c="${cpu[1]}" -v d="${cpu[0]}" \
  'BEGIN { printf "caregate defaults / floor: %.2f of the req/s, %.2fx the CPU per request\n", a / b, c / d }'
awk -v a="${results[2]}" -v b="$floor" -v c="${cpu[2]}" -v d="${cpu[0]}" \
  'BEGIN { printf "caregate inline / floor:   %.2f of the req/s, %.2fx the CPU per request\n", a / b, c / d }'
