/**
 * Deterministic test data for MongoDB: a realistic shop (customers, products, orders with nested
 * documents and arrays) and random documents of every BSON type the test server accepts, plus a
 * loader that inserts any of them in batches without holding a collection in memory.
 *
 * Random documents stay within what FerretDB v1.24 stores unchanged: double, string, object,
 * array (not nested directly in an array), binData, objectId, bool, date, null, regex, int32,
 * timestamp, int64; no keys with '.' or a leading '$', no NUL, no NaN/±Infinity, no -0.
 * (The full BSON range is proven at the codec level against the BSON corpus.)
 */
import { Binary, BSONRegExp, Double, Int32, Long, ObjectId, Timestamp, type Document, type MongoClient } from 'mongodb';

/** mulberry32: a tiny seeded PRNG, so a seed always yields the same documents. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** An ObjectId derived from the generator (not from the clock), so it is reproducible. */
  objectId(): ObjectId {
    return new ObjectId(this.bytes(12));
  }
  word(): string {
    return this.pick(WORDS);
  }
  /** A date between 2015 and 2026, to the millisecond. */
  date(): Date {
    return new Date(Date.UTC(2015, 0, 1) + Math.floor(this.next() * 12 * 365 * 86_400_000));
  }
}

const WORDS = [
  'alpha', 'bravo', 'café', 'delta', 'échelle', 'fjord', 'garçon', 'hôtel', 'igloo', 'jalapeño', 'kilo', 'lima',
  'mañana', 'naïve', 'oscar', 'papa', 'quebec', 'romeo', 'sierra', 'tango', 'über', 'victor', 'whiskey', 'x-ray',
  'yankee', 'zulu', '東京', 'Москва', 'Ελλάδα', '🙂 emoji', 'quote"inside', "apostrophe's", 'back\\slash', 'tab\there',
];
const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Zoë', 'José'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Allen', 'Dijkstra', 'Perlman', 'Müller', 'Núñez'];
const CITIES = ['Lisbon', 'Berlin', 'Osaka', 'Austin', 'Nairobi', 'Lima', 'Oslo', 'Montréal', 'São Paulo', 'Kraków'];
const CATEGORIES = ['books', 'garden', 'kitchen', 'toys', 'tools', 'music', 'outdoor'];
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'];

export interface ShopSize {
  customers: number;
  products: number;
  orders: number;
}

export interface Dataset {
  /** Collection name -> a fresh iterable of its documents (each call starts over, same documents). */
  collections: Record<string, () => Iterable<Document>>;
  /** Indexes to create after loading, per collection: [key, options]. */
  indexes: Record<string, [Document, Document?][]>;
}

/** A small web shop: customers with addresses, products with attributes, orders with line items. */
export function shopDataset(size: Partial<ShopSize> = {}, seed = 1): Dataset {
  const n: ShopSize = { customers: 200, products: 50, orders: 500, ...size };
  const customerId = (i: number) => new ObjectId(Buffer.from(`c${String(i).padStart(11, '0')}`.slice(0, 12)));
  const productSku = (i: number) => `SKU-${String(i).padStart(5, '0')}`;
  return {
    collections: {
      customers: function* () {
        const g = new Gen(seededRandom(seed));
        for (let i = 0; i < n.customers; i++) {
          const first = g.pick(FIRST);
          const last = g.pick(LAST);
          yield {
            _id: customerId(i),
            name: { first, last },
            email: `${first}.${last}.${i}@example.com`.toLowerCase(),
            age: new Int32(g.int(18, 90)),
            vip: g.bool(0.1),
            createdAt: g.date(),
            address: { street: `${g.int(1, 999)} ${g.word()} street`, city: g.pick(CITIES), zip: String(g.int(10000, 99999)) },
            tags: Array.from({ length: g.int(0, 4) }, () => g.word()),
            loyaltyPoints: Long.fromNumber(g.int(0, 5_000_000) * 1000),
            notes: g.bool(0.3) ? null : `${g.word()} ${g.word()} ${g.word()}`,
          };
        }
      },
      products: function* () {
        const g = new Gen(seededRandom(seed + 1));
        for (let i = 0; i < n.products; i++) {
          yield {
            _id: productSku(i),
            title: `${g.word()} ${g.word()}`,
            category: g.pick(CATEGORIES),
            price: new Double(g.int(100, 99_999) / 100),
            stock: new Int32(g.int(0, 1000)),
            attributes: { weightKg: new Double(g.int(1, 5000) / 100), color: g.pick(['red', 'green', 'blue', 'black']), fragile: g.bool() },
            thumbnail: new Binary(g.bytes(g.int(16, 64)), 0),
            updatedAt: g.date(),
          };
        }
      },
      orders: function* () {
        const g = new Gen(seededRandom(seed + 2));
        for (let i = 0; i < n.orders; i++) {
          const lines = Array.from({ length: g.int(1, 5) }, () => ({
            sku: productSku(g.int(0, Math.max(0, n.products - 1))),
            quantity: new Int32(g.int(1, 5)),
            unitPrice: new Double(g.int(100, 99_999) / 100),
          }));
          yield {
            _id: new Int32(i + 1),
            customerId: customerId(g.int(0, Math.max(0, n.customers - 1))),
            status: g.pick(STATUSES),
            placedAt: g.date(),
            lines,
            total: new Double(Math.round(lines.reduce((s, l) => s + l.quantity.value * l.unitPrice.value, 0) * 100) / 100),
            shipping: { method: g.pick(['standard', 'express']), address: { city: g.pick(CITIES), country: g.pick(['PT', 'DE', 'JP', 'US']) } },
            paymentRef: new Binary(g.bytes(16), 4),
          };
        }
      },
    },
    indexes: {
      customers: [[{ email: 1 }, { unique: true }], [{ 'address.city': 1, age: -1 }]],
      products: [[{ category: 1 }]],
      orders: [[{ customerId: 1, placedAt: -1 }], [{ status: 1 }]],
    },
  };
}

