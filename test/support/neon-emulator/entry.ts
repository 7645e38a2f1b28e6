// The connection entry of each endpoint, like Neon's proxy: clients connect to the endpoint's
// address (127.0.0.N), where this TLS-terminating Postgres-protocol proxy reads the startup packet,
// refuses an `options=endpoint=<id>` (or `project=`) that names another endpoint with Neon's
// message, strips that word (Postgres itself would refuse it as an unknown command-line switch),
// and forwards the session over TLS to the branch's cluster on 127.1.X.Y (for endpoint 127.0.X.Y).
//
// Channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) still works end to end: the binding
// data is the hash of the server certificate, and the proxy presents the very certificate the
// cluster does, so the client's binding matches what the cluster computes for its own.
//
// Everything else passes through untouched: plain (non-TLS) startups are refused as the cluster's
// `hostssl`-only rules would refuse them, GSSAPI encryption is declined, cancel requests are
// forwarded as they are.
//
// A project may be given a network (PUT /__emulator/projects/{id}/network {rtt_ms}, for the
// benchmark): its endpoints' connections then pass through devkit/latency-proxy.ts's relay, raw TCP
// (TLS handshake, authentication and every query included), to a private listener of the entry.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { relayWithDelay, type RelayCounts } from '../../../devkit/latency-proxy.js';
import { hostOf } from './addresses.js';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
const MAX_STARTUP_BYTES = 10_000;

export interface EntryConfig {
  pgPort: number;
  tlsCert: string;
  tlsKey: string;
  caCert: string;
}

/** The address the cluster of endpoint address 127.0.X.Y listens on, behind its entry: 127.1.X.Y. */
export function backendHostOf(hostNumber: number): string {
  return hostOf(hostNumber).replace(/^127\.0\./, '127.1.');
}

export class Entries {
  readonly #config: EntryConfig;
  #endpointIdAt: (hostNumber: number) => string | undefined = () => undefined;
  #rttAt: (hostNumber: number) => { rttMs: number; counts: RelayCounts } = () => ({ rttMs: 0, counts: { connections: 0, turns: 0 } });
  readonly #servers = new Map<number, net.Server>();
  /** Per endpoint address, the private listener behind the simulated network (made when first needed). */
  readonly #delayed = new Map<number, Promise<net.Server>>();
  readonly #sockets = new Map<number, Set<net.Socket>>();
  readonly #hostOfBranch = new Map<string, number>();

  constructor(config: EntryConfig) {
    this.#config = config;
  }

  /** How the entry learns which endpoint id an address serves (the projects know). */
  resolveEndpointsWith(endpointIdAt: (hostNumber: number) => string | undefined): void {
    this.#endpointIdAt = endpointIdAt;
  }

  /** How the entry learns the round trip (ms) to add to connections at an address (0: none), and where to count them. */
  resolveRttWith(rttAt: (hostNumber: number) => { rttMs: number; counts: RelayCounts }): void {
    this.#rttAt = rttAt;
  }

