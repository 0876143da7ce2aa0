#!/usr/bin/env bash
# The engine benchmark side by side with vectorbt on the identical series and
# rules (SMA 10/30 long-only crossover, all-in whole shares, 25/35 fixed fees,
# fills at the signal close, 1e9 starting cash so fees never exhaust it).
# The two tools run alternately ROUNDS times; each run prints the median of
# its own repeats, and the ratio is taken per round so load on the shared
# machine hits both sides alike.
#
#   pip install -r scripts/peers/requirements.txt
#   scripts/bench/engine_vs_vectorbt.sh [BARS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BARS=${1:-1000000}
ROUNDS=${2:-3}
SERIES=$(mktemp --suffix=.csv)
trap 'rm -f "$SERIES"' EXIT

cargo build --release --quiet
./target/release/tradelab bench engine --bars "$BARS" --repeats 1 --write-csv "$SERIES" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  ours=$(./target/release/tradelab bench engine --bars "$BARS" --repeats 7 | tail -1)
  theirs=$(python3 scripts/peers/vectorbt_bench.py --csv "$SERIES" --init-cash 1e9 --repeats 7 | tail -1)
  echo "$ours"
  echo "$theirs"
  python3 - "$ours" "$theirs" "$round" <<'PY'
import json, sys
ours, theirs, rnd = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"round {rnd}: tradelab {ours['bars_per_s']/1e6:.1f} M bars/s, vectorbt {theirs['bars_per_s']/1e6:.1f} M bars/s, "
      f"ratio {theirs['median_s']/ours['median_s']:.2f}x; trades {ours['trades']} vs {theirs['trades']}, "
      f"final value {ours['final_value']:.2f} vs {theirs['final_value']:.2f}")
PY
done
