#!/usr/bin/env bash
# `tradelab optimize` side by side with vectorbt (and backtesting.py) on the
# SMA crossover grid of issue 25: fast 5..50 x slow 20..200 step 4 with
# fast < slow (1,980 combinations) on ORCL's 5,036 daily bars, the rules of
# scripts/peers (long only, all-in whole shares, a fixed fee of 25 per order,
# fills at the signal close, 100,000 starting cash).
#
# tradelab's time is the whole process (start, loading and validating the
# file, the search, the statistics, writing the reports), measured from
# outside; vectorbt's is its warm grid (indicators, signals, the portfolio,
# total returns) after an untimed JIT warm-up, inside one Python process.
# The tools alternate ROUNDS times; each round's ratio is taken on that
# round's medians. The script fails unless both tools pick the same best
# combination with the same total return, and 98% of all combinations agree
# to 1e-9 (the rest differ where the two averages tie or nearly tie at a
# cross: vectorbt's rolling sums round, tradelab compares exact means, as
# backtrader and backtesting.py do).
#
#   pip install -r scripts/peers/requirements.txt
#   scripts/bench/optimize_vs_peers.sh [ROUNDS] [--million] [--backtesting]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
shift || true
FILE=data/raw/orcl-1995-2014.txt
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PEER=(--set backtest.fill=signal_close --set risk.enabled=false --set backtest.costs.exit_fixed=25)
GRID=(--param fast=5:50 --param slow=20:200:4 --constraint "fast < slow" --metric total_return)

cargo build --release --quiet
ours() { # ours THREADS -> seconds of the whole process (median of 5)
  python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
threads = sys.argv[1]
cmd = ["./target/release/tradelab", "--set", "backtest.fill=signal_close", "--set", "risk.enabled=false",
       "--set", "backtest.costs.exit_fixed=25", "optimize", "--strategy", "sma_crossover",
       "--symbol", "data/raw/orcl-1995-2014.txt", "--param", "fast=5:50", "--param", "slow=20:200:4",
       "--constraint", "fast < slow", "--metric", "total_return", "--threads", threads,
       "--out-dir", sys.argv[2], "--json"]
times = []
for _ in range(5):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
PY
}
for round in $(seq 1 "$ROUNDS"); do
  one=$(ours 1 "$OUT/t")
  two=$(ours 2 "$OUT/t")
  vbt=$(python3 scripts/peers/optimize_peers.py vectorbt --file "$FILE" --repeats 5 --write-returns "$OUT/vbt.json" | tail -1)
  python3 - "$one" "$two" "$vbt" "$round" "$OUT" <<'PY'
import csv, json, sys
one, two, vbt, rnd, out = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = list(csv.DictReader(open(f"{out}/t/optimize.csv")))
theirs = json.load(open(f"{out}/vbt.json"))
best = rows[0]
assert [int(best["fast"]), int(best["slow"])] == vbt["best"], (best, vbt["best"])
assert abs(float(best["total_return"]) - vbt["best_total_return"]) <= 1e-9 * (1 + abs(vbt["best_total_return"]))
agree = sum(abs(float(r["total_return"]) - theirs[f"{r['fast']},{r['slow']}"]) <= 1e-9 * (1 + abs(float(r["total_return"]))) for r in rows)
assert agree >= 0.98 * len(rows), f"only {agree} of {len(rows)} total returns agree"
v = vbt["median_s"]
print(f"round {rnd}: tradelab {one:.3f} s (1 thread), {two:.3f} s (2 threads); vectorbt {vbt['version']} {v:.3f} s warm; "
      f"ratio {v/one:.1f}x / {v/two:.1f}x; best fast={best['fast']} slow={best['slow']} total return {float(best['total_return']):.6f} "
      f"(vectorbt {vbt['best_total_return']:.6f}); {agree}/{len(rows)} total returns agree to 1e-9; vectorbt peak RSS {vbt['peak_rss_mb']:.0f} MB")
PY
done

if [[ " $* " == *" --backtesting "* ]]; then
  # backtesting.py's optimize() on a smaller grid (10 x 10 minus fast >= slow).
  small=(--param fast=5:50:5 --param slow=20:200:20 --constraint "fast < slow" --metric total_return)
  start=$(date +%s.%N)
  ./target/release/tradelab "${PEER[@]}" optimize --strategy sma_crossover --symbol "$FILE" "${small[@]}" --out-dir "$OUT/s" --json >/dev/null 2>&1
  end=$(date +%s.%N)
  bp=$(python3 scripts/peers/optimize_peers.py backtesting --file "$FILE" --fast 5:50:5 --slow 20:200:20 --repeats 1 | tail -1)
  python3 - "$start" "$end" "$bp" "$OUT" <<'PY'
import csv, json, sys
ours = float(sys.argv[2]) - float(sys.argv[1]); bp = json.loads(sys.argv[3])
best = list(csv.DictReader(open(f"{sys.argv[4]}/s/optimize.csv")))[0]
print(f"backtesting.py {bp['version']} optimize(): {bp['combinations']} combinations in {bp['median_s']:.2f} s, best {bp['best']} "
      f"total return {bp['best_total_return']:.6f}; tradelab {ours:.3f} s (whole process), best [{best['fast']}, {best['slow']}] "
      f"total return {float(best['total_return']):.6f}; ratio {bp['median_s']/ours:.0f}x")
PY
fi

if [[ " $* " == *" --million "* ]]; then
  # 1,000,000 one-minute bars: vectorbt's memory grows with combinations x bars.
  python3 scripts/peers/optimize_peers.py synthetic --bars 1000000 --out "$OUT/walk.csv"
  /usr/bin/time -f "tradelab: %e s wall, peak RSS %M KB" ./target/release/tradelab "${PEER[@]}" optimize \
    --strategy sma_crossover --symbol "$OUT/walk.csv" "${GRID[@]}" --out-dir "$OUT/m" --json >/dev/null
  # Capped at 16 GB of address space so a failure is a MemoryError, not the OOM killer.
  (ulimit -v 16000000; /usr/bin/time -f "vectorbt: %e s wall, peak RSS %M KB" \
    python3 scripts/peers/optimize_peers.py vectorbt --file "$OUT/walk.csv" --repeats 1) || true
fi