  /** Listens on the endpoint address of a branch (already listening: nothing to do). */
  async open(hostNumber: number, branchId: string): Promise<void> {
    this.#hostOfBranch.set(branchId, hostNumber);
    if (this.#servers.has(hostNumber)) return;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      const network = this.#rttAt(hostNumber);
      if (network.rttMs > 0) this.#throughNetwork(hostNumber, socket, network.rttMs, network.counts).catch(() => socket.destroy());
      else this.#serve(hostNumber, socket).catch(() => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#config.pgPort, hostOf(hostNumber), () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.set(hostNumber, server);
    this.#sockets.set(hostNumber, sockets);
  }

  /** Stops the entry of a branch's endpoint, if it has one (its cluster is stopping). */
  async closeBranch(branchId: string): Promise<void> {
    const hostNumber = this.#hostOfBranch.get(branchId);
    this.#hostOfBranch.delete(branchId);
    if (hostNumber !== undefined) await this.close(hostNumber);
  }

  /** Stops listening on an endpoint address and ends its open sessions (the endpoint is going away). */
  async close(hostNumber: number): Promise<void> {
    const server = this.#servers.get(hostNumber);
    if (server === undefined) return;
    this.#servers.delete(hostNumber);
    for (const s of this.#sockets.get(hostNumber) ?? []) s.destroy();
    this.#sockets.delete(hostNumber);
    const delayed = this.#delayed.get(hostNumber);
    this.#delayed.delete(hostNumber);
    await Promise.all([
      new Promise<void>((resolve) => server.close(() => resolve())),
      delayed?.then(
        (inner) => new Promise<void>((resolve) => inner.close(() => resolve())),
        () => undefined,
      ),
    ]);
  }

  /** Relays a client connection with the given round trip to the address's private listener, which serves it as usual. */
  async #throughNetwork(hostNumber: number, client: net.Socket, rttMs: number, counts: RelayCounts): Promise<void> {
    counts.connections++;
    let inner = this.#delayed.get(hostNumber);
    if (inner === undefined) {
      const sockets = this.#sockets.get(hostNumber);
      const server = net.createServer((socket) => {
        // Without it, Nagle's algorithm meets the relay's delayed ACKs and adds 40 ms of its own to small answers.
        socket.setNoDelay(true);
        sockets?.add(socket);
        socket.on('close', () => sockets?.delete(socket));
        this.#serve(hostNumber, socket).catch(() => socket.destroy());
      });
      inner = new Promise<net.Server>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
      this.#delayed.set(hostNumber, inner);
    }
    const { port } = (await inner).address() as net.AddressInfo;
    const hop = net.connect(port, '127.0.0.1');
    client.setNoDelay(true);
    hop.setNoDelay(true);
    relayWithDelay(client, hop, rttMs / 2, counts);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#servers.keys()].map((n) => this.close(n)));
  }

  async #serve(hostNumber: number, client: net.Socket): Promise<void> {
    client.on('error', () => undefined);
    const reader = new Reader(client);
    let first = await reader.message();
    const code = first.readInt32BE(4);
    if (code === CANCEL_REQUEST) {
      // Cancel requests come on a plain connection of their own; the cluster checks the key.
      const backend = net.connect(this.#config.pgPort, backendHostOf(hostNumber));
      backend.on('error', () => client.destroy());
      backend.end(first);
      client.end();
      return;
    }
    if (code === GSSENC_REQUEST) {
      client.write('N');
      first = await reader.message();
    }
    if (first.readInt32BE(4) !== SSL_REQUEST) {
      // What the cluster's hostssl-only rules answer a plain connection.
      client.end(errorResponse('28000', `no pg_hba.conf entry for host "${client.remoteAddress ?? '?'}", no encryption`));
      return;
    }
    client.write('S');
    // Not paused: the TLS socket takes over this socket's handle and reads from it.
    reader.detach(false);
    const secure = new tls.TLSSocket(client, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: fs.readFileSync(this.#config.tlsCert), key: fs.readFileSync(this.#config.tlsKey) }),
    });
    secure.on('error', () => client.destroy());
    const secureReader = new Reader(secure);
    const startup = await secureReader.message();
    if (startup.readInt32BE(4) !== PROTOCOL_3) {
      secure.end(errorResponse('08P01', `unsupported frontend protocol ${startup.readInt32BE(4)}`));
      return;
    }
    const params = parseStartup(startup);
    // Hosts are IP addresses, so clients send no SNI: the endpoint is the one this address serves.
    const served = this.#endpointIdAt(hostNumber);
    const words = (params.get('options') ?? '').split(/\s+/).filter((w) => w !== '');
    const named = words
      .find((w) => /^(?:endpoint|project)=/i.test(w))
      ?.replace(/^[^=]+=/, '')
      .toLowerCase();
    if (named !== undefined && served !== undefined && named !== served) {
      secure.end(errorResponse('XX000', `Inconsistent project name inferred from SNI ('${served}') and project option ('${named}')`));
      return;
    }
    const kept = words.filter((w) => !/^(?:endpoint|project)=/i.test(w));
    if (kept.length > 0) params.set('options', kept.join(' '));
    else params.delete('options');

    const backend = await this.#connectBackend(hostNumber);
    backend.write(startupMessage(params));
    const pending = secureReader.detach(true);
    if (pending.length > 0) backend.write(pending);
    secure.pipe(backend);
    backend.pipe(secure);
    const end = () => {
      secure.destroy();
      backend.destroy();
    };
    secure.on('close', end);
    backend.on('close', end);
    backend.on('error', end);
  }

  /** TLS to the cluster, its certificate checked against the stack's CA (its name is the endpoint's, not the backend address). */
  async #connectBackend(hostNumber: number): Promise<tls.TLSSocket> {
    const raw = net.connect(this.#config.pgPort, backendHostOf(hostNumber));
    raw.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', reject);
    });
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(SSL_REQUEST, 4);
    raw.write(sslRequest);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      raw.once('data', resolve);
      raw.once('error', reject);
    });
    if (answer.toString('latin1', 0, 1) !== 'S') throw new Error(`the cluster behind ${hostOf(hostNumber)} refused TLS`);
    const secure = tls.connect({ socket: raw, ca: fs.readFileSync(this.#config.caCert), checkServerIdentity: () => undefined });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return secure;
  }
}

/** Reads whole length-prefixed startup-phase messages (Int32 length, itself included) from a stream. */
class Reader {
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;
  #failed: Error | undefined;
  readonly #stream: NodeJS.ReadableStream;
  readonly #onData = (chunk: Buffer) => {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    this.#waiting?.();
  };
  readonly #onEnd = () => {
    this.#failed = new Error('the client closed the connection during startup');
    this.#waiting?.();
  };

  constructor(stream: NodeJS.ReadableStream) {
    this.#stream = stream;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
  }

  async message(): Promise<Buffer> {
    for (;;) {
      if (this.#buffer.length >= 4) {
        const length = this.#buffer.readInt32BE(0);
        if (length < 8 || length > MAX_STARTUP_BYTES) throw new Error(`invalid startup packet length ${length}`);
        if (this.#buffer.length >= length) {
          const message = this.#buffer.subarray(0, length);
          this.#buffer = this.#buffer.subarray(length);
          return message;
        }
      }
      if (this.#failed) throw this.#failed;
      await new Promise<void>((resolve) => (this.#waiting = resolve));
      this.#waiting = undefined;
    }
  }

  /** Stops reading (and pauses the stream when asked); returns what was read past the last message. */
  detach(pause: boolean): Buffer {
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('close', this.#onEnd);
    if (pause) this.#stream.pause();
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    return rest;
  }
}

function parseStartup(message: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  const parts = message.toString('utf8', 8).split('\0');
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) params.set(parts[i], parts[i + 1]);
  return params;
}

function startupMessage(params: Map<string, string>): Buffer {
  const body = Buffer.from([...params].map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(PROTOCOL_3, 4);
  return Buffer.concat([head, body]);
}

/** A FATAL ErrorResponse, as Postgres (and Neon's proxy) send it before closing. */
function errorResponse(sqlstate: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlstate}\0M${message}\0\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('E', 0, 'latin1');
  head.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([head, fields]);
}
