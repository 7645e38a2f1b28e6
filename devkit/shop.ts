/**
 * A small web shop for the tests and the demo (customers, products, orders with nested documents,
 * arrays, Unicode text and several BSON types), seeded with the shared PRNG so a seed always
 * yields the same documents, and a loader that inserts any documents in batches without holding a
 * collection in memory.
 *
 * Tests rely on its shape: collections `customers` (ObjectId ids, `email` unique, `age`, `vip`,
 * `address.city`), `products` (`SKU-00000`… ids, `stock`, `category`) and `orders` (int32 ids 1…n,
 * `status`, `lines`, `total`), with the indexes listed below. The benchmark's larger dataset, with
 * its size distribution, is generate.ts.
 */
import { Binary, Double, Int32, Long, ObjectId, type Document, type MongoClient } from 'mongodb';
import { Prng } from './prng.js';

const WORDS = [
  'alpha',
  'bravo',
  'café',
  'delta',
  'échelle',
  'fjord',
  'garçon',
  'hôtel',
  'igloo',
  'jalapeño',
  'kilo',
  'lima',
  'mañana',
  'naïve',
  'oscar',
  'papa',
  'quebec',
  'romeo',
  'sierra',
  'tango',
  'über',
  'victor',
  'whiskey',
  'x-ray',
  'yankee',
  'zulu',
  '東京',
  'Москва',
  'Ελλάδα',
  '🙂 emoji',
  'quote"inside',
  "apostrophe's",
  'back\\slash',
  'tab\there',
];
const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Zoë', 'José'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Torvalds',
  'Hamilton',
  'Thompson',
  'Liskov',
  'Ritchie',
  'Allen',
  'Dijkstra',
  'Perlman',
  'Müller',
  'Núñez',
];
const CITIES = ['Lisbon', 'Berlin', 'Osaka', 'Austin', 'Nairobi', 'Lima', 'Oslo', 'Montréal', 'São Paulo', 'Kraków'];
const CATEGORIES = ['books', 'garden', 'kitchen', 'toys', 'tools', 'music', 'outdoor'];
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'];

/** A word of the shop's vocabulary: accents, other scripts, an emoji, quotes and backslashes. */
export function word(rng: Prng): string {
  return rng.pick(WORDS);
}

/** A date between 2015 and 2026, to the millisecond. */
export function date(rng: Prng): Date {
  return new Date(Date.UTC(2015, 0, 1) + Math.floor(rng.next() * 12 * 365 * 86_400_000));
}

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
        const g = new Prng(seed);
        for (let i = 0; i < n.customers; i++) {
          const first = g.pick(FIRST);
          const last = g.pick(LAST);
          yield {
            _id: customerId(i),
            name: { first, last },
            email: `${first}.${last}.${i}@example.com`.toLowerCase(),
            age: new Int32(g.int(18, 90)),
            vip: g.bool(0.1),
            createdAt: date(g),
            address: { street: `${g.int(1, 999)} ${word(g)} street`, city: g.pick(CITIES), zip: String(g.int(10000, 99999)) },
            tags: Array.from({ length: g.int(0, 4) }, () => word(g)),
            loyaltyPoints: Long.fromNumber(g.int(0, 5_000_000) * 1000),
            notes: g.bool(0.3) ? null : `${word(g)} ${word(g)} ${word(g)}`,
          };
        }
      },
      products: function* () {
        const g = new Prng(seed + 1);
        for (let i = 0; i < n.products; i++) {
          yield {
            _id: productSku(i),
            title: `${word(g)} ${word(g)}`,
            category: g.pick(CATEGORIES),
            price: new Double(g.int(100, 99_999) / 100),
            stock: new Int32(g.int(0, 1000)),
            attributes: { weightKg: new Double(g.int(1, 5000) / 100), color: g.pick(['red', 'green', 'blue', 'black']), fragile: g.bool() },
            thumbnail: new Binary(g.bytes(g.int(16, 64)), 0),
            updatedAt: date(g),
          };
        }
      },
      orders: function* () {
        const g = new Prng(seed + 2);
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
            placedAt: date(g),
            lines,
            total: new Double(Math.round(lines.reduce((s, l) => s + l.quantity.value * l.unitPrice.value, 0) * 100) / 100),
            shipping: {
              method: g.pick(['standard', 'express']),
              address: { city: g.pick(CITIES), country: g.pick(['PT', 'DE', 'JP', 'US']) },
            },
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
      await client
        .db(database)
        .collection(name)
        .createIndex(key, options ?? {});
    }
  }
  return counts;
}
