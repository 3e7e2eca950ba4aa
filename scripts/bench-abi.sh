#!/usr/bin/env bash
# The ABI benchmark (issue 4; docs/benchmarks.md): round-trip latency (p50, p99) and pipelined
# calls/s of Forward with 1024 f32 in and out, through the pass-through network, from C
# (libheddle's heddle_latency), Python (bindings/python/bench_latency.py) and C# (its latency
# tool), against the engine on Node, Deno and Bun; unpinned, pinned (client and engine each on
# its own core) and on one core (both on the same core). Not a test: it prints a table.
#
#   scripts/bench-abi.sh [--calls N] [--window W] [--repeat R] [--langs c,python,csharp]
#                        [--runtimes node,deno,bun] [--modes unpinned,pinned,onecore]
#                        [--cpus A,B] [--markdown] [--profile] [--no-bench]
#
# --calls      sequential calls per run, and as many pipelined (default 20000)
# --window     pipelined calls in flight (default 256)
# --repeat     runs per cell; the cell shows the best p50, best p99 and best calls/s (default 3)
# --cpus A,B   pinned: client on A, engine on B; onecore: both on A (default 0,1)
# --markdown   print the table as Markdown (docs/benchmarks.md)
# --profile    also print where a C round trip goes (engine dispatch vs core forward vs I/O):
#              scripts/bench-abi-engine.ts in-process on each runtime and
#              scripts/bench-abi-profile.c (CPU time of client and engine per call)
# --no-bench   only the profile
#
# A latency tool is a command that starts its engine from $HEDDLE_ENGINE (a command line,
# split on spaces), takes the number of calls and the pipelining window (heddle_latency:
# `calls window`; Python and C#: `--calls N --window W`) and prints a line holding
# `p50 X us  p99 Y us ... Z calls/s` (heddle_latency's format; the first p50/p99 pair counts).
# Found as:
#   c       node_modules/.cache/heddle/bench-c/heddle_latency (built here from bindings/c)
#   python  $HEDDLE_BENCH_PYTHON, else bindings/python/bench_latency.py run by the first of
#           $HEDDLE_PYTHON, /usr/bin/python3, python3 that has numpy
#           (PYTHONPATH=bindings/python/src, HEDDLE_LIBRARY=the libheddle.so built here)
#   csharp  $HEDDLE_BENCH_CSHARP, else `bindings/csharp/heddle-dotnet latency` (built on first use)
# A language whose tool is missing is reported as "not available".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="$root/node_modules/.cache/heddle"
build="$cache/bench-c"

calls=20000 window=256 repeat=3 langs=c,python,csharp runtimes=node,deno,bun modes=unpinned,pinned,onecore cpus=0,1
markdown=0 profile=0 bench=1
while [ $# -gt 0 ]; do
  case "$1" in
    --calls) calls="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --langs) langs="$2"; shift 2 ;;
    --runtimes) runtimes="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --markdown) markdown=1; shift ;;
    --profile) profile=1; shift ;;
    --no-bench) bench=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench-abi: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
cpu_a="${cpus%%,*}" cpu_b="${cpus##*,}"
IFS=, read -r -a LANGS <<<"$langs"
IFS=, read -r -a RUNTIMES <<<"$runtimes"
IFS=, read -r -a MODES <<<"$modes"

bundle="$root/dist/heddle-engine.mjs"
[ -f "$bundle" ] || { echo "bench-abi: $bundle is missing: npm run build" >&2; exit 1; }
case "$root" in *' '*) echo "bench-abi: HEDDLE_ENGINE is split on spaces, so the repository path must have none: $root" >&2; exit 1 ;; esac

# ------------------------------------------------------------------ builds

