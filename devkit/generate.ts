/**
 * Deterministic, realistic documents for the benchmark.
 *
 * Four collections shaped like what applications keep in MongoDB (customers, orders, events,
 * attachments), with sizes from ~200 B to ~64 KB: most documents are small, a long tail is large
 * (many order lines, long notes, binary payloads). Every BSON type the MongoDB-wire server of the local
 * stack accepts appears: double, string, object, array, binData (subtypes 0, 4, 5), objectId, bool,
 * date, null, regex, int32, timestamp, int64. What FerretDB refuses is never generated: nested arrays,
 * keys with '.' or a leading '$', NUL in strings, NaN, ±Infinity, -0.
 *
 * Document `i` of a collection depends only on (seed, collection, i), so any document can be
 * regenerated alone: that is how the incremental rounds are undone between runs.
 */
import { BSON } from 'mongodb';
import { Prng, seedFor } from './prng.js';

const { Binary, BSONRegExp, Double, Int32, Long, ObjectId, Timestamp } = BSON;
type Document = BSON.Document;

export const DEFAULT_SEED = 20240501;
/** Bumped whenever the documents produced change, so a dataset loaded by an older version is reloaded. */
export const GENERATOR_VERSION = 1;

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an ' +
  'they you were her she there been one all we their has would when if so what out up more about into them ' +
  'can only other time new some could these two may first then do any like my now over such our man me even ' +
  'most made after also did many before must through back years where much your way well down should because ' +
  'each just those people how too little state good very make world still own see men work long get here ' +
  'between both life being under never day same another know while last might us great old year off come since ' +
  'against go came right used take three invoice shipment warehouse refund priority customer account balance'
).split(' ');
const FIRST = ['Ada', 'Grace', 'Alan', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Tim'];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Torvalds',
  'Liskov',
  'Thompson',
  'Hamilton',
  'Ritchie',
  'Allen',
  'Dijkstra',
  'Perlman',
  'Lee',
];
const CITIES = ['Lisbon', 'Berlin', 'Osaka', 'Austin', 'Nairobi', 'Lima', 'Oslo', 'Pune', 'Quebec', 'Sydney'];
const COUNTRIES = ['PT', 'DE', 'JP', 'US', 'KE', 'PE', 'NO', 'IN', 'CA', 'AU'];
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];
const EVENT_TYPES = ['page_view', 'click', 'signup', 'login', 'purchase', 'error', 'search', 'logout'];
const CONTENT_TYPES = ['image/png', 'image/jpeg', 'application/pdf', 'application/zip', 'application/octet-stream'];

const EPOCH_2015 = Date.UTC(2015, 0, 1);
const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

/** A JS number stored as a BSON double even when integral; never -0 (FerretDB turns it into 0). */
function double(x: number): BSON.Double {
  return new Double(x === 0 ? 0 : x);
}

function text(rng: Prng, length: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < length) {
    const w = rng.pick(WORDS);
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(' ').slice(0, Math.max(0, length));
}

function objectIdAt(rng: Prng, seconds: number): BSON.ObjectId {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32BE(seconds >>> 0, 0);
  b.writeUInt32BE(rng.uint32(), 4);
  b.writeUInt32BE(rng.uint32(), 8);
  return new ObjectId(b);
}

/**
 * Target size of a document: min * (max/min)^(u^k). Larger k puts more documents near the minimum
 * and keeps a thin tail up to the maximum.
 */
function targetSize(rng: Prng, min: number, max: number, k: number): number {
  return Math.round(min * Math.pow(max / min, Math.pow(rng.next(), k)));
}

interface CollectionShape {
  name: string;
  /** Share of the dataset's documents. */
  share: number;
  make(rng: Prng, index: number, seed: number): BSON.Document;
}

const STREAM_CUSTOMER_ID = 100;

function customerId(seed: number, index: number): BSON.ObjectId {
  const rng = new Prng(seedFor(seed, STREAM_CUSTOMER_ID, index));
  return objectIdAt(rng, Math.floor((EPOCH_2015 + rng.next() * TEN_YEARS_MS) / 1000));
}

