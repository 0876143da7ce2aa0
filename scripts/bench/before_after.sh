#!/usr/bin/env bash
# Two tradelab release binaries side by side (say, before and after a
# change): each round runs the engine, environment, feature and PPO-training
# benchmarks on both, the order swapped every round so machine load hits
# both alike; prints each median and the per-round ratios (B / A).
#
#   scripts/bench/before_after.sh OLD_BINARY NEW_BINARY [ROUNDS]
#
# Build the old one from a worktree sharing this target directory, so only
# the workspace crates recompile. Touch its sources first: path crates get
# the same artifact names in both trees, and cargo would otherwise take the
# newer artifacts of the other tree as fresh:
#   git worktree add /tmp/old COMMIT
#   (cd /tmp/old && find crates -name '*.rs' -exec touch {} + &&
#    CARGO_TARGET_DIR=$PWD/../main/target cargo build --release) ...
# Run from the repository root (ppo-training reads data/raw).
set -euo pipefail
A=$1
B=$2
ROUNDS=${3:-5}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for which in $order; do
    bin=$A
    [ "$which" = B ] && bin=$B
    for b in engine env features ppo-training; do
      echo "$r $which $b $("$bin" bench "$b" 2>/dev/null | grep '^{')" >>"$OUT"
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
key = {"engine": "bars_per_s", "env": "steps_per_s", "features": "updates_per_s", "ppo-training": "steps_per_s_median"}
res = {}
for line in open(sys.argv[1]):
    r, which, bench, js = line.split(" ", 3)
    res.setdefault(bench, {}).setdefault(which, {})[int(r)] = json.loads(js)[key[bench]]
for bench, d in res.items():
    ratios = [d["B"][r] / d["A"][r] for r in sorted(d["A"])]
    print(f"{bench:13s} A {statistics.median(d['A'].values()):>13,.0f}  B {statistics.median(d['B'].values()):>13,.0f}"
          f"  B/A per round {', '.join(f'{x:.2f}' for x in ratios)}  median {statistics.median(ratios):.3f}")
PY
