#!/usr/bin/env bash
# Stops the process recorded in a pid file: SIGTERM, then SIGKILL if it has not exited in time.
# Only the recorded process is signalled, and only if its command line still shows it is ours.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pid_file="$1"
mark="$2"
name="$3"
grace_seconds="${4:-30}"

if ! pid_alive "$pid_file" "$mark"; then
  rm -f "$pid_file"
  exit 0
fi
pid="$(cat "$pid_file")"
kill -TERM "$pid" 2>/dev/null || true
deadline=$((SECONDS + grace_seconds))
while kill -0 "$pid" 2>/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "$name (pid $pid) did not stop within ${grace_seconds}s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 0.1
done
rm -f "$pid_file"
