#!/usr/bin/env bash
# The decision endpoint under load from a second process on loopback: wrk
# posts the same observation over CONNECTIONS keep-alive connections for
# SECONDS; every request runs the model, the risk layer and a durable audit
# write. A PPO-LSTM (the default sizes) is trained briefly on the bundled
# NVDA daily file and registered first; everything lives in a temporary
# folder with its own SQLite store (or the database in
# TRADELAB_DATABASE_URL).
#
# Two rounds side by side: with OAuth (a client-credentials token with the
# `trade` scope; every request verifies the EdDSA signature and checks
# revocation in the database) and with --insecure-no-auth, so the cost of
# the token check is the difference.
#
#   apt-get install wrk
#   [TRADELAB_BIN=path] scripts/bench/decision_endpoint.sh [CONNECTIONS] [SECONDS] [AGENT]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNECTIONS=${1:-8}
SECONDS_=${2:-10}
AGENT=${3:-ppo-lstm}
ROOT=$PWD
SERVER=""
WORK=$(mktemp -d)
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT

# TRADELAB_BIN benchmarks a binary built elsewhere (an old commit's, to
# compare side by side); otherwise this tree's release build.
if [ -n "${TRADELAB_BIN:-}" ]; then
  BIN=$(realpath "$TRADELAB_BIN")
else
  cargo build --release --quiet
  BIN=$ROOT/target/release/tradelab
fi
cd "$WORK"
export TRADELAB_DATABASE_URL=${TRADELAB_DATABASE_URL:-sqlite://$WORK/bench.db}
S=(--set "data.raw_dir=$ROOT/data/raw" --set "data.final_dir=$WORK/final" --set "data.cache_dir=$WORK/cache")
"$BIN" "${S[@]}" data prepare >/dev/null
"$BIN" "${S[@]}" train --agent "$AGENT" --symbol nvda-1999-2014 --steps 2048 --name bench >/dev/null 2>&1
SECRET=$("$BIN" "${S[@]}" auth client add bench --name bench --grant client_credentials --scope "trade admin" | sed -n 's/.*client secret: \([^ ]*\).*/\1/p')

python3 - "$WORK/final/manifest.json" "$WORK/body.json" <<'PY'
import json, sys
manifest = json.load(open(sys.argv[1]))
features = len(next(e for e in manifest["entries"] if e["instrument"] == "nvda-1999-2014")["features"])
window = [[0.1 * ((r + f) % 7 - 3) for f in range(features)] for r in range(32)]
body = {"instrument": "nvda-1999-2014", "timeframe": "1d", "window": window,
        "portfolio": {"cash": 1e6, "price": 20.0, "initial_equity": 1e6}}
json.dump(body, open(sys.argv[2], "w"))
PY
round() { # NAME, then serve's extra flags
  local name=$1
  shift
  "$BIN" "${S[@]}" serve --addr 127.0.0.1:0 --workers 0 "$@" >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 50); do grep -q listening "$WORK/serve.log" && break; sleep 0.1; done
  ADDR=$(grep -o 'http://[0-9.:]*' "$WORK/serve.log" | head -1)
  local auth=""
  if [ "$name" = oauth ]; then
    local token
    token=$(curl -sf -u "bench:$SECRET" -d grant_type=client_credentials "$ADDR/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    auth="Bearer $token"
  fi
  cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$auth"
wrk.body = io.open("$WORK/body.json"):read("*a")
LUA
  # One request first: the model loads on first use; that is not the steady state.
  curl -sf -X POST "$ADDR/v1/models/bench/1/decide" -H 'content-type: application/json' -H "Authorization: $auth" -d @"$WORK/body.json" >/dev/null
  echo "== $name"
  wrk -t 1 -c "$CONNECTIONS" -d "${SECONDS_}s" --latency -s "$WORK/post.lua" "$ADDR/v1/models/bench/1/decide"
  curl -s -H "Authorization: $auth" "$ADDR/metrics" | grep -E '^tradelab_decision_duration_seconds_(count|sum)'
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}
round oauth
round no-auth --insecure-no-auth
