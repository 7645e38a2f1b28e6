#!/usr/bin/env bash
# Brings the local stack up (or confirms it is up) and writes .stack/env:
#   - FerretDB (MongoDB wire protocol) on 127.0.0.1:$MONGO_PORT, unless MONGODB_TEST_URI names a server
#   - the Neon API emulator on 127.0.0.1:$API_PORT, which runs one real PostgreSQL cluster per branch
#     on 127.0.0.N:$PG_PORT (TLS with the stack's CA, scram-sha-256)
# Idempotent: running processes that answer their health checks are reused. See docs/LOCAL-STACK.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START_TIMEOUT_SECONDS="${SUPANEON_STACK_START_TIMEOUT:-120}"
PROBE="$REPO_ROOT/scripts/stack/probe.mjs"

FERRETDB_PID="$STACK_DIR/ferretdb.pid"
FERRETDB_LOG="$STACK_DIR/ferretdb.log"
FERRETDB_DATA="$STACK_DIR/ferretdb"
EMULATOR_PID="$STACK_DIR/emulator.pid"
EMULATOR_LOG="$STACK_DIR/emulator.log"
TLS_DIR="$STACK_DIR/tls"

# ---------------------------------------------------------------------------------------------
# Prerequisites: installed once, reused afterwards.

ensure_node_modules() {
  [ -x "$REPO_ROOT/node_modules/.bin/tsx" ] && [ -d "$REPO_ROOT/node_modules/mongodb" ] \
    || die "node_modules is missing or incomplete in $REPO_ROOT; run 'npm ci' first"
}

