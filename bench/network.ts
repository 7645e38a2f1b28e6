/**
 * The simulated network of the -rtt40 measurements: the same round trip between the product and
 * both of its servers.
 * - MongoDB: the benchmark's latency proxy (devkit/latency-proxy.ts) in front of the source; the
 *   measured process gets a MONGODB_SRV_URL that points at it.
 * - Postgres: the product connects to the hosts the Neon API hands out (a restore's temporary branch)
 *   and to the configured standby URL, all of them endpoint entries of the Neon emulator. The bench
 *   gives its project a network (PUT /__emulator/projects/{id}/network): every connection to the
 *   project's endpoints then passes through the same relay, raw TCP, so the TLS handshake, the
 *   authentication and every statement pay the round trip.
 * The Neon API's HTTP calls are not delayed.
 */
import { startLatencyProxy, type LatencyProxy } from '../devkit/latency-proxy.js';
import type { RoundTrips } from './results.js';

export interface Network {
  rttMs: number;
  /** MONGODB_SRV_URL through the proxy. */
  mongoUri: string;
  /** What went through the network so far (turns and connections per server). */
  counts(): Promise<RoundTrips>;
  close(): Promise<void>;
}

/** The source's address, or why it cannot be put behind the proxy. */
function mongoTarget(uri: string): { host: string; port: number; url: URL } {
  if (!uri.startsWith('mongodb://'))
    throw new Error(`the simulated network needs a mongodb:// source URI with one host (got ${uri.split(':')[0]}://…)`);
  const url = new URL(uri.replace(/^mongodb:/, 'http:'));
  if (url.host.includes(',')) throw new Error('the simulated network needs a source URI with one host');
  return { host: url.hostname, port: Number(url.port || 27017), url };
}

interface EmulatorNetwork {
  rtt_ms: number;
  connections: number;
  turns: number;
}

async function postgresNetwork(rttMs?: number): Promise<EmulatorNetwork> {
  const api = process.env.NEON_API_HOST as string;
  const base = api.replace(/\/api\/v2\/?$/, '');
  const res = await fetch(`${base}/__emulator/projects/${encodeURIComponent(process.env.NEON_PROJECT_ID as string)}/network`, {
    method: rttMs === undefined ? 'GET' : 'PUT',
    headers: { authorization: `Bearer ${process.env.NEON_API_KEY}`, 'content-type': 'application/json' },
    body: rttMs === undefined ? undefined : JSON.stringify({ rtt_ms: rttMs }),
  });
  if (!res.ok) {
    throw new Error(
      `the Neon API at ${base} would not simulate a network (${res.status} ${(await res.text()).slice(0, 200)}): ` +
        "the -rtt40 measurements need the repository's Neon emulator (npm run stack:up restarts an older one)",
    );
  }
  return (await res.json()) as EmulatorNetwork;
}

/** Starts the network: from now until close(), new connections to the project's endpoints pay the round trip too. */
export async function startNetwork(rttMs: number): Promise<Network> {
  const source = mongoTarget(process.env.MONGODB_SRV_URL as string);
  const proxy: LatencyProxy = await startLatencyProxy({ target: { host: source.host, port: source.port }, rttMs });
  try {
    await postgresNetwork(rttMs);
  } catch (err) {
    await proxy.close();
    throw err;
  }
  const url = new URL(source.url.href);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  // One host, reached directly: a replica set member must not send the driver to the others' real addresses.
  if (!url.searchParams.has('directConnection')) url.searchParams.set('directConnection', 'true');
  return {
    rttMs,
    mongoUri: url.href.replace(/^http:/, 'mongodb:'),
    counts: async () => {
      const pg = await postgresNetwork();
      return {
        mongoTurns: proxy.counts.turns,
        mongoConnections: proxy.counts.connections,
        postgresTurns: pg.turns,
        postgresConnections: pg.connections,
      };
    },
    close: async () => {
      await postgresNetwork(0);
      await proxy.close();
    },
  };
}