mkdir -p "$build"
(
  flock 9
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S bindings/c -B "$build" -DCMAKE_BUILD_TYPE=Release -DHEDDLE_TEST_BUNDLE_ENV=OFF >"$build/build.log" 2>&1
  fi
  cmake --build "$build" --target heddle_latency heddle heddle_static -j 2 >>"$build/build.log" 2>&1
  if [ "$profile" = 1 ]; then
    cc -O2 -std=c99 -Wall -Wextra -I bindings/c/include scripts/bench-abi-profile.c "$build/libheddle.a" -lstdc++ -lm -o "$build/bench-abi-profile"
    node_modules/.bin/esbuild scripts/bench-abi-engine.ts --bundle --format=esm --platform=node --target=node20 \
      --outfile="$build/bench-abi-engine.mjs" --log-level=warning
  fi
) 9>"$build/.lock" || { echo "bench-abi: building libheddle failed:" >&2; tail -n 30 "$build/build.log" >&2; exit 1; }
libheddle="$build/libheddle.so"

engine_cmd() { # runtime -> the engine command line
  case "$1" in
    node) echo "$(command -v node) $bundle" ;;
    bun) echo "$root/node_modules/.bin/bun $bundle" ;;
    deno) echo "$root/node_modules/.bin/deno run -A $bundle" ;;
    *) echo "bench-abi: unknown runtime $1" >&2; exit 2 ;;
  esac
}

# Each language's latency tool (a command line), or why it is not available, and its arguments:
# heddle_latency takes `calls window`, the Python and C# tools `--calls N --window W`.
declare -A TOOL WHY ARGS
ARGS[c]="$calls $window" ARGS[python]="--calls $calls --window $window" ARGS[csharp]="--calls $calls --window $window"
for lang in "${LANGS[@]}"; do
  case "$lang" in
    c) TOOL[c]="$build/heddle_latency" ;;
    python)
      if [ -n "${HEDDLE_BENCH_PYTHON:-}" ]; then TOOL[python]="$HEDDLE_BENCH_PYTHON"
      elif [ -f bindings/python/bench_latency.py ]; then
        # The first Python with numpy: $HEDDLE_PYTHON, Debian's, the one on PATH.
        py=""
        for p in ${HEDDLE_PYTHON:-} /usr/bin/python3 python3; do
          if "$p" -c 'import numpy' >/dev/null 2>&1; then py="$(command -v "$p")"; break; fi
        done
        if [ -n "$py" ]; then TOOL[python]="$py $root/bindings/python/bench_latency.py"
        else WHY[python]="not available (no python3 with numpy: set HEDDLE_PYTHON)"; fi
      else WHY[python]="not available (bindings/python/bench_latency.py does not exist yet)"; fi ;;
    csharp)
      if [ -n "${HEDDLE_BENCH_CSHARP:-}" ]; then TOOL[csharp]="$HEDDLE_BENCH_CSHARP"
      elif [ -x bindings/csharp/heddle-dotnet ]; then
        # heddle-dotnet builds itself on first use: do that now, outside the timed runs.
        if HEDDLE_ENGINE="$(command -v node) $bundle" bindings/csharp/heddle-dotnet latency --calls 10 --window 2 --warmup 10 >"$cache/bench-csharp.log" 2>&1; then
          TOOL[csharp]="$root/bindings/csharp/heddle-dotnet latency"
        else WHY[csharp]="not available (bindings/csharp/heddle-dotnet latency failed: $(tail -n 1 "$cache/bench-csharp.log" | cut -c1-100))"; fi
      else WHY[csharp]="not available (bindings/csharp/heddle-dotnet does not exist yet)"; fi ;;
    *) echo "bench-abi: unknown language $lang (c, python, csharp)" >&2; exit 2 ;;
  esac
done

# ------------------------------------------------------------------ runs

