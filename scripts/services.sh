# Shared by scripts/test and bench/run: starts (installing if needed) the
# services on loopback: PostgreSQL, Redis and the Kafka-compatible broker tansu.
# Source it from the repository root.
log() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

PG_URL="${THEATRE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
export THEATRE_TEST_PG_URL="$PG_URL"

ensure_postgres() {
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || start_postgres
  # Production runs autovacuum, and with it ANALYZE at moments nobody picks; a
  # plan that goes bad on fresh statistics must show up in the tests and the
  # bench, not only there. This machine's server comes with it off.
  if [ "$(psql "$PG_URL/postgres" -Atc 'show autovacuum')" != on ]; then
    log "turning PostgreSQL's autovacuum on"
    psql "$PG_URL/postgres" -qc "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
  fi
}

start_postgres() {
  log "starting PostgreSQL"
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -n1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # The suite connects as postgres over TCP without a password (local test machine only).
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  echo "PostgreSQL did not start" >&2; exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return; fi
  log "starting Redis"
  command -v redis-server >/dev/null || apt_install redis-server
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli ping 2>/dev/null | grep -q PONG && return; sleep 1; done
  echo "Redis did not start" >&2; exit 1
}

KAFKA_PORT=9092
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_kafka() {
  if port_open "$KAFKA_PORT"; then return; fi
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v tansu >/dev/null; then
    log "installing tansu (about 10 minutes the first time, then cached in ~/.cargo/bin)"
    cargo install tansu --locked --features dynostore,postgres
  fi
  log "starting tansu on 127.0.0.1:$KAFKA_PORT"
  mkdir -p target
  nohup tansu broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine memory://tansu/ >target/tansu.log 2>&1 &
  for _ in $(seq 1 60); do port_open "$KAFKA_PORT" && return; sleep 0.5; done
  echo "tansu did not start; see target/tansu.log" >&2; exit 1
}

drop_stale_test_databases() {
  psql "$PG_URL/postgres" -Atqc \
    "select datname from pg_database where datname like 'theatre_test_%' or datname like 'theatre_tpl_building_%'" 2>/dev/null |
    while read -r db; do psql "$PG_URL/postgres" -qc "drop database if exists \"$db\"" >/dev/null; done
}
