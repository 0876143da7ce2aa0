#!/usr/bin/env bash
# The vectorised trading environment side by side with gym-anytrading 2.0's
# StocksEnv on the same close series, both stepped with uniformly random
# actions (tradelab: valid actions under its mask, random quantities, 16
# environments in lockstep; gym-anytrading: one environment, Buy/Sell).
# Alternated ROUNDS times; the ratio is taken per round.
#
#   pip install -r scripts/peers/requirements.txt
#   scripts/bench/env_vs_gym_anytrading.sh [BARS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BARS=${1:-1000000}
ROUNDS=${2:-3}
SERIES=$(mktemp --suffix=.csv)
trap 'rm -f "$SERIES"' EXIT

cargo build --release --quiet
./target/release/tradelab bench env --bars "$BARS" --repeats 1 --write-csv "$SERIES" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  ours=$(./target/release/tradelab bench env --bars "$BARS" --repeats 7 | tail -1)
  theirs=$(python3 scripts/peers/gym_anytrading_bench.py --csv "$SERIES" --window 32 --steps 200000 --repeats 5 2>/dev/null | tail -1)
  echo "$ours"
  echo "$theirs"
  python3 - "$ours" "$theirs" "$round" <<'PY'
import json, sys
ours, theirs, rnd = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
print(f"round {rnd}: tradelab {ours['steps_per_s']/1e6:.2f} M steps/s, gym-anytrading {theirs['steps_per_s']/1e3:.0f} k steps/s, "
      f"ratio {ours['steps_per_s']/theirs['steps_per_s']:.1f}x")
PY
done
