#!/usr/bin/env bash
# Browser tests: the shop (search, product, buy, pay with the dev provider, goods shown), the
# consultant chat, the admin page, and the Mini App inside (a mocked) Telegram — in Debian's
# chromium driven by playwright-core. Installs what is missing (chromium via apt-get,
# playwright-core via npm ci), builds the debug binary, starts `lavka serve` twice on free
# ports over temp data dirs (demo mode; and with a bot token and Stars for the Telegram test), runs
# tests/browser/run.mjs and stops the servers. Screenshots: $SCREENSHOTS (default
# target/screenshots). Bounded: every wait has a timeout, the whole run is capped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export SCREENSHOTS="${SCREENSHOTS:-$ROOT/target/screenshots}"

if ! command -v chromium >/dev/null; then
  echo "== installing chromium (apt-get)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== npm ci (playwright-core)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# `.ci/run` passes the binary `cargo test` just built (LAVKA_BIN): building it again without
# the dev-dependencies would recompile crates whose features differ, for minutes.
if [ -n "${LAVKA_BIN:-}" ] && [ -x "$LAVKA_BIN" ]; then
  BIN="$LAVKA_BIN"
else
  echo "== cargo build"
  cargo build --locked --bin lavka
  BIN="$CARGO_TARGET_DIR/debug/lavka"
fi

WORK=$(mktemp -d)
# Every background process leaves its pid in $WORK/*.pid (`start` runs in a command
# substitution's subshell, where a shell array would not survive).
cleanup() {
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME [ENV...]: serves on a free port, waits for /healthz, prints the base URL.
start() {
  local name=$1; shift
  local port; port=$(free_port)
  mkdir -p "$WORK/$name"
  env LAVKA_SEMANTIC_SEARCH=false LAVKA_ADMIN_TOKEN=browser-test-admin-token-0123 "$@" \
    "$BIN" --data-dir "$WORK/$name" serve --listen "127.0.0.1:$port" >"$WORK/$name.log" 2>&1 &
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      echo "http://127.0.0.1:$port"; return 0
    fi
    sleep 0.2
  done
  echo "lavka ($name) did not start:" >&2; cat "$WORK/$name.log" >&2; return 1
}

BASE=$(start demo)
# The Telegram instance: a bot token (so initData can be checked), Telegram Stars as its
# provider, and a stand-in Bot API (tests/browser/fake-bot-api.mjs); no public URL, so it
# long-polls.
TG_TOKEN="123456:browser-test-token"
BOT_PORT=$(free_port)
node tests/browser/fake-bot-api.mjs "$BOT_PORT" >"$WORK/bot-api.log" 2>&1 &
echo $! >"$WORK/bot-api.pid"
TG_BASE=$(start telegram LAVKA_TELEGRAM_TOKEN="$TG_TOKEN" LAVKA_TELEGRAM_API_URL="http://127.0.0.1:$BOT_PORT" \
  LAVKA_PAYMENTS__STARS_PER_UNIT=1)

echo "== browser tests against $BASE (and $TG_BASE inside a mocked Telegram)"
rm -rf "$SCREENSHOTS"
status=0
LAVKA_BASE=$BASE LAVKA_TG_BASE=$TG_BASE LAVKA_TG_TOKEN=$TG_TOKEN LAVKA_ADMIN_TOKEN=browser-test-admin-token-0123 \
  timeout 300 node tests/browser/run.mjs || status=$?
if [ "$status" != 0 ]; then
  echo "== server logs (last lines)"; tail -n 30 "$WORK"/*.log
fi
exit "$status"