# One run: lang runtime mode -> "p50 p99 calls" (or "ERR message")
run_once() {
  local lang="$1" rt="$2" mode="$3" engine client out line
  engine="$(engine_cmd "$rt")"
  client="${TOOL[$lang]}"
  case "$mode" in
    unpinned) ;;
    pinned) engine="taskset -c $cpu_b $engine"; client="taskset -c $cpu_a $client" ;;
    onecore) engine="taskset -c $cpu_a $engine"; client="taskset -c $cpu_a $client" ;;
    *) echo "ERR unknown mode $mode"; return ;;
  esac
  # shellcheck disable=SC2086
  if ! out="$(HEDDLE_ENGINE="$engine" HEDDLE_LIBRARY="$libheddle" LD_LIBRARY_PATH="$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      PYTHONPATH="$root/bindings/python/src${PYTHONPATH:+:$PYTHONPATH}" timeout 600 $client ${ARGS[$lang]} 2>&1)"; then
    echo "ERR $(echo "$out" | tail -n 1 | cut -c1-120)"
    return
  fi
  # The first "p50 X us  p99 Y us" pair of the line (Python's also prints its raw ctypes floor after it).
  line="$(echo "$out" | grep -E 'p50 *[0-9.]+ *us +p99 *[0-9.]+ *us.*[0-9.]+ *calls/s' | tail -n 1 || true)"
  if [ -z "$line" ]; then echo "ERR no 'p50 .. us  p99 .. us  .. calls/s' line in: $(echo "$out" | tail -n 1 | cut -c1-100)"; return; fi
  echo "$(echo "$line" | grep -oE 'p50 *[0-9.]+ *us +p99 *[0-9.]+' | head -n 1 | sed -E 's/p50 *([0-9.]+) *us +p99 *([0-9.]+)/\1 \2/') $(echo "$line" | grep -oE '[0-9.]+ *calls/s' | head -n 1 | sed -E 's/ *calls.s//')"
}

declare -A CELL
best_of() { # lang rt mode -> CELL[...]="p50 p99 calls" (best of repeat runs) or "ERR ..."
  local lang="$1" rt="$2" mode="$3" i r b50="" b99="" bc="" err=""
  for ((i = 0; i < repeat; i++)); do
    r="$(run_once "$lang" "$rt" "$mode")"
    if [ "${r%% *}" = ERR ]; then err="$r"; continue; fi
    read -r p50 p99 cps <<<"$r"
    if [ -z "$b50" ] || awk "BEGIN{exit !($p50 < $b50)}"; then b50="$p50"; fi
    if [ -z "$b99" ] || awk "BEGIN{exit !($p99 < $b99)}"; then b99="$p99"; fi
    if [ -z "$bc" ] || awk "BEGIN{exit !($cps > $bc)}"; then bc="$cps"; fi
  done
  if [ -n "$b50" ]; then CELL["$lang/$rt/$mode"]="$b50 $b99 $bc"; else CELL["$lang/$rt/$mode"]="$err"; fi
}

mode_title() {
  case "$1" in
    unpinned) echo "unpinned" ;;
    pinned) echo "pinned (client $cpu_a, engine $cpu_b)" ;;
    onecore) echo "one core (both on $cpu_a)" ;;
  esac
}

target_p50() { case "$1" in python) echo 25 ;; *) echo 15 ;; esac; }

fmt_cell() { # "p50 p99 calls" -> "20.1 / 66.3 / 79.0k"
  local v="$1"
  if [ "${v%% *}" = ERR ]; then echo "error"; return; fi
  read -r a b c <<<"$v"
  awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN{printf "%.1f / %.1f / %.1fk", a, b, c/1000}'
}

machine_note() {
  local cpu load
  cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "machine: $(nproc) cpus ($cpu), load average $load; node $(node --version | tr -d v), deno $("$root/node_modules/.bin/deno" --version 2>/dev/null | head -n1 | cut -d' ' -f2), bun $("$root/node_modules/.bin/bun" --version 2>/dev/null)"
}

