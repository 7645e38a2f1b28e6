#!/usr/bin/env bash
# Creates the stack's TLS material once, in $STACK_DIR/tls:
#   ca.crt / ca.key              the CA that clients trust (NODE_EXTRA_CA_CERTS, SUPANEON_STACK_CA)
#   server.crt / server.key      signed by that CA, valid for localhost and 127.0.X.Y (X 0..3,
#                                Y 1..254), the loopback addresses the branch endpoints listen on
#   wrong-ca.crt / wrong-ca.key  an unrelated CA, so tests can prove verification really happens
# Everything is regenerated when the server certificate is missing, expires within a day, or does
# not name the last endpoint address (a certificate made when fewer addresses were used).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TLS_DIR="$STACK_DIR/tls"
# Must match LAST_SUBNET in test/support/neon-emulator/addresses.ts.
LAST_ENDPOINT_SUBNET=3
LAST_ENDPOINT_ADDRESS="127.0.$LAST_ENDPOINT_SUBNET.254"

certs_current() {
  [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/server.crt" ] && [ -s "$TLS_DIR/server.key" ] \
    && [ -s "$TLS_DIR/wrong-ca.crt" ] \
    && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1 \
    && openssl x509 -noout -checkip "$LAST_ENDPOINT_ADDRESS" -in "$TLS_DIR/server.crt" 2>/dev/null | grep -q 'does match'
}

# Postgres runs as $PG_OS_USER when the stack runs as root, and refuses a key that anyone but its
# owner can read: the key must belong to the user that runs the clusters, mode 0600.
own_server_key() {
  chmod 0600 "$TLS_DIR/server.key"
  if is_root; then
    chown "$PG_OS_USER:" "$TLS_DIR/server.key"
  fi
}

if certs_current; then
  own_server_key
  exit 0
fi

log "creating the stack CA and the endpoint certificate in $TLS_DIR"
mkdir -p "$TLS_DIR"
chmod 0755 "$TLS_DIR"
WORK="$(mktemp -d "$TLS_DIR/.new.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

new_ca() { # name, common name
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$WORK/$1.key" -out "$WORK/$1.crt" 2>/dev/null
}

new_ca ca "supaneon-sync local stack CA"
new_ca wrong-ca "supaneon-sync unrelated CA"

san="DNS:localhost"
for x in $(seq 0 "$LAST_ENDPOINT_SUBNET"); do
  for y in $(seq 1 254); do san="$san,IP:127.0.$x.$y"; done
done
cat >"$WORK/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT
openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
openssl x509 -req -sha256 -days 3650 -in "$WORK/server.csr" \
  -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -extfile "$WORK/server.ext" -out "$WORK/server.crt" 2>/dev/null
openssl verify -CAfile "$WORK/ca.crt" "$WORK/server.crt" >/dev/null \
  || die "the endpoint certificate just created in $WORK does not verify against its CA"

chmod 0600 "$WORK"/*.key
chmod 0644 "$WORK"/*.crt
for f in ca.key ca.crt wrong-ca.key wrong-ca.crt server.key server.crt; do
  mv -f "$WORK/$f" "$TLS_DIR/$f"
done
own_server_key
