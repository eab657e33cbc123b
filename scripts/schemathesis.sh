#!/usr/bin/env bash
# Schemathesis against a running Lavka: every operation of /api/openapi.json, every check
# (server errors, documented statuses, content types, response schemas, invalid data refused,
# valid data accepted, undocumented methods answered 405, auth enforced). Installs
# schemathesis (pinned) with pip into a venv kept outside the clone ($LAVKA_VENV, default
# /var/tmp/lavka-venv; created when missing), starts `lavka serve` in demo mode over a temp
# data dir with a known admin token (so the admin API is exercised too), runs, stops it.
# Bounded: --max-examples per operation, --max-time for the run, a hard `timeout` around it.
# Exits non-zero on any finding. Settings that the schema cannot express are in
# scripts/schemathesis.toml, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${LAVKA_VENV:-/var/tmp/lavka-venv}"
SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-120}"

if [ ! -x "$VENV/bin/st" ] || [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# `.ci/run` passes the binary `cargo test` just built (LAVKA_BIN), as for the browser tests.
if [ -n "${LAVKA_BIN:-}" ] && [ -x "$LAVKA_BIN" ]; then
  BIN="$LAVKA_BIN"
else
  echo "== cargo build"
  cargo build --locked --bin lavka
  BIN="$CARGO_TARGET_DIR/debug/lavka"
fi

WORK=$(mktemp -d)
cleanup() {
  [ -f "$WORK/lavka.pid" ] && kill "$(cat "$WORK/lavka.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LAVKA_ADMIN_TOKEN=schemathesis-admin-token-0123
mkdir -p "$WORK/data"
NO_COLOR=1 LAVKA_SEMANTIC_SEARCH=false LAVKA_SCHEDULER=false \
  "$BIN" --data-dir "$WORK/data" serve --listen "127.0.0.1:$PORT" >"$WORK/lavka.log" 2>&1 &
echo $! >"$WORK/lavka.pid"
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$BASE/healthz" >/dev/null || { echo "lavka did not start:"; cat "$WORK/lavka.log"; exit 1; }

# One demo-mode customer for the whole run (a call without the cookie is a new customer, who
# would not see the orders the run creates).
LAVKA_SESSION=$(curl -fsS -D - -o /dev/null "$BASE/api/me" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: lavka_session=\([^;]*\).*/\1/p')
[ -n "$LAVKA_SESSION" ] || { echo "no demo session cookie from /api/me"; exit 1; }
export LAVKA_SESSION

echo "== schemathesis $SCHEMATHESIS_VERSION against $BASE (at most $MAX_EXAMPLES examples per operation, ${MAX_TIME}s)"
status=0
(cd "$WORK" && timeout $((MAX_TIME + 180)) "$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run \
  "$BASE/api/openapi.json" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_TIME" \
  --request-timeout 10 \
  --seed "${SCHEMATHESIS_SEED:-20260101}" \
  --generation-database none \
  --no-color) || status=$?
if [ "$status" != 0 ]; then
  echo "== server log (warnings and errors)"; grep -E "WARN|ERROR" "$WORK/lavka.log" | tail -n 40 || true
fi
exit "$status"
