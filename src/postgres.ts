/**
 * Connections to Neon Postgres. TLS is always on and the server's certificate and host name are
 * always verified against Node's trust store (plus NODE_EXTRA_CA_CERTS), whatever the URL says:
 * the standby holds a full copy of the users' data and its password crosses this connection.
 *
 * Every connection goes to the endpoint's direct host, never the `-pooler` one: the product needs
 * a session (a backup's advisory lock and its one transaction around COPY, verify's temporary
 * table), which PgBouncer in transaction mode does not keep.
 *
 * `channel_binding` is libpq's: `prefer` (the default) uses SCRAM-SHA-256-PLUS when the server
 * offers it; `require` refuses, before any password is sent, a server that does not
 * (node-postgres alone would quietly fall back to plain SCRAM or even send the password in clear
 * when asked to); `disable` never binds.
 */
import pg from 'pg';
import { channelBindingOf, directHostOf, moveToEndpoint } from './connection-string.js';

const ACCEPTED_SSLMODES = new Set(['require', 'verify-ca', 'verify-full']);

export interface ConnectOptions {
  /**
   * Connect to this endpoint instead of the URL's (a branch of the same project): the host, its
   * endpoint id for `options=endpoint=` (dropped from the URL when unknown), and the role's
   * password on that branch when it differs from the URL's.
   */
  endpoint?: { host: string; endpointId?: string; password?: string };
  /** Shorthand for `endpoint: { host }`: another host of the same endpoint or branch, same password. */
  host?: string;
  applicationName?: string;
  connectTimeoutMs?: number;
}

/** "host:port/db" for messages: never the role or password. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)';
    return `${u.hostname}:${u.port || '5432'}/${db}`;
  } catch {
    return '(unparseable Postgres URL)';
  }
}

/**
 * Splits the URL into what pg should see (no sslmode: pg's own interpretation of sslmode changed
 * across versions, and some values would silently downgrade verification) and the TLS settings we
 * enforce ourselves.
 */
function parseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error('neon-database-url is not a valid URL; expected postgresql://role:password@host/database?sslmode=require');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error(`neon-database-url must start with postgresql:// (got ${u.protocol}//...)`);
  }
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode !== null && !ACCEPTED_SSLMODES.has(sslmode)) {
    throw new Error(
      `neon-database-url has sslmode=${sslmode}; this tool always verifies TLS, so use sslmode=require, verify-ca or verify-full (or leave it out)`,
    );
  }
  for (const p of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl', 'uselibpqcompat', 'channel_binding']) u.searchParams.delete(p);
  return u;
}

const lostConnections = new WeakMap<pg.ClientBase, Error>();

/** Why this client's connection failed, if it did (from connectPostgres's error listener). */
export function connectionFailure(client: pg.ClientBase): Error | undefined {
  return lostConnections.get(client);
}

export async function connectPostgres(url: string, opts: ConnectOptions = {}): Promise<pg.Client> {
  const given = parseUrl(url); // validates before anything else reads the URL
  const channelBinding = channelBindingOf(new URL(url));
  const u = parseUrl(moveToEndpoint(url, opts.endpoint ?? { host: directHostOf(opts.host ?? given.hostname) }));
  const servername = u.hostname.replace(/^\[|\]$/g, '');
  const client = new pg.Client({
    connectionString: u.toString(),
    enableChannelBinding: channelBinding !== 'disable',
    // Node's TLS checks the host name only when `servername` is a DNS name; for an IP address it
    // checks the certificate's IP SANs against the connected address, which is what we want too.
    ssl: { rejectUnauthorized: true, ...(isIpAddress(servername) ? {} : { servername }) },
    application_name: opts.applicationName ?? 'supaneon-sync',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 15_000,
    // A backup's COPY of a large collection may legitimately run for a long time.
    statement_timeout: 0,
    idle_in_transaction_session_timeout: 0,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // Without a listener, a dropped connection emits 'error' and crashes the process. The failure
  // surfaces through the query that was running; when none was, the next query only hears that
  // the client "is not queryable", so the cause is kept for connectionFailure() to name.
  client.on('error', (err) => {
    if (!lostConnections.has(client)) lostConnections.set(client, err);
  });
  if (channelBinding === 'require') requireChannelBinding(client);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new Error(
      `cannot connect to Postgres at ${describePostgresUrl(u.toString())}: ${(err as Error).message}; check neon-database-url and that the endpoint is reachable`,
      { cause: err },
    );
  }
  return client;
}

/**
 * Makes the connection fail, before the password is sent, unless the server authenticates with
 * SCRAM-SHA-256-PLUS (channel binding to this TLS session). node-postgres answers whatever the
 * server asks (plain SCRAM, MD5, even a clear-text password) and only uses channel binding when
 * it is offered, so the server's request is checked first: these listeners run before the
 * client's own, and end the connection so the client's answer is never written.
 */
function requireChannelBinding(client: pg.Client): void {
  const connection = client.connection as unknown as NodeJS.EventEmitter & { stream: { destroy(): void } };
  let bound = false;
  const refuse = (what: string) => {
    connection.stream.destroy();
    connection.emit(
      'error',
      new Error(
        `the server ${what}, but neon-database-url has channel_binding=require (SCRAM-SHA-256-PLUS); ` +
          'the connection was refused before sending the password. Check that the host is your Neon endpoint, or remove channel_binding=require',
      ),
    );
  };
  connection.prependListener('authenticationSASL', (msg: { mechanisms: string[] }) => {
    if (msg.mechanisms.includes('SCRAM-SHA-256-PLUS')) bound = true;
    else refuse(`offers only ${msg.mechanisms.join(', ') || 'no SASL mechanism'} without channel binding`);
  });
  connection.prependListener('authenticationCleartextPassword', () => refuse('asks for the password in clear text'));
  connection.prependListener('authenticationMD5Password', () => refuse('asks for an MD5 password'));
  connection.prependListener('authenticationOk', () => {
    if (!bound) refuse('accepted the connection without authenticating with channel binding');
  });
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
