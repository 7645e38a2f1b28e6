/**
 * The benchmark's network: a TCP proxy that adds a round-trip time to every connection through it,
 * as between a GitHub runner and Neon or a MongoDB service. Each chunk is forwarded half the round
 * trip after it arrived, in either direction, in order; chunks are not serialized behind each other
 * (a chunk's delay starts when it arrives), so throughput is not capped, only latency added. TLS and
 * every other protocol pass through untouched: the proxy only sees bytes.
 */
import net from 'node:net';

/**
 * What went through relays: connections, and turns: times the client spoke again after the server
 * had answered. Each turn is a round trip the client waited for (or at least one the client did not
 * overlap with its previous request), so the count is a load-independent measure of how much of a
 * run the network's latency can add.
 */
export interface RelayCounts {
  connections: number;
  turns: number;
}

/**
 * Relays bytes between two connected sockets, each chunk delayed by `oneWayMs`. Backpressure: a
 * side that stops draining pauses the other's reads. Either side closing ends the other after the
 * chunks already in flight are delivered.
 */
export function relayWithDelay(a: net.Socket, b: net.Socket, oneWayMs: number, counts?: RelayCounts): void {
  // The side that spoke last: a chunk from `a` (the client) after one from `b` starts a new turn.
  let last: net.Socket | undefined;
  const forward = (from: net.Socket, to: net.Socket) => {
    // Timers with equal delays fire in creation order, so the order of chunks is kept.
    let inFlight = 0;
    let ended = false;
    const finish = () => {
      if (ended && inFlight === 0) to.end();
    };
    from.on('data', (chunk: Buffer) => {
      if (counts && from === a && last !== a) counts.turns++;
      last = from;
      inFlight++;
      setTimeout(() => {
        inFlight--;
        if (!to.destroyed && !to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
        finish();
      }, oneWayMs);
    });
    from.on('end', () => {
      ended = true;
      finish();
    });
  };
  forward(a, b);
  forward(b, a);
  // A side gone: the other is ended (after a reset, destroyed) once the same one-way delay has passed,
  // i.e. after whatever it sent before going is delivered.
  const close = (other: net.Socket) => (hadError: boolean) => void setTimeout(() => (hadError ? other.destroy() : other.end()), oneWayMs);
  a.on('close', close(b));
  b.on('close', close(a));
  a.on('error', () => undefined);
  b.on('error', () => undefined);
}

export interface LatencyProxy {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections and turns so far (see RelayCounts). */
  readonly counts: Readonly<RelayCounts>;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (an ephemeral port unless one is given) and forwards every connection to `target`, adding `rttMs`. */
export async function startLatencyProxy(options: {
  target: { host: string; port: number };
  rttMs: number;
  port?: number;
}): Promise<LatencyProxy> {
  const oneWayMs = options.rttMs / 2;
  const sockets = new Set<net.Socket>();
  const counts: RelayCounts = { connections: 0, turns: 0 };
  const server = net.createServer((client) => {
    counts.connections++;
    client.setNoDelay(true);
    const upstream = net.connect(options.target.port, options.target.host);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    relayWithDelay(client, upstream, oneWayMs, counts);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return counts.connections;
    },
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