ensure_apt_package() { # package
  log "installing Debian package '$1' (needed by the stack)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

ensure_openssl() {
  command -v openssl >/dev/null 2>&1 || ensure_apt_package openssl
  command -v openssl >/dev/null 2>&1 || die "openssl is still missing after installing it; install it by hand and retry"
}

ensure_postgres() {
  PG_BINDIR="$(find_pg_bindir)"
  if [ -z "$PG_BINDIR" ]; then
    ensure_apt_package postgresql
    PG_BINDIR="$(find_pg_bindir)"
  fi
  [ -n "$PG_BINDIR" ] || die "no PostgreSQL server found in /usr/lib/postgresql/*/bin after installing 'postgresql'; install it by hand and retry"
}

# As root, the clusters run as $PG_OS_USER, which must exist.
ensure_pg_os_user() {
  is_root || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating the OS user '$PG_OS_USER' that runs the PostgreSQL clusters"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
}

# Values generated once and kept, so a warm start finds the same project, key and password that
# the emulator's saved state was created with.
stored_value() { # file, generator command...
  local file="$STACK_DIR/$1"
  shift
  if [ ! -s "$file" ]; then
    (umask 077 && "$@" >"$file.tmp" && mv -f "$file.tmp" "$file")
  fi
  chmod 0600 "$file"
  cat "$file"
}
random_hex() { openssl rand -hex "$1"; }
random_project_id() { printf 'local-stack-%08d\n' "$(( $(od -An -N4 -tu4 /dev/urandom) % 100000000 ))"; }

# ---------------------------------------------------------------------------------------------
# Processes

wait_until() { # description, log file, pid file, command-line mark, probe command...
  local what="$1" logfile="$2" pidfile="$3" mark="$4" deadline=$((SECONDS + START_TIMEOUT_SECONDS))
  shift 4
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$pidfile" "$mark"; then
      show_log_tail "$logfile"
      die "$what exited during start-up; its log is $logfile"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_log_tail "$logfile"
      die "$what did not become ready within ${START_TIMEOUT_SECONDS}s (raise SUPANEON_STACK_START_TIMEOUT to wait longer); its log is $logfile"
    fi
    sleep 0.2
  done
}

# Refuses to start on a port that something other than our own process already holds.
require_free_port() { # port, env var that overrides it, what wants it
  if port_open "$1"; then
    die "port $1 (wanted by $3) is already in use by another program; stop it or choose another port with $2"
  fi
}

start_background() { # pid file, log file, command... (runs in its own session, detached from ours)
  local pidfile="$1" logfile="$2"
  shift 2
  : >"$logfile"
  # 8 and 9 are lock descriptors: a long-lived child holding them would block every later `up`.
  setsid "$@" </dev/null >>"$logfile" 2>&1 8>&- 9>&- &
  echo $! >"$pidfile"
}

ferretdb_ready() { port_open "$MONGO_PORT" && node "$PROBE" mongo "$MONGODB_SRV_URL"; }

ensure_ferretdb() {
  if [ -n "${MONGODB_TEST_URI:-}" ]; then
    MONGODB_SRV_URL="$MONGODB_TEST_URI"
    log "MONGODB_TEST_URI is set: using that MongoDB server, not starting FerretDB"
    node "$PROBE" mongo "$MONGODB_SRV_URL" >/dev/null \
      || die "the MongoDB server in MONGODB_TEST_URI does not answer a ping; check that it runs and that the URI is right"
    return 0
  fi
  MONGODB_SRV_URL="mongodb://127.0.0.1:$MONGO_PORT/"
  if pid_alive "$FERRETDB_PID" "$FERRETDB_MARK" && ferretdb_ready; then
    log "FerretDB already running on 127.0.0.1:$MONGO_PORT"
    return 0
  fi
  stop_pid_file "$FERRETDB_PID" "$FERRETDB_MARK" FerretDB
  bash "$REPO_ROOT/scripts/stack/ferretdb.sh"
  require_free_port "$MONGO_PORT" SUPANEON_STACK_MONGO_PORT FerretDB
  mkdir -p "$FERRETDB_DATA"
  log "starting FerretDB on 127.0.0.1:$MONGO_PORT"
  start_background "$FERRETDB_PID" "$FERRETDB_LOG" "$FERRETDB_BIN" \
    --handler=sqlite --sqlite-url="file:$FERRETDB_DATA/" \
    --listen-addr="127.0.0.1:$MONGO_PORT" \
    --state-dir=- --telemetry=disable --debug-addr=- --log-level=warn
  wait_until FerretDB "$FERRETDB_LOG" "$FERRETDB_PID" "$FERRETDB_MARK" ferretdb_ready
}

emulator_health() { node "$PROBE" http "http://127.0.0.1:$API_PORT/__emulator/health"; }

# The hash the emulator reports of its own sources (server.ts emulatorSourceHash: the .ts files of
# its folder in byte order, then devkit/latency-proxy.ts, which it imports, concatenated), so a
# running emulator older than the checkout is restarted.
emulator_source_hash() {
  (cd "$REPO_ROOT/test/support/neon-emulator" && { LC_ALL=C ls -- *.ts | LC_ALL=C sort | xargs cat; cat ../../../devkit/latency-proxy.ts; } | sha256sum | cut -d' ' -f1)
}

ensure_emulator() {
  local health
  if pid_alive "$EMULATOR_PID" "$EMULATOR_MARK" && health="$(emulator_health 2>/dev/null)"; then
    if [[ "$health" != *"\"sourceHash\":\"$(emulator_source_hash)\""* ]]; then
      log "the running Neon emulator is older than test/support/neon-emulator: restarting it"
    elif [ "$TLS_DIR/server.crt" -nt "$EMULATOR_PID" ]; then
      # Clusters load the certificate when they start: a regenerated one needs them restarted.
      log "the stack's certificate was regenerated after the Neon emulator started: restarting it"
    else
      log "Neon emulator already running on 127.0.0.1:$API_PORT"
      return 0
    fi
  fi
  stop_pid_file "$EMULATOR_PID" "$EMULATOR_MARK" "Neon emulator"
  # Clusters left running by an emulator that died would hold the endpoint addresses.
  bash "$REPO_ROOT/scripts/stack/stop-clusters.sh"
  [ -f "$REPO_ROOT/test/support/neon-emulator/main.ts" ] \
    || die "the Neon emulator is missing: $REPO_ROOT/test/support/neon-emulator/main.ts does not exist"
  require_free_port "$API_PORT" SUPANEON_STACK_API_PORT "the Neon emulator"
  mkdir -p "$EMULATOR_STATE"
  log "starting the Neon emulator on 127.0.0.1:$API_PORT (branch endpoints on 127.0.0.N:$PG_PORT)"
  (
    cd "$REPO_ROOT"
    export EMULATOR_PORT="$API_PORT"
    export EMULATOR_API_KEY="$API_KEY"
    export EMULATOR_PROJECT_ID="$PROJECT_ID"
    export EMULATOR_STATE_DIR="$EMULATOR_STATE"
    export EMULATOR_TLS_CERT="$TLS_DIR/server.crt"
    export EMULATOR_TLS_KEY="$TLS_DIR/server.key"
    export EMULATOR_CA_CERT="$TLS_DIR/ca.crt"
    export EMULATOR_PG_PORT="$PG_PORT"
    export EMULATOR_PG_BINDIR="$PG_BINDIR"
    export EMULATOR_PG_USER="$(is_root && echo "$PG_OS_USER" || true)"
    export EMULATOR_ROLE="neondb_owner"
    export EMULATOR_ROLE_PASSWORD="$ROLE_PASSWORD"
    export EMULATOR_DATABASE="neondb"
    export EMULATOR_OPERATION_DELAY_MS="${EMULATOR_OPERATION_DELAY_MS:-200}"
    export EMULATOR_BRANCH_LIMIT="${EMULATOR_BRANCH_LIMIT:-10}"
    start_background "$EMULATOR_PID" "$EMULATOR_LOG" node --import tsx test/support/neon-emulator/main.ts
  )
  wait_until "the Neon emulator" "$EMULATOR_LOG" "$EMULATOR_PID" "$EMULATOR_MARK" emulator_health
}

# Stops a process of ours left from an earlier run that no longer answers its health check.
stop_pid_file() { # pid file, command-line mark, name
  pid_alive "$1" "$2" || { rm -f "$1"; return 0; }
  log "$3 (pid $(cat "$1")) does not answer; restarting it"
  bash "$REPO_ROOT/scripts/stack/stop-pid.sh" "$1" "$2" "$3"
}

# ---------------------------------------------------------------------------------------------
# .stack/env

shell_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

write_env() {
  local health default_host
  health="$(emulator_health)"
  default_host="$(printf '%s' "$health" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const host = JSON.parse(s).defaultHost;
      if (typeof host !== "string" || host === "") process.exit(1);
      process.stdout.write(host);
    });')" || die "the Neon emulator's health answer has no defaultHost: $health"

  local file="$STACK_DIR/env" tmp="$STACK_DIR/env.tmp"
  (
    umask 077
    {
      echo "# Written by scripts/stack/up.sh: the local stack's connection settings. Source it in a shell."
      for pair in \
        "MONGODB_SRV_URL=$MONGODB_SRV_URL" \
        "NEON_API_KEY=$API_KEY" \
        "NEON_PROJECT_ID=$PROJECT_ID" \
        "NEON_API_HOST=http://127.0.0.1:$API_PORT/api/v2" \
        "NEON_DATABASE_URL=postgresql://neondb_owner:$ROLE_PASSWORD@$default_host:$PG_PORT/neondb?sslmode=require" \
        "NODE_EXTRA_CA_CERTS=$TLS_DIR/ca.crt" \
        "SUPANEON_STACK_CA=$TLS_DIR/ca.crt" \
        "SUPANEON_STACK_WRONG_CA=$TLS_DIR/wrong-ca.crt" \
        "SUPANEON_STACK_DIR=$STACK_DIR" \
        "SUPANEON_STACK_API_KEY=$API_KEY"; do
        printf 'export %s=%s\n' "${pair%%=*}" "$(shell_quote "${pair#*=}")"
      done
    } >"$tmp"
  )
  mv -f "$tmp" "$file"
}

