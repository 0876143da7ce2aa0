#!/usr/bin/env bash
# PPO side by side with the Python stacks, one thread each, ROUNDS rounds:
#  - training throughput (env steps/s including updates) of tradelab's MLP
#    policy against Stable-Baselines3 2.9 PPO on the same series (orcl
#    1995-2014), observation size (32 x 19 + 3 = 611), 8 envs, 128 steps,
#    batch 256, 4 epochs; SB3 twice: its MlpPolicy as users run it (separate
#    64x64 actor and critic) and with one shared 64x64 trunk, tradelab's
#    shape (`--net shared`);
#  - one update step (forward, backward, Adam) of the LSTM and Transformer
#    policies against the same networks in PyTorch, batch 256;
#  - the same training comparison on a compact observation (window 2,
#    2 x 19 + 3 = 41), where per-step overhead rather than matrix
#    multiplies decides;
#  - tradelab's decision latency at batch 1 (p50, p99).
#
#   python3 -m venv /tmp/peerenv && /tmp/peerenv/bin/pip install -r scripts/peers/requirements-rl.txt
#   PY=/tmp/peerenv/bin/python scripts/bench/ppo_vs_peers.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
STEPS=${2:-65536}
PY=${PY:-python3}
export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

cargo build --release --quiet
SB3="$PY scripts/peers/sb3_ppo_bench.py --csv data/raw/orcl-1995-2014.txt --timesteps $STEPS --repeats 1 --threads 1"
for round in $(seq 1 "$ROUNDS"); do
  ours=$(./target/release/tradelab --set data.raw_dir=data/raw bench ppo --bars "$STEPS" --repeats 1)
  sb3=$($SB3 2>/dev/null | tail -1)
  sb3s=$($SB3 --net shared 2>/dev/null | tail -1)
  torch=$("$PY" scripts/peers/torch_ppo_update_bench.py --threads 1 2>/dev/null)
  ours2=$(./target/release/tradelab --set data.raw_dir=data/raw --set env.window=2 bench ppo-training --bars "$STEPS" --repeats 1)
  sb32=$($SB3 --window 2 2>/dev/null | tail -1)
  sb32s=$($SB3 --window 2 --net shared 2>/dev/null | tail -1)
  printf '%s\n' "$ours" "$sb3" "$sb3s" "$torch" "$ours2" "$sb32" "$sb32s"
  python3 - "$round" "$ours" "$sb3" "$sb3s" "$torch" "$ours2" "$sb32" "$sb32s" <<'PY'
import json, sys
rnd = sys.argv[1]
ours = {j["bench"]: j for j in map(json.loads, sys.argv[2].splitlines())}
torch = {j["encoder"]: j for j in map(json.loads, sys.argv[5].splitlines())}
runs = [(ours["ppo_mlp_training"], sys.argv[3], sys.argv[4]), (json.loads(sys.argv[6]), sys.argv[7], sys.argv[8])]
for o, sep, shared in runs:
    t = o["steps_per_s_median"]
    for p in map(json.loads, (sep, shared)):
        s = p["steps_per_s_median"]
        print(f"round {rnd}: training obs {o['obs']} tradelab {t:.0f} steps/s ({o['parameters']} parameters) "
              f"vs SB3 {p['net']} {s:.0f} ({p['parameters']} parameters): {t/s:.2f}x")
for enc in ["lstm", "transformer"]:
    o, p = ours[f"ppo_{enc}"], torch[enc]
    print(f"round {rnd}: {enc} update tradelab {o['update_ms_median']:.1f} ms vs PyTorch {p['update_ms_median']:.1f} ms: "
          f"{o['update_ms_median']/p['update_ms_median']:.2f}x slower; decision p50 {o['decision_ms_p50']:.3f} ms p99 {o['decision_ms_p99']:.3f} ms")
PY
done
