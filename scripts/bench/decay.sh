#!/usr/bin/env bash
# Model decay on the bundled daily data: for each series, a PPO model is
# trained on its first 40% (validated on the next 10%); then the last
# WINDOWS windows of 250 bars, all after anything the model saw, are traded
# greedily by that static model and by one updated (`tradelab adapt`, 8192
# steps on the 1000 bars before each window, guarded on the 125 bars just
# before it) on every new window. Prints each series' mean return per window.
#
#   scripts/bench/decay.sh [AGENT] [WINDOWS] [--set KEY=VALUE ...]
#   (TRADELAB_BIN=path skips the release build; the settings go to training,
#   and the updates read them from the model)
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENT=${1:-ppo-lstm}
WINDOWS=${2:-8}
shift $(( $# < 2 ? $# : 2 ))
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "${TRADELAB_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN=${TRADELAB_BIN:-$ROOT/target/release/tradelab}
cd "$WORK"
for s in nvda-1999-2014 orcl-1995-2014 yhoo-1996-2014; do
  csv=$ROOT/data/raw/$s.txt
  "$BIN" --set store.url=sqlite://$WORK/s.db --set store.model_dir=$WORK/models \
    train --agent "$AGENT" --symbol "$csv" --steps 65536 --out "base-$s" \
    --set env.train_fraction=0.4 --set env.validation_fraction=0.1 "$@" >/dev/null 2>&1
  echo "== $s ($AGENT)"
  "$BIN" --set store.url=sqlite://$WORK/s.db --set store.model_dir=$WORK/models \
    adapt --model "base-$s/best" --data "$csv" --window 1000 --validation 250 --steps 8192 \
    --walk-forward "$WINDOWS" --out "wf-$s" 2>&1
done
