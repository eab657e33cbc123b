#!/usr/bin/env bash
# Lavka's store against "the Postgres design", side by side on this machine: the same two
# RPCs — reserve an item for a purchase, then complete the purchase with a payment — as
# PL/pgSQL functions on a throwaway PostgreSQL (default durability: fsync on,
# synchronous_commit on), driven by pgbench; then `lavka bench store` for the same seconds.
# Runs alternate (Postgres, Lavka, Postgres, …) so a drift in the disk's flush speed hits
# both; the table shows medians and the ratio Lavka / Postgres. See docs/store-benchmarks.md.
#
#   cargo build --release && scripts/bench-postgres.sh [target/release/lavka]
#
# Env: SECONDS_PER_RUN (10), RUNS (3), CLIENTS ("1 32"), PG_BIN (/usr/local/bin),
# PGBENCH (/usr/bin/pgbench), PG_PORT (55432). Not run in CI: it takes minutes.
set -euo pipefail

LAVKA=${1:-target/release/lavka}
SECS=${SECONDS_PER_RUN:-10}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-"1 32"}
PG_BIN=${PG_BIN:-/usr/local/bin}
PGBENCH=${PGBENCH:-/usr/bin/pgbench}
PORT=${PG_PORT:-55432}
[ -x "$LAVKA" ] || { echo "no lavka binary at $LAVKA (cargo build --release)" >&2; exit 1; }
for b in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/postgres" "$PGBENCH"; do
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lavka-pg-bench.XXXXXX")
# PostgreSQL refuses to run as root: the server runs as the `postgres` user then.
AS=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "running as root needs a 'postgres' user" >&2; exit 1; }
    AS=(runuser -u postgres --)
    chown postgres "$WORK"
fi
DATA=$WORK/pgdata
cleanup() {
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"${AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U bench --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log"; exit 1; }
# Defaults everywhere (fsync, synchronous_commit, wal_sync_method); only where it listens.
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $WORK -c max_connections=100" start >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U bench)
command -v psql >/dev/null || PSQL=("$PG_BIN/psql" "${PSQL[@]:1}")
"${PSQL[@]}" -d postgres -c "CREATE DATABASE shop"

"${PSQL[@]}" -d shop <<'SQL'
CREATE TABLE products (
    id text PRIMARY KEY, title text NOT NULL, price bigint NOT NULL CHECK (price > 0),
    currency text NOT NULL, discount_percent int NOT NULL DEFAULT 0, active boolean NOT NULL DEFAULT true);
CREATE TABLE users (id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, product_id text NOT NULL REFERENCES products,
    status text NOT NULL, quantity int NOT NULL, amount bigint NOT NULL, currency text NOT NULL,
    stock_item_ids bigint[] NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz, paid_at timestamptz, payment_provider text, payment_external_id text);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status_deadline ON orders (status, expires_at) WHERE status IN ('reserved', 'awaiting_payment');
CREATE TABLE stock_items (
    id bigserial PRIMARY KEY, product_id text NOT NULL REFERENCES products, content text NOT NULL,
    state text NOT NULL DEFAULT 'available', order_id bigint REFERENCES orders);
CREATE INDEX stock_available ON stock_items (product_id, id) WHERE state = 'available';
CREATE TABLE payments (
    provider text NOT NULL, external_id text NOT NULL, order_id bigint NOT NULL REFERENCES orders,
    user_id bigint NOT NULL, amount bigint NOT NULL, currency text NOT NULL, outcome text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (provider, external_id));
CREATE TABLE ledger (
    seq bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, amount bigint NOT NULL,
    currency text NOT NULL, reason text NOT NULL, order_id bigint, at timestamptz NOT NULL DEFAULT now());
-- The delivery job, enqueued in the payment's transaction (Lavka's transactional outbox).
CREATE TABLE jobs (
    id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, dedupe_key text UNIQUE,
    state text NOT NULL DEFAULT 'ready', run_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state = 'ready';

-- One transaction each, the same checks as Lavka's store::orders.
CREATE FUNCTION reserve_product_for_purchase(p_user bigint, p_product text, p_qty int, p_ttl_secs int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    p products%ROWTYPE;
    ids bigint[];
    oid bigint;
BEGIN
    IF p_qty < 1 OR p_qty > 10 THEN RAISE EXCEPTION 'quantity must be 1-10'; END IF;
    SELECT * INTO p FROM products WHERE id = p_product;
    IF NOT FOUND OR NOT p.active THEN RAISE EXCEPTION 'product % is not on sale', p_product; END IF;
    SELECT array_agg(id) INTO ids FROM (
        SELECT id FROM stock_items WHERE product_id = p_product AND state = 'available'
        ORDER BY id LIMIT p_qty FOR UPDATE SKIP LOCKED) s;
    IF coalesce(array_length(ids, 1), 0) < p_qty THEN RAISE EXCEPTION 'out of stock: %', p_product; END IF;
    INSERT INTO users (id) VALUES (p_user) ON CONFLICT DO NOTHING;
    INSERT INTO orders (user_id, product_id, status, quantity, amount, currency, stock_item_ids, expires_at)
    VALUES (p_user, p_product, 'reserved', p_qty, (p.price * (100 - p.discount_percent) + 50) / 100 * p_qty,
            p.currency, ids, now() + make_interval(secs => p_ttl_secs))
    RETURNING id INTO oid;
    UPDATE stock_items SET state = 'reserved', order_id = oid WHERE id = ANY (ids);
    RETURN oid;
END $$;

CREATE FUNCTION complete_purchase(p_order bigint, p_provider text, p_external_id text, p_amount bigint, p_currency text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    n int;
BEGIN
    -- A payment applies once per (provider, external id).
    PERFORM 1 FROM payments WHERE provider = p_provider AND external_id = p_external_id;
    IF FOUND THEN RETURN 'duplicate'; END IF;
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND THEN RAISE EXCEPTION 'order % not found', p_order; END IF;
    IF o.status <> 'reserved' THEN RAISE EXCEPTION 'order % is %', p_order, o.status; END IF;
    IF o.amount <> p_amount OR o.currency <> p_currency THEN RAISE EXCEPTION 'amount mismatch'; END IF;
    UPDATE stock_items SET state = 'sold'
    WHERE id = ANY (o.stock_item_ids) AND state = 'reserved' AND order_id = p_order;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> o.quantity THEN RAISE EXCEPTION 'order % holds % items, not %', p_order, n, o.quantity; END IF;
    UPDATE orders SET status = 'paid', paid_at = now(), payment_provider = p_provider,
                      payment_external_id = p_external_id
    WHERE id = p_order;
    INSERT INTO payments (provider, external_id, order_id, user_id, amount, currency, outcome)
    VALUES (p_provider, p_external_id, p_order, o.user_id, p_amount, p_currency, 'applied');
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('deliver_order', jsonb_build_object('order_id', p_order), 'deliver:' || p_order);
    RETURN 'applied';
END $$;

-- The invariants `lavka check` verifies that apply here.
CREATE FUNCTION check_invariants() RETURNS bigint LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM stock_items s WHERE s.state = 'sold'
                AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = s.order_id AND o.status = 'paid'))
         + (SELECT count(*) FROM (SELECT i FROM (SELECT unnest(stock_item_ids) i FROM orders) x
                GROUP BY i HAVING count(*) > 1) twice)
         + (SELECT count(*) FROM orders o WHERE o.status = 'paid'
                AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.dedupe_key = 'deliver:' || o.id))
