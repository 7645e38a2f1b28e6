/**
 * The one seeded pseudo-random generator of the development tools (the benchmark's dataset, the
 * shop of the tests and the demo, the tests' random documents): a seed always generates the very
 * same documents (same sizes, same values, same ids), so benchmark results stay comparable between
 * runs and machines and a failing test fails again with the same data.
 */

/** Mixes a 32-bit integer (the finaliser of MurmurHash3): nearby inputs give unrelated outputs. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** One seed per (dataset seed, collection, document index): any document can be regenerated alone. */
export function seedFor(seed: number, stream: number, index: number): number {
  return mix32(mix32(seed ^ Math.imul(stream + 1, 0x9e3779b9)) ^ mix32(index + 0x632be5ab));
}

/** mulberry32: fast, 32 bits of state, good enough statistical quality for test data. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  uint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  bool(pTrue = 0.5): boolean {
    return this.next() < pTrue;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.uint32(), i);
    for (; i < n; i++) out[i] = this.uint32() & 0xff;
    return out;
  }
}
