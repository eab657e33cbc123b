#!/usr/bin/env bash
# Writes a data directory with an OLDER Lavka binary, for the upgrade test
# (tests/integration/upgrade.rs): every kind of record that binary keeps, in every state it
# can leave them — delivered, refunded, pre-ordered and waiting, reserved, paid with the
# delivery job still queued, a short payment credited to the balance, a manual credit.
#
#   git worktree add /tmp/lavka-old <commit>
#   (cd /tmp/lavka-old && cargo build --bin lavka)
#   scripts/make-upgrade-fixture.sh /tmp/lavka-old/target/debug/lavka tests/fixtures/upgrade/<name>
#
# Only the admin API of that first version is used, so any later binary can make one too.
set -euo pipefail

BIN=${1:?usage: make-upgrade-fixture.sh OLD_LAVKA_BINARY OUT_DIR}
OUT=${2:?usage: make-upgrade-fixture.sh OLD_LAVKA_BINARY OUT_DIR}
PORT=${PORT:-18093}
DATA=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT

export LAVKA_ADMIN_TOKEN=upgrade-fixture-admin-token
export LAVKA_LISTEN=127.0.0.1:$PORT
BASE=http://127.0.0.1:$PORT

start() {
    "$BIN" --data-dir "$DATA" serve >>"$DATA/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        curl -sf "$BASE/healthz" >/dev/null && return 0
        sleep 0.2
    done
    cat "$DATA/serve.log"
    exit 1
}

stop() {
    kill -TERM "$PID"
    wait "$PID" || true
}

api() { # METHOD PATH [JSON]
    curl -sf -X "$1" -H "Authorization: Bearer $LAVKA_ADMIN_TOKEN" -H 'content-type: application/json' \
        ${3:+--data "$3"} "$BASE/admin/api$2"
}

order() { # USER PRODUCT [KIND] -> order id
    api POST /orders "{\"user_id\": $1, \"product_id\": \"$2\", \"kind\": \"${3:-instant}\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["order"]["id"])'
}

status() { api GET "/orders/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["order"]["status"])'; }

wait_status() { # ORDER STATUS
    for _ in $(seq 100); do
        [ "$(status "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    echo "order $1 never reached $2 (is $(status "$1"))" >&2
    exit 1
}

# Phase 1: workers on (the demo catalogue is imported on the first start).
start
delivered=$(order 1001 win11-home)
api POST "/orders/$delivered/confirm-payment" >/dev/null
wait_status "$delivered" delivered

refunded=$(order 1002 office-365-personal prepaid)
api POST "/orders/$refunded/confirm-payment" >/dev/null
wait_status "$refunded" prepaid
api POST "/orders/$refunded/refund" '{"reason": "supplier out of stock"}' >/dev/null

fulfilled=$(order 1003 chatgpt-plus-1m prepaid)
api POST "/orders/$fulfilled/confirm-payment" >/dev/null
wait_status "$fulfilled" prepaid
api POST "/orders/$fulfilled/fulfill" '{"content": "CHATGPT-FIXTURE-ACCOUNT"}' >/dev/null
wait_status "$fulfilled" delivered

waiting=$(order 1004 photoshop-12m prepaid)
api POST "/orders/$waiting/confirm-payment" >/dev/null
wait_status "$waiting" prepaid

short=$(order 1005 vpn-12m)
api POST "/orders/$short/confirm-payment" '{"amount": "100", "reference": "bank-short-1"}' >/dev/null

api POST /users/1006/credit '{"amount": "777", "reason": "goodwill"}' >/dev/null
reserved=$(order 1007 steam-random-key)
stop

# Phase 2: no workers, so a paid order's delivery job stays queued.
LAVKA_WORKERS=0 start
queued=$(order 1008 ppt-minimal-pack)
api POST "/orders/$queued/confirm-payment" >/dev/null
wait_status "$queued" paid
stop

"$BIN" --data-dir "$DATA" check >/dev/null
mkdir -p "$OUT"
cp "$DATA/lavka.redb" "$OUT/lavka.redb"
cat >"$OUT/orders.json" <<EOF
{"written_at": $(date +%s%3N), "delivered": $delivered, "refunded": $refunded, "fulfilled": $fulfilled, "waiting": $waiting,
 "short_payment": $short, "reserved": $reserved, "queued_delivery": $queued}
EOF
echo "fixture written to $OUT ($(du -h "$OUT/lavka.redb" | cut -f1))"