$$;
SQL

cat >"$WORK/purchase.sql" <<'SQL'
SELECT reserve_product_for_purchase(:client_id + 1, 'bench-key', 1, 900) AS oid \gset
SELECT complete_purchase(:oid, 'bench', 'pay-' || :oid, 10000, 'RUB');
SQL

# A fresh shop before every run, as `lavka bench store` starts from a fresh store.
reset_pg() {
    "${PSQL[@]}" -d shop <<SQL
TRUNCATE jobs, payments, ledger, stock_items, orders, users, products RESTART IDENTITY;
INSERT INTO products (id, title, price, currency) VALUES ('bench-key', 'Bench key', 10000, 'RUB');
INSERT INTO stock_items (product_id, content)
    SELECT 'bench-key', 'KEY-' || lpad(g::text, 9, '0') FROM generate_series(1, greatest($SECS * 20000, 20000)) g;
VACUUM ANALYZE;
CHECKPOINT;
SQL
}

# One 8 KiB synchronous write, ms (the disk's flush speed swings minute to minute).
fsync_ms() {
    python3 - "$WORK" <<'PY'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_DSYNC)
t = time.perf_counter()
for _ in range(100):
    os.write(fd, b"\0" * 8192)
os.close(fd); os.remove(p)
print(f"{(time.perf_counter() - t) * 10:.2f}")
PY
}

RESULTS=$WORK/results.tsv
for c in $CLIENTS; do
    j=$((c < 2 ? 1 : 2))
    for r in $(seq "$RUNS"); do
        reset_pg
        f=$(fsync_ms)
        out=$("$PGBENCH" -n -M prepared -c "$c" -j "$j" -T "$SECS" -f "$WORK/purchase.sql" \
            -h 127.0.0.1 -p "$PORT" -U bench shop 2>&1) || { echo "$out"; exit 1; }
        tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
        lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
        bad=$("${PSQL[@]}" -d shop -At -c "SELECT check_invariants()")
        [ "${bad:-0}" = 0 ] || { echo "postgres invariants broken: $bad" >&2; exit 1; }
        printf 'postgres\t%s\t%s\t%s\t%s\n' "$c" "$tps" "$lat" "$f" | tee -a "$RESULTS"
        json=$("$LAVKA" bench store --buyers "$c" --seconds "$SECS")
        echo "$json" | python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
assert v["invariants"] == "ok" and v["oversold"] == 0, v
print("lavka\t%d\t%s\t%s\t%s\t%s\t%s\t%s" % (v["buyers"], v["purchases_per_sec"], v["p50_ms"],
      v["fsync_ms_before"], v["writer_cpu_us_per_op"], v["ops_per_commit"], v["commit_flush_wait_ms_avg"]))
' | tee -a "$RESULTS"
    done
done

python3 - "$RESULTS" "$SECS" "$RUNS" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
med = lambda xs: st.median(float(x) for x in xs)
print(f"\nmedians of {sys.argv[3]} runs of {sys.argv[2]} s (purchase = reserve + complete, two durable commits)\n")
print("| buyers | Postgres purchases/s | Lavka purchases/s | Lavka / Postgres | Lavka writer CPU µs/op | ops/commit | flush wait ms/commit | fsync ms (8 KiB) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in sorted({int(r[1]) for r in rows}):
    pg = [r for r in rows if r[0] == "postgres" and int(r[1]) == c]
    lv = [r for r in rows if r[0] == "lavka" and int(r[1]) == c]
    p, l = med(r[2] for r in pg), med(r[2] for r in lv)
    f = med([r[4] for r in pg] + [r[4] for r in lv])
    print(f"| {c} | {p:,.0f} | {l:,.0f} | {l / p:.2f}× | {med(r[5] for r in lv):.1f} | "
          f"{med(r[6] for r in lv):.1f} | {med(r[7] for r in lv):.2f} | {f:.2f} |")
PY