if [ "$bench" = 1 ]; then
  start_note="$(machine_note)"
  for lang in "${LANGS[@]}"; do
    [ -n "${TOOL[$lang]:-}" ] || continue
    for rt in "${RUNTIMES[@]}"; do
      for mode in "${MODES[@]}"; do
        best_of "$lang" "$rt" "$mode"
        [ "$markdown" = 1 ] || printf '  %-7s %-5s %-9s %s\n' "$lang" "$rt" "$mode" "$(fmt_cell "${CELL[$lang/$rt/$mode]}")" >&2
      done
    done
  done
  end_note="$(machine_note)"

  echo
  echo "Forward, 1024 f32 in and out, through the pass-through network; cells: p50 us / p99 us / pipelined calls/s"
  echo "(best of $repeat runs of $calls sequential + $calls pipelined calls, window $window)."
  echo "Targets: p50 <= 15 us from C and C#, <= 25 us from Python; >= 120k pipelined calls/s."
  echo "at start: $start_note"
  echo "at end:   $end_note"
  echo
  if [ "$markdown" = 1 ]; then
    printf '| client | engine |'; for m in "${MODES[@]}"; do printf ' %s |' "$(mode_title "$m")"; done; printf ' p50 target |\n'
    printf '|---|---|'; for m in "${MODES[@]}"; do printf -- '---|'; done; printf -- '---|\n'
  else
    printf '%-8s %-7s' client engine; for m in "${MODES[@]}"; do printf ' %-30s' "$(mode_title "$m" | cut -c1-30)"; done; printf ' %s\n' "p50 target"
  fi
  for lang in "${LANGS[@]}"; do
    for rt in "${RUNTIMES[@]}"; do
      if [ -z "${TOOL[$lang]:-}" ]; then
        if [ "$markdown" = 1 ]; then printf '| %s | %s |' "$lang" "$rt"; for m in "${MODES[@]}"; do printf ' n/a |'; done; printf ' %s |\n' "${WHY[$lang]}"
        else printf '%-8s %-7s %s\n' "$lang" "$rt" "${WHY[$lang]}"; fi
        continue
      fi
      if [ "$markdown" = 1 ]; then
        printf '| %s | %s |' "$lang" "$rt"; for m in "${MODES[@]}"; do printf ' %s |' "$(fmt_cell "${CELL[$lang/$rt/$m]}")"; done; printf ' <= %s us |\n' "$(target_p50 "$lang")"
      else
        printf '%-8s %-7s' "$lang" "$rt"; for m in "${MODES[@]}"; do printf ' %-30s' "$(fmt_cell "${CELL[$lang/$rt/$m]}")"; done; printf ' <= %s us\n' "$(target_p50 "$lang")"
      fi
    done
  done
  echo
  # Against the targets: each language's best cell.
  for lang in "${LANGS[@]}"; do
    [ -n "${TOOL[$lang]:-}" ] || continue
    b50="" bc="" w50="" wc=""
    for rt in "${RUNTIMES[@]}"; do
      for m in "${MODES[@]}"; do
        v="${CELL[$lang/$rt/$m]}"; [ "${v%% *}" = ERR ] && continue
        read -r p50 _ cps <<<"$v"
        if [ -z "$b50" ] || awk "BEGIN{exit !($p50 < $b50)}"; then b50="$p50"; w50="$rt, $m"; fi
        if [ -z "$bc" ] || awk "BEGIN{exit !($cps > $bc)}"; then bc="$cps"; wc="$rt, $m"; fi
      done
    done
    [ -n "$b50" ] || { echo "$lang: every run failed: ${CELL[$lang/${RUNTIMES[0]}/${MODES[0]}]}"; continue; }
    t="$(target_p50 "$lang")"
    printf '%s: best p50 %s us (%s): %s the %s us target; best pipelined %s calls/s (%s): %s the 120k target\n' "$lang" "$b50" "$w50" \
      "$(awk "BEGIN{print ($b50 <= $t) ? \"meets\" : \"misses\"}")" "$t" "$(printf '%.0f' "$bc")" "$wc" "$(awk "BEGIN{print ($bc >= 120000) ? \"meets\" : \"misses\"}")"
  done
  for lang in "${LANGS[@]}"; do [ -n "${TOOL[$lang]:-}" ] || echo "$lang: ${WHY[$lang]}"; done
