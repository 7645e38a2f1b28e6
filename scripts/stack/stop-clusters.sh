#!/usr/bin/env bash
# Stops, with pg_ctl, every branch cluster under the emulator's state directory that still runs
# although the emulator does not (it crashed, or was killed before it could stop them). Each is
# stopped as the user that owns its data directory, as PostgreSQL requires.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EMULATOR_STATE="$(emulator_state_dir)"
[ -d "$EMULATOR_STATE" ] || exit 0

run_as() { # user, command...
  local user="$1"
  shift
  if is_root && [ "$user" != root ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

bindir="$(find_pg_bindir)"
while IFS= read -r pid_file; do
  datadir="$(dirname "$pid_file")"
  [ -n "$bindir" ] || die "a PostgreSQL cluster may still run in $datadir but no pg_ctl was found in /usr/lib/postgresql/*/bin"
  owner="$(stat -c %U "$datadir")"
  run_as "$owner" "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1 || continue
  log "stopping the PostgreSQL cluster left running in $datadir"
  run_as "$owner" "$bindir/pg_ctl" -D "$datadir" stop -m fast -w -t 60 >/dev/null
done < <(find "$EMULATOR_STATE" -name postmaster.pid -type f 2>/dev/null)
