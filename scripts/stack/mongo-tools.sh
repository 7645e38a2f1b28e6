#!/usr/bin/env bash
# Makes sure runnable mongodump and mongorestore binaries (the MongoDB Database Tools) are cached in
# $MONGO_TOOLS_DIR, building them from the Go module proxy when they are missing, and prints that
# directory on stdout. Tests use them as the reference peers of the dump format.
#
# The proxy lists no tagged version of github.com/mongodb/mongo-tools, but it serves pseudo-versions
# of its history; the module is fetched into a throwaway module and its commands are built from
# there (`go get <package>/main@version` is refused by the proxy, the module itself is not).
# Pure Go, no cgo: about a minute the first time, then reused by every clone on the machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONGO_TOOLS_VERSION="${MONGO_TOOLS_VERSION:-v0.0.0-20260702221138-e4f25276abe9}"
MONGO_TOOLS_DIR="$CACHE_DIR/mongo-tools-$MONGO_TOOLS_VERSION"
TOOLS=(mongodump mongorestore)

tools_runnable() {
  local t
  for t in "${TOOLS[@]}"; do
    [ -x "$MONGO_TOOLS_DIR/$t" ] && "$MONGO_TOOLS_DIR/$t" --version >/dev/null 2>&1 || return 1
  done
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then printf '%s\n' /usr/local/go/bin/go
  fi
}

mkdir -p "$CACHE_DIR"
# Two test files (or a test and a shell) asking at once must not build into the same directory.
exec 9>"$CACHE_DIR/mongo-tools.lock"
flock 9

if tools_runnable; then
  printf '%s\n' "$MONGO_TOOLS_DIR"
  exit 0
fi

# The proxy's refusal is final for a version: remember it for a day instead of asking on every test run.
REFUSED_MARK="$CACHE_DIR/mongo-tools-$MONGO_TOOLS_VERSION.refused"
REFUSED_MESSAGE="the Go module proxy refuses github.com/mongodb/mongo-tools@$MONGO_TOOLS_VERSION (403 Forbidden); put mongodump and mongorestore on PATH, or set SUPANEON_MONGO_TOOLS_DIR to the directory holding them"
if [ -n "$(find "$REFUSED_MARK" -mmin -1440 2>/dev/null)" ]; then
  die "$REFUSED_MESSAGE (remembered since $(date -u -r "$REFUSED_MARK" +%FT%TZ); delete $REFUSED_MARK to ask again)"
fi

GO="$(find_go)"
[ -n "$GO" ] || die "Go is needed to build mongodump/mongorestore $MONGO_TOOLS_VERSION but was not found (looked on PATH and in /usr/local/go/bin); install Go 1.21 or newer and retry"

log "building mongodump and mongorestore $MONGO_TOOLS_VERSION from the Go module proxy (first time only, about a minute)"
BUILD_DIR="$CACHE_DIR/mongo-tools-build"
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
cd "$BUILD_DIR"
"$GO" mod init local/mongo-tools-build >/dev/null 2>&1
if ! fetched="$("$GO" get "github.com/mongodb/mongo-tools@$MONGO_TOOLS_VERSION" 2>&1)"; then
  printf '%s\n' "$fetched" >&2
  cd "$CACHE_DIR" && rm -rf "$BUILD_DIR"
  if grep -q '403 Forbidden' <<<"$fetched"; then
    touch "$REFUSED_MARK"
    die "$REFUSED_MESSAGE"
  fi
  die "could not download github.com/mongodb/mongo-tools@$MONGO_TOOLS_VERSION from the Go module proxy; check GOPROXY ($("$GO" env GOPROXY)) and retry"
fi
mkdir -p bin
for t in "${TOOLS[@]}"; do
  GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath -o "bin/$t" "github.com/mongodb/mongo-tools/$t/main" >&2
  "bin/$t" --version >/dev/null || die "the $t just built in $BUILD_DIR does not run; see the output above"
done
mkdir -p "$MONGO_TOOLS_DIR"
for t in "${TOOLS[@]}"; do mv -f "bin/$t" "$MONGO_TOOLS_DIR/$t"; done
cd "$CACHE_DIR"
rm -rf "$BUILD_DIR"
log "mongodump and mongorestore cached in $MONGO_TOOLS_DIR"
printf '%s\n' "$MONGO_TOOLS_DIR"
