# Lavka: one static-ish binary on a small Debian base.
#   docker build -t lavka .
#   docker run -d -p 8080:8080 -v lavka-data:/data -e TELEGRAM_BOT_TOKEN=... lavka

# ---------- build ----------
FROM rust:1.95-slim-bookworm AS builder
# rust:*-slim already ships gcc and libc6-dev, which is all the C the
# dependencies (ring) need, so nothing else is installed here.
WORKDIR /src

# Dependencies first, against stub sources, so this layer is reused until
# Cargo.toml or Cargo.lock change. If the stub build ever fails (e.g. a new
# [[bench]] target whose file is not copied yet) the full build below still
# builds everything; only the caching is lost.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && (cargo build --release --locked \
     || echo "warning: dependency pre-build failed; the full build will do it") \
 && rm -rf src \
           target/release/lavka target/release/lavka.d \
           target/release/deps/lavka-* target/release/deps/liblavka-* \
           target/release/.fingerprint/lavka-*

# The real build. The crate's own fingerprints were removed above, so cargo
# rebuilds it whatever the copied files' timestamps are.
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/lavka /usr/local/bin/lavka

# ---------- runtime ----------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 lavka \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home \
            --home-dir /data --shell /usr/sbin/nologin lavka \
 && mkdir -p /data \
 && chown lavka:lavka /data

COPY --from=builder /usr/local/bin/lavka /usr/local/bin/lavka

ENV LAVKA_DATA_DIR=/data LAVKA_LISTEN=0.0.0.0:8080
WORKDIR /data
# Declared after the chown, so a fresh named volume starts out owned by lavka.
VOLUME /data
USER lavka
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["lavka", "healthcheck"]
ENTRYPOINT ["lavka"]
CMD ["serve"]