const customers: CollectionShape = {
  name: 'customers',
  share: 0.25,
  make(rng, index, seed) {
    const target = targetSize(rng, 300, 16 * 1024, 6);
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const city = rng.int(0, CITIES.length - 1);
    const doc: Document = {
      _id: customerId(seed, index),
      name: `${first} ${last}`,
      email: `${first.toLowerCase()}.${last.toLowerCase()}.${index}@example.com`,
      active: rng.bool(0.8),
      tier: new Int32(rng.int(0, 4)),
      balance: double(Math.round(rng.next() * 2_000_000 - 200_000) / 100),
      lifetimeCents: Long.fromBigInt(BigInt(rng.int(0, 2_000_000)) * 4096n),
      createdAt: new Date(EPOCH_2015 + Math.floor(rng.next() * TEN_YEARS_MS)),
      lastLoginAt: rng.bool(0.7) ? new Date(EPOCH_2015 + TEN_YEARS_MS - Math.floor(rng.next() * 3e10)) : null,
      address: {
        street: `${rng.int(1, 999)} ${text(rng, rng.int(8, 20))} street`,
        city: CITIES[city],
        postcode: String(rng.int(10000, 99999)),
        country: COUNTRIES[city],
        geo: {
          lat: double(Math.round(rng.next() * 1_800_000 - 900_000) / 10_000),
          lng: double(Math.round(rng.next() * 3_600_000 - 1_800_000) / 10_000),
        },
      },
      tags: Array.from({ length: rng.int(0, 5) }, () => rng.pick(WORDS)),
      prefs: { newsletter: rng.bool(0.3), language: rng.pick(['en', 'pt', 'de', 'ja']), theme: rng.pick(['light', 'dark']) },
      notes: '',
    };
    doc.notes = text(rng, target - BSON.calculateObjectSize(doc));
    return doc;
  },
};

const orders: CollectionShape = {
  name: 'orders',
  share: 0.35,
  make(rng, index, seed) {
    const target = targetSize(rng, 350, 32 * 1024, 8);
    const placed = EPOCH_2015 + Math.floor(rng.next() * TEN_YEARS_MS);
    const status = rng.pick(STATUSES);
    const items: Document[] = [];
    const doc: Document = {
      _id: `ord-${index.toString(36).padStart(8, '0')}`,
      customerId: customerId(seed, rng.int(0, Math.max(0, index))),
      status,
      placedAt: new Date(placed),
      shippedAt: status === 'shipped' || status === 'delivered' ? new Date(placed + rng.int(3_600_000, 9e8)) : null,
      currency: rng.pick(['EUR', 'USD', 'JPY']),
      items,
      totals: {},
      totalCents: Long.fromNumber(0),
      revision: new Timestamp({ t: Math.floor(placed / 1000), i: rng.int(1, 50) }),
      paymentRef: new Binary(rng.bytes(16), 0),
    };
    let size = BSON.calculateObjectSize(doc);
    let subtotal = 0;
    do {
      const qty = rng.int(1, 12);
      const unit = rng.int(99, 99_999) / 100;
      subtotal += qty * unit;
      const item: Document = {
        sku: `SKU-${rng.int(100000, 999999)}`,
        name: text(rng, rng.int(10, 60)),
        qty: new Int32(qty),
        unitPrice: double(unit),
        discount: rng.bool(0.2) ? double(rng.int(1, 30) / 100) : null,
        attributes: { color: rng.pick(['red', 'blue', 'black', 'white']), size: rng.pick(['S', 'M', 'L', 'XL']), gift: rng.bool(0.1) },
      };
      items.push(item);
      size += BSON.calculateObjectSize(item) + 4;
    } while (size < target);
    const tax = Math.round(subtotal * 21) / 100;
    doc.totals = {
      subtotal: double(Math.round(subtotal * 100) / 100),
      tax: double(tax),
      grand: double(Math.round((subtotal + tax) * 100) / 100),
    };
    doc.totalCents = Long.fromNumber(Math.round((subtotal + tax) * 100));
    return doc;
  },
};

const events: CollectionShape = {
  name: 'events',
  share: 0.35,
  make(rng, index) {
    const target = targetSize(rng, 200, 4096, 4);
    const at = EPOCH_2015 + TEN_YEARS_MS - 86_400_000 * 30 + index * 13 + rng.int(0, 999);
    const payload: Document = {};
    const doc: Document = {
      _id: objectIdAt(rng, Math.floor(at / 1000)),
      ts: new Timestamp({ t: Math.floor(at / 1000), i: rng.int(1, 1000) }),
      at: new Date(at),
      type: rng.pick(EVENT_TYPES),
      source: { app: rng.pick(['web', 'ios', 'android']), version: `${rng.int(1, 9)}.${rng.int(0, 30)}.${rng.int(0, 9)}` },
      sessionId: new Binary(rng.bytes(16), Binary.SUBTYPE_UUID),
      seq: Long.fromBigInt(BigInt(index) + 5_000_000_000n),
      durationMs: new Int32(rng.int(0, 120_000)),
      score: double(rng.next() * 100),
      flags: [new Int32(rng.int(0, 9)), rng.pick(WORDS), rng.bool(), null],
      match: new BSONRegExp(`^${rng.pick(WORDS)}[a-z]*$`, rng.pick(['', 'i', 'im'])),
      payload,
    };
    let size = BSON.calculateObjectSize(doc);
    for (let k = 0; size < target; k++) {
      const key = `f${k}`;
      const kind = rng.int(0, 4);
      const value =
        kind === 0
          ? new Int32(rng.int(-1000, 1000))
          : kind === 1
            ? double(rng.next() * 1e6)
            : kind === 2
              ? rng.bool()
              : kind === 3
                ? { ref: rng.pick(WORDS), n: new Int32(k) }
                : text(rng, rng.int(8, 120));
      payload[key] = value;
      size += BSON.calculateObjectSize({ [key]: value }) - 5;
    }
    return doc;
  },
};

