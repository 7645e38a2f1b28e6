/**
 * Connections to Neon Postgres. TLS is always on and the server's certificate and host name are
 * always verified against Node's trust store (plus NODE_EXTRA_CA_CERTS), whatever the URL says:
 * the standby holds a full copy of the users' data and its password crosses this connection.
 */
import pg from 'pg';

const ACCEPTED_SSLMODES = new Set(['require', 'verify-ca', 'verify-full']);

export interface ConnectOptions {
  /** Connect to this host instead of the URL's (a branch of the same project: same role, database, password). */
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
  for (const p of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl', 'uselibpqcompat']) u.searchParams.delete(p);
  return u;
}

export async function connectPostgres(url: string, opts: ConnectOptions = {}): Promise<pg.Client> {
  const u = parseUrl(url);
  if (opts.host) u.hostname = opts.host;
  const servername = u.hostname.replace(/^\[|\]$/g, '');
  const client = new pg.Client({
    connectionString: u.toString(),
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
  // Without a listener, a dropped connection emits 'error' and crashes the process; the failure
  // surfaces anyway through the query that was running.
  client.on('error', () => undefined);
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

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