/** `n` random documents (seeded) mixing every type FerretDB accepts, nested up to three levels. */
export function* randomDocuments(seed: number, n: number): Generator<Document> {
  const g = new Gen(seededRandom(seed));
  for (let i = 0; i < n; i++) {
    const doc: Document = { _id: randomId(g, i) };
    const fields = g.int(0, 8);
    for (let f = 0; f < fields; f++) doc[randomKey(g, f)] = randomValue(g, 0, false);
    yield doc;
  }
}

function randomId(g: Gen, i: number): unknown {
  // Unique by construction (the index is part of every kind of id).
  switch (g.int(0, 3)) {
    case 0:
      return new ObjectId(Buffer.concat([g.bytes(8), Buffer.from(Uint32Array.of(i).buffer).reverse()]));
    case 1:
      return new Int32(i);
    case 2:
      return `id-${i}-${g.word()}`;
    default:
      return { n: new Int32(i), kind: g.word() };
  }
}

function randomKey(g: Gen, position: number): string {
  // No '.', no leading '$', no NUL; suffixed so keys of one document never repeat.
  return `${g.pick(['k', 'name', 'väl', '名前', 'with space', 'under_score', 'dash-key'])}${position}`;
}

function randomValue(g: Gen, depth: number, insideArray: boolean): unknown {
  const kinds = depth >= 3 ? 11 : insideArray ? 12 : 13;
  switch (g.int(0, kinds - 1)) {
    case 0: {
      let x = (g.next() - 0.5) * 10 ** g.int(-5, 15);
      if (Object.is(x, -0)) x = 0;
      return new Double(x);
    }
    case 1:
      return g.bool(0.2) ? '' : `${g.word()} ${g.word()}`;
    case 2:
      return new Binary(g.bytes(g.int(0, 40)), g.pick([0, 0, 5, 128]));
    case 3:
      return g.objectId();
    case 4:
      return g.bool();
    case 5:
      return g.date();
    case 6:
      return null;
    case 7:
      return new BSONRegExp(`^${g.word().replace(/[^a-z]/g, '')}[0-9]+`, g.pick(['', 'i', 'm', 'ims']));
    case 8:
      return new Int32(g.int(-2_147_483_648, 2_147_483_647));
    case 9:
      return new Timestamp({ t: g.int(1, 2_000_000_000), i: g.int(0, 1000) });
    case 10:
      return Long.fromBigInt(BigInt(g.int(-(2 ** 31), 2 ** 31)) * BigInt(g.int(1, 2 ** 21)));
    case 11: {
      const o: Document = {};
      const keys = g.int(0, 4);
      for (let k = 0; k < keys; k++) o[randomKey(g, k)] = randomValue(g, depth + 1, false);
      return o;
    }
    default:
      // Arrays hold no arrays directly (FerretDB v1 refuses nested arrays).
      return Array.from({ length: g.int(0, 5) }, () => randomValue(g, depth + 1, true));
  }
}

/** Inserts documents in batches (the iterable is consumed lazily); returns how many. */
export async function loadCollection(
  client: MongoClient,
  database: string,
  collection: string,
  documents: Iterable<Document>,
  batchSize = 1000,
): Promise<number> {
  const coll = client.db(database).collection(collection);
  let batch: Document[] = [];
  let count = 0;
  for (const doc of documents) {
    batch.push(doc);
    if (batch.length >= batchSize) {
      await coll.insertMany(batch, { ordered: true });
      count += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) {
    await coll.insertMany(batch, { ordered: true });
    count += batch.length;
  }
  return count;
}

/** Loads a whole dataset into one database (creating its indexes); returns documents per collection. */
export async function loadDataset(client: MongoClient, database: string, dataset: Dataset): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [name, documents] of Object.entries(dataset.collections)) {
    counts[name] = await loadCollection(client, database, name, documents());
    for (const [key, options] of dataset.indexes[name] ?? []) {
      await client.db(database).collection(name).createIndex(key, options ?? {});
    }
  }
  return counts;
}
