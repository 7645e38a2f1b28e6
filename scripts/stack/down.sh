#!/usr/bin/env bash
# Stops the local stack: the Neon emulator (which stops its branch clusters on SIGTERM), any branch
# cluster still running from its state directory, and FerretDB. Keeps .stack/ (certificates,
# generated secrets, emulator state) so the next `up` is a warm start; `--purge` deletes it too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=false
case "${1:-}" in
  "") ;;
  --purge) purge=true ;;
  *) die "unknown argument '$1'; usage: scripts/stack/down.sh [--purge]" ;;
esac

STOP_PID="$REPO_ROOT/scripts/stack/stop-pid.sh"

# Lists our ports that still have a TCP listener, on any local address (/proc, so no ss or lsof needed).
ports_still_listening() {
  local port hex
  for port in "$PG_PORT" "$API_PORT" "$MONGO_PORT"; do
    hex="$(printf '%04X' "$port")"
    if awk -v hex="$hex" '$4 == "0A" && $2 ~ (":" hex "$") { found = 1 } END { exit !found }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      printf '%s ' "$port"
    fi
  done
}

if [ -d "$STACK_DIR" ]; then
  bash "$STOP_PID" "$STACK_DIR/emulator.pid" "$EMULATOR_MARK" "Neon emulator" 60
  bash "$REPO_ROOT/scripts/stack/stop-clusters.sh"
  bash "$STOP_PID" "$STACK_DIR/ferretdb.pid" "$FERRETDB_MARK" FerretDB 30
  # The settings describe processes that no longer run; `up` writes them again.
  rm -f "$STACK_DIR/env" "$STACK_DIR/env.tmp"
fi

busy="$(ports_still_listening)"
if [ -n "$busy" ]; then
  log "warning: something still listens on port(s) $busy; it was not started by this stack (or by this clone of it)"
fi

if $purge; then
  emulator_state="$(emulator_state_dir)"
  case "$emulator_state" in
    "$STACK_DIR"/*) ;;
    *)
      rm -rf "$(dirname "$emulator_state")"
      rmdir --ignore-fail-on-non-empty "$(dirname "$(dirname "$emulator_state")")"
      ;;
  esac
  rm -rf "$STACK_DIR"
  log "down: stopped and deleted $STACK_DIR"
else
  log "down: stopped (state kept in $STACK_DIR for a fast next start; --purge deletes it)"
fi