const attachments: CollectionShape = {
  name: 'attachments',
  share: 0.05,
  make(rng, index, seed) {
    const target = targetSize(rng, 1024, 64 * 1024 - 512, 2);
    const doc: Document = {
      _id: Long.fromNumber(index + 1),
      name: `file-${index}.${rng.pick(['png', 'jpg', 'pdf', 'zip'])}`,
      contentType: rng.pick(CONTENT_TYPES),
      uploadedAt: new Date(EPOCH_2015 + Math.floor(rng.next() * TEN_YEARS_MS)),
      owner: customerId(seed, rng.int(0, Math.max(0, index * 5))),
      md5: new Binary(rng.bytes(16), Binary.SUBTYPE_MD5),
      size: new Int32(0),
      labels: Array.from({ length: rng.int(0, 3) }, () => rng.pick(WORDS)),
      meta: { width: new Int32(rng.int(16, 4096)), height: new Int32(rng.int(16, 4096)), compressed: rng.bool(0.6) },
      data: new Binary(Buffer.alloc(0), 0),
    };
    const n = Math.max(16, target - BSON.calculateObjectSize(doc));
    // Random bytes: attachments are usually already compressed, so Postgres cannot shrink them either.
    doc.data = new Binary(rng.bytes(n), 0);
    doc.size = new Int32(n);
    return doc;
  },
};

export const COLLECTIONS: readonly CollectionShape[] = [customers, orders, events, attachments];
export const BENCH_DATABASE = 'bench';

export interface CollectionPlan {
  name: string;
  stream: number;
  documents: number;
}

/** How `docs` documents are spread over the collections (largest remainder, so they add up exactly). */
export function planDataset(docs: number): CollectionPlan[] {
  const exact = COLLECTIONS.map((c) => c.share * docs);
  const counts = exact.map(Math.floor);
  let left = docs - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, frac: x - Math.floor(x) })).sort((a, b) => b.frac - a.frac);
  for (const { i } of order) {
    if (left-- <= 0) break;
    counts[i]++;
  }
  return COLLECTIONS.map((c, stream) => ({ name: c.name, stream, documents: counts[stream] }));
}

export function generateDocument(stream: number, index: number, seed = DEFAULT_SEED): BSON.Document {
  const shape = COLLECTIONS[stream];
  const { _id, ...rest } = shape.make(new Prng(seedFor(seed, stream, index)), index, seed);
  return { _id, shard: new Int32(shardOf(index)), ...rest };
}

/**
 * Every document carries `shard: index % SHARDS`. Incremental round `r` (1, 2, …) changes the
 * documents of five shards, i.e. exactly 1% of each collection, disjoint between rounds: three shards
 * updated (60%), one deleted (20%), and as many new documents inserted (20%), so counts stay the same.
 * Rounds select by shard rather than by _id because FerretDB (SQLite) scans the collection for every
 * filter: one filtered statement per kind of change costs one scan, one statement per _id would cost
 * one scan per document.
 */
export const SHARDS = 500;
export const ROUNDS_PER_DATASET = SHARDS / 5;
const INSERT_INDEX_BASE = 1_000_000_000;
const INSERT_INDEX_STRIDE = 10_000_000;

/** Loaded documents spread over 0..SHARDS-1; documents inserted by round r sit in shard SHARDS + r. */
function shardOf(index: number): number {
  return index < INSERT_INDEX_BASE ? index % SHARDS : SHARDS + Math.floor((index - INSERT_INDEX_BASE) / INSERT_INDEX_STRIDE);
}

export interface RoundChanges {
  updatedShards: number[];
  deletedShard: number;
  insertedShard: number;
  /** Indices of the changed generated documents (updated and deleted), to regenerate them when undoing. */
  changed: number[];
  /** Indices of the documents this round inserts. */
  inserted: number[];
}

export function roundChanges(documents: number, round: number): RoundChanges {
  if (!Number.isInteger(round) || round < 1 || round > ROUNDS_PER_DATASET) {
    throw new Error(`incremental round ${round} is outside 1..${ROUNDS_PER_DATASET}`);
  }
  const first = (round - 1) * 5;
  const changed: number[] = [];
  let deleted = 0;
  for (let i = 0; i < documents; i++) {
    const shard = i % SHARDS;
    if (shard >= first && shard < first + 4) {
      changed.push(i);
      if (shard === first + 3) deleted++;
    }
  }
  const inserted = Array.from({ length: deleted }, (_, k) => INSERT_INDEX_BASE + round * INSERT_INDEX_STRIDE + k);
  return { updatedShards: [first, first + 1, first + 2], deletedShard: first + 3, insertedShard: SHARDS + round, changed, inserted };
}
