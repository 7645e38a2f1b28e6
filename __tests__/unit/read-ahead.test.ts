// The read-ahead buffer between a collection's reader and the backup's one Postgres connection:
// what goes in comes out in order and whole, the reader waits when the bound is reached, and
// memory never holds more than the bound plus one tuple, whatever the pace of either side.
import fc from 'fast-check';
import { ReadAhead } from '../../src/read-ahead.js';

function tuple(n: number, fill: number): Buffer {
  return Buffer.alloc(n, fill);
}

test('tuples come out whole and in order, in chunks of about the chunk size, the last one after the end', () => {
  let changes = 0;
  const b = new ReadAhead(1000, 100, () => changes++);
  const inputs = Array.from({ length: 27 }, (_, i) => tuple(20, i));
  const out: Buffer[] = [];
  for (const t of inputs) {
    expect(b.add(t)).toBeUndefined(); // never full: taken below as soon as a chunk is ready
    if (b.ready) out.push(...b.take());
  }
  expect(b.ready).toBe(false); // 40 bytes gathered, not a chunk yet
  b.end();
  expect(b.ready).toBe(true);
  out.push(...b.take());
  expect(b.drained).toBe(true);
  expect(out.every((c, i) => i === out.length - 1 || c.length >= 100)).toBe(true);
  expect(Buffer.concat(out)).toEqual(Buffer.concat(inputs));
  expect(changes).toBeGreaterThan(0);
});

test('a COPY is worth its round trip only from half the bound, or once the reader finished', () => {
  const b = new ReadAhead(1000, 100, () => undefined);
  for (let i = 0; i < 4; i++) b.add(tuple(100, i)); // four full chunks: ready, but under half the bound
  expect(b.ready).toBe(true);
  expect(b.worthWriting).toBe(false);
  b.add(tuple(100, 4)); // 500 bytes: half the bound
  expect(b.worthWriting).toBe(true);
  b.take();
  b.add(tuple(30, 5)); // a small rest
  expect(b.worthWriting).toBe(false);
  b.end();
  expect(b.worthWriting).toBe(true);
  expect(Buffer.concat(b.take())).toEqual(tuple(30, 5));
  expect(b.worthWriting).toBe(false);
});

test('the reader waits at the bound and goes on once the writer took the chunks', async () => {
  const b = new ReadAhead(200, 100, () => undefined);
  expect(b.add(tuple(100, 1))).toBeUndefined();
  const wait = b.add(tuple(100, 2));
  expect(wait).toBeInstanceOf(Promise);
  let released = false;
  void wait!.then(() => (released = true));
  await Promise.resolve();
  expect(released).toBe(false);
  expect(Buffer.concat(b.take())).toEqual(Buffer.concat([tuple(100, 1), tuple(100, 2)]));
  await wait;
  expect(released).toBe(true);
  expect(b.heldBytes).toBe(0);
});

test('abort fails a waiting reader and every later add, and drops what was held', async () => {
  const b = new ReadAhead(100, 100, () => undefined);
  const wait = b.add(tuple(150, 1));
  expect(wait).toBeInstanceOf(Promise);
  b.abort(new Error('stopped: another collection failed'));
  await expect(wait).rejects.toThrow('stopped: another collection failed');
  expect(() => b.add(tuple(1, 1))).toThrow('stopped: another collection failed');
  expect(b.heldBytes).toBe(0);
  expect(b.take()).toEqual([]);
});

test('a tuple larger than a quarter chunk is a chunk of its own, in order with the gathered ones', () => {
  const b = new ReadAhead(1000, 100, () => undefined);
  b.add(tuple(10, 1));
  b.add(tuple(60, 2));
  b.add(tuple(10, 3));
  b.end();
  const out = b.take();
  expect(out.map((c) => c.length)).toEqual([10, 60, 10]);
  expect(Buffer.concat(out)).toEqual(Buffer.concat([tuple(10, 1), tuple(60, 2), tuple(10, 3)]));
});

test('written chunks handed back are reused for the next tuples, never while still held, never after an abort', () => {
  const b = new ReadAhead(1000, 100, () => undefined);
  for (let i = 0; i < 5; i++) b.add(tuple(25, i));
  const first = b.take(); // one chunk of tuples 0-3; tuple 4 is gathered in a second buffer
  expect(first.map((c) => c.length)).toEqual([100]);
  const firstMemory = first[0].buffer;
  const copy = Buffer.from(first[0]);
  b.recycle(first);
  for (let i = 5; i < 9; i++) b.add(tuple(25, i));
  const second = b.take(); // tuples 4-7, in the second buffer; tuple 8 starts the recycled one
  expect(second).toHaveLength(1);
  for (let i = 9; i < 13; i++) b.add(tuple(25, i));
  const third = b.take();
  expect(third[0].buffer).toBe(firstMemory);
  expect(second[0].buffer).not.toBe(firstMemory);
  expect(copy).toEqual(Buffer.concat([0, 1, 2, 3].map((i) => tuple(25, i))));
  expect(Buffer.concat(third)).toEqual(Buffer.concat([8, 9, 10, 11].map((i) => tuple(25, i))));
  // Tuples of their own and foreign buffers are not pooled; an aborted buffer pools nothing.
  b.recycle([tuple(100, 0)]);
  b.abort(new Error('stopped'));
  b.recycle(third);
  expect(b.heldBytes).toBe(0);
});

test('a bound smaller than a chunk is refused', () => {
  expect(() => new ReadAhead(10, 100, () => undefined)).toThrow(/chunk size/);
});

test('property: with any tuple sizes and any writer pace, nothing is lost or reordered and held bytes stay within the bound plus one tuple', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 0, maxLength: 200 }),
      fc.integer({ min: 50, max: 400 }),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
      async (sizes, chunk, factor, paces) => {
        const limit = chunk * factor;
        const b = new ReadAhead(limit, chunk, () => undefined);
        const inputs = sizes.map((n, i) => tuple(n, i % 256));
        const largest = Math.max(0, ...sizes);
        let maxHeld = 0;
        const reader = (async () => {
          for (const t of inputs) {
            const full = b.add(t);
            maxHeld = Math.max(maxHeld, b.heldBytes);
            if (full) await full;
          }
          b.end();
        })();
        const out: Buffer[] = [];
        let step = 0;
        while (!b.drained) {
          // The writer sometimes takes, sometimes lets the reader run (but takes at least every fourth turn).
          const turn = step++;
          if ((paces[turn % paces.length] || turn % 4 === 3) && b.ready) out.push(...b.take());
          await new Promise((resolve) => setImmediate(resolve));
        }
        await reader;
        expect(Buffer.concat(out)).toEqual(Buffer.concat(inputs));
        expect(maxHeld).toBeLessThan(limit + largest);
        expect(b.peakBytes).toBeLessThan(limit + largest);
      },
    ),
    { numRuns: 100 },
  );
});