fi

# ------------------------------------------------------------------ profile

if [ "$profile" = 1 ]; then
  kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
  echo
  echo "Where a C round trip goes (Forward, 1024 f32, pass-through network). $(machine_note)"
  echo
  echo "Engine in-process, no I/O (scripts/bench-abi-engine.ts; us per call, best batch of 500):"
  printf '  %-6s %12s %8s %13s %15s %6s %15s\n' engine handleFrame verify "core forward" "response build" rest "(median batch)"
  for rt in "${RUNTIMES[@]}"; do
    case "$rt" in
      node) r="$(node "$build/bench-abi-engine.mjs" "$calls")" ;;
      bun) r="$("$root/node_modules/.bin/bun" "$build/bench-abi-engine.mjs" "$calls")" ;;
      deno) r="$("$root/node_modules/.bin/deno" run -A "$build/bench-abi-engine.mjs" "$calls")" ;;
    esac
    printf '  %-6s %12s %8s %13s %15s %6s %15s\n' "$rt" "$(kv "$r" handle_frame_us)" "$(kv "$r" verify_us)" "$(kv "$r" core_forward_us)" \
      "$(kv "$r" response_build_us)" "$(kv "$r" rest_us)" "$(kv "$r" handle_frame_median_us)"
  done
  echo
  echo "Round trip from C (scripts/bench-abi-profile.c; us per call, means over $calls sequential calls):"
  echo "  client CPU = libheddle + its syscalls; engine CPU = every engine thread (dispatch, core, read/write, GC);"
  echo "  idle = neither on a CPU (wake-ups, scheduler delay). switches = context switches per call."
  echo "  transport stdio: the engine started by libheddle (socketpair on its stdin/stdout); socket: the engine"
  echo "  serving a unix socket (--socket), started by this script, and libheddle connecting to it."
  row='  %-6s %-9s %-9s %7s %7s %7s %11s %11s %7s %10s %10s\n'
  # shellcheck disable=SC2059
  printf "$row" engine transport mode mean p50 p99 "client CPU" "engine CPU" idle "client sw" "engine sw"
  prow() { # runtime transport mode result
    # shellcheck disable=SC2059
    printf "$row" "$1" "$2" "$3" "$(kv "$4" mean_us)" "$(kv "$4" p50_us)" "$(kv "$4" p99_us)" \
      "$(kv "$4" client_cpu_us)" "$(kv "$4" engine_cpu_us)" "$(kv "$4" idle_us)" "$(kv "$4" client_switches)" "$(kv "$4" engine_switches)"
  }
  for rt in "${RUNTIMES[@]}"; do
    for mode in "${MODES[@]}"; do
      engine="$(engine_cmd "$rt")" client="$build/bench-abi-profile"
      case "$mode" in
        pinned) engine="taskset -c $cpu_b $engine"; client="taskset -c $cpu_a $client" ;;
        onecore) engine="taskset -c $cpu_a $engine"; client="taskset -c $cpu_a $client" ;;
      esac
      # shellcheck disable=SC2086
      prow "$rt" stdio "$mode" "$(HEDDLE_ENGINE="$engine" $client "$calls" 2>&1 | tail -n 1)"
    done
    # The same engine serving a unix socket (unpinned).
    sock="$(mktemp -u /tmp/heddle-bench-XXXXXX.sock)"
    # shellcheck disable=SC2086
    $(engine_cmd "$rt") --socket "$sock" </dev/null >/dev/null 2>&1 &
    epid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    prow "$rt" socket unpinned "$(HEDDLE_SOCKET="$sock" HEDDLE_ENGINE_PID="$epid" "$build/bench-abi-profile" "$calls" 2>&1 | tail -n 1)"
    kill "$epid" 2>/dev/null || true
    wait "$epid" 2>/dev/null || true
    rm -f "$sock"
  done
fi
