#!/usr/bin/env bash
# Time to ready of `tradelab serve` on a fresh database: connect, migrate,
# initialise the authorization server (signing key, first administrator
# with an argon2id hash, the CLI's client) and listen. RUNS starts each on
# SQLite (a new file) and, when PostgreSQL answers on 127.0.0.1:5432 with a
# self-signed certificate for localhost, on a new PostgreSQL database over
# sslmode=verify-full. Prints the server's own "ready in" figure and the
# wall time from exec to its first line (which includes process start and
# settings), medians of RUNS.
#
#   scripts/bench/serve_ready.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-9}
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet
BIN=$ROOT/target/release/tradelab

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # URL -> "ready_ms wall_ms"
  local start end line
  start=$(date +%s%N)
  coproc SRV { TRADELAB_DATABASE_URL=$1 TRADELAB_ADMIN_PASSWORD=bench-admin-password exec "$BIN" --set "data.raw_dir=$ROOT/data/raw" serve --addr 127.0.0.1:0 --workers 0 2>/dev/null; }
  read -r line <&"${SRV[0]}"
  end=$(date +%s%N)
  kill "$SRV_PID"
  wait "$SRV_PID" 2>/dev/null || true
  echo "$(sed -n 's/.*ready in \([0-9]*\) ms.*/\1/p' <<<"$line") $(((end - start) / 1000000))"
}

report() { # NAME, then lines of "ready wall"
  local name=$1 data
  data=$(cat)
  echo "$name: ready in $(cut -d' ' -f1 <<<"$data" | median) ms (server's figure), $(cut -d' ' -f2 <<<"$data" | median) ms from exec, median of $RUNS"
}

for i in $(seq "$RUNS"); do measure "sqlite://$WORK/ready-$i.db"; done | report "SQLite (new file)"

PG=postgres://postgres@127.0.0.1:5432/test
CERT=$(psql "$PG" -Atc 'show ssl_cert_file' 2>/dev/null || true)
if [ -n "$CERT" ] && [ "$(psql "$PG" -Atc 'show ssl' 2>/dev/null)" = on ]; then
  for i in $(seq "$RUNS"); do
    db=tradelab_ready_$i
    PGOPTIONS="-c client_min_messages=warning" psql "$PG" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    measure "postgres://postgres@localhost:5432/$db?sslmode=verify-full&sslrootcert=$CERT"
    psql "$PG" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
  done | report "PostgreSQL over verify-full TLS (new database)"
else
  echo "PostgreSQL with TLS not available: skipped"
fi
