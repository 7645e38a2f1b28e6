import net from 'node:net';
import { startLatencyProxy, type LatencyProxy } from '../../devkit/latency-proxy.js';

/** An echo server on 127.0.0.1 that remembers its sockets, to see when the proxy closes them. */
async function echoServer(): Promise<{ port: number; sockets: net.Socket[]; close: () => Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

describe('the benchmark latency proxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: LatencyProxy;

  beforeEach(async () => {
    echo = await echoServer();
  });
  afterEach(async () => {
    await proxy?.close();
    await echo.close();
  });

  it('adds about the round-trip time to a request and its answer', async () => {
    proxy = await startLatencyProxy({ target: { host: '127.0.0.1', port: echo.port }, rttMs: 200 });
    const client = await connect(proxy.port);
    const started = performance.now();
    client.write('ping');
    const answer = await readBytes(client, 4);
    const elapsed = performance.now() - started;
    expect(answer.toString()).toBe('ping');
    // One round trip through the proxy: at least the RTT, well under two (generous for a loaded machine).
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(2000);
    client.destroy();
  });

  it('keeps every byte in order and does not serialize chunks behind each other', async () => {
    proxy = await startLatencyProxy({ target: { host: '127.0.0.1', port: echo.port }, rttMs: 100 });
    const client = await connect(proxy.port);
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
    const started = performance.now();
    const reading = readBytes(client, payload.length);
    // Many writes: if each chunk waited for the one before, this would take chunks × RTT.
    for (let i = 0; i < payload.length; i += 16 * 1024) client.write(payload.subarray(i, i + 16 * 1024));
    const echoed = await reading;
    expect(echoed.equals(payload)).toBe(true);
    expect(performance.now() - started).toBeLessThan(20_000);
    client.destroy();
  });

  it('closes the far side when the client goes, and the client when the server goes', async () => {
    proxy = await startLatencyProxy({ target: { host: '127.0.0.1', port: echo.port }, rttMs: 20 });
    const first = await connect(proxy.port);
    first.write('x');
    await readBytes(first, 1);
    first.end();
    await closed(echo.sockets[0]);

    const second = await connect(proxy.port);
    second.write('y');
    await readBytes(second, 1);
    echo.sockets[1].destroy();
    await closed(second);
    expect(proxy.connections).toBe(2);
  });
});