# ---------------------------------------------------------------------------------------------

mkdir -p "$STACK_DIR"
chmod 0755 "$STACK_DIR"
# One `up` at a time: a test run and a shell may both ask for the stack.
exec 8>"$STACK_DIR/up.lock"
flock -w "$((START_TIMEOUT_SECONDS * 3))" 8 \
  || die "another 'stack:up' has held $STACK_DIR/up.lock for $((START_TIMEOUT_SECONDS * 3))s; if none runs, delete the file and retry"

ensure_node_modules
ensure_openssl
ensure_postgres
ensure_pg_os_user
bash "$REPO_ROOT/scripts/stack/certs.sh"
EMULATOR_STATE="$(emulator_state_dir)"
if [ "$EMULATOR_STATE" != "$STACK_DIR/neon" ]; then
  log "the '$PG_OS_USER' user cannot enter $STACK_DIR (a parent directory is closed to other users); branch clusters live in $EMULATOR_STATE"
fi

API_KEY="$(stored_value api-key random_hex 32)"
ROLE_PASSWORD="$(stored_value role-password random_hex 24)"
PROJECT_ID="$(stored_value project-id random_project_id)"

ensure_ferretdb
ensure_emulator
write_env
log "up: MongoDB $( [ -n "${MONGODB_TEST_URI:-}" ] && echo 'from MONGODB_TEST_URI' || echo "127.0.0.1:$MONGO_PORT (FerretDB)" ), Neon API http://127.0.0.1:$API_PORT/api/v2, Postgres endpoints 127.0.0.N:$PG_PORT"
log "settings in $STACK_DIR/env (source it: . .stack/env)"
