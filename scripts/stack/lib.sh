# Shared settings and helpers for the local stack scripts (sourced, never run).
# Everything the stack keeps lives in $STACK_DIR (.stack/ in the repository, git-ignored);
# only the FerretDB binary is cached outside the repository so every clone reuses it.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="$REPO_ROOT/.stack"

FERRETDB_VERSION="v1.24.2"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/supaneon-sync"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION"

PG_PORT="${SUPANEON_STACK_PG_PORT:-54329}"
API_PORT="${SUPANEON_STACK_API_PORT:-54330}"
MONGO_PORT="${SUPANEON_STACK_MONGO_PORT:-54331}"

# The user that owns and runs the Postgres clusters when the stack runs as root
# (Postgres refuses to run as root).
PG_OS_USER="postgres"

# Where the emulator keeps its state and the branch clusters' data directories. As root the
# clusters run as $PG_OS_USER, which must be able to enter that directory: .stack/neon normally,
# but when a parent of the repository is closed to other users (such as /root), a directory under
# /var/lib named after the repository's path. `down --purge` deletes either.
emulator_state_dir() {
  if is_root && [ -d "$STACK_DIR" ] && id -u "$PG_OS_USER" >/dev/null 2>&1 \
    && ! runuser -u "$PG_OS_USER" -- test -x "$STACK_DIR" 2>/dev/null; then
    printf '/var/lib/supaneon-sync/stack-%s/neon\n' "$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-16)"
  else
    printf '%s\n' "$STACK_DIR/neon"
  fi
}

log() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if is_root; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "'$*' needs root and sudo is not available; run it once as root, then retry"
  fi
}

# True when the pid in the given file belongs to a live (not zombie) process whose command line
# contains the given text: a pid file left from before a reboot may name someone else's process.
pid_alive() { # pid file, text expected in the process's command line
  local pid_file="$1" expected="$2" pid state
  [ -f "$pid_file" ] || return 1
  pid="$(cat "$pid_file" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != "Z" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expected"
}

# What the command line of each stack process contains (see pid_alive).
FERRETDB_MARK="--sqlite-url=file:$STACK_DIR/ferretdb/"
EMULATOR_MARK="test/support/neon-emulator/main.ts"

# True when something accepts TCP connections on 127.0.0.1:port.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints the last lines of a log file, indented, to help explain a failed start.
show_log_tail() {
  local file="$1"
  if [ -s "$file" ]; then
    printf 'stack: last lines of %s:\n' "$file" >&2
    tail -n 30 "$file" | sed 's/^/    /' >&2
  else
    printf 'stack: %s is empty or missing\n' "$file" >&2
  fi
}

# Finds the newest PostgreSQL server bindir (Debian layout), or prints nothing.
find_pg_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 0
}
