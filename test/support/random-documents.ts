/**
 * Random documents for tests, seeded with the shared PRNG: every BSON type the test server accepts,
 * nested up to three levels.
 *
 * They stay within what FerretDB v1.24 stores unchanged: double, string, object, array (not nested
 * directly in an array), binData, objectId, bool, date, null, regex, int32, timestamp, int64; no
 * keys with '.' or a leading '$', no NUL, no NaN/±Infinity, no -0. (The full BSON range is proven
 * at the codec level against the BSON corpus.)
 */
import { Binary, BSONRegExp, Double, Int32, Long, ObjectId, Timestamp, type Document } from 'mongodb';
import { Prng } from '../../devkit/prng.js';
import { date, word } from '../../devkit/shop.js';

/** `n` random documents (seeded) mixing every type FerretDB accepts, nested up to three levels. */
export function* randomDocuments(seed: number, n: number): Generator<Document> {
  const g = new Prng(seed);
  for (let i = 0; i < n; i++) {
    const doc: Document = { _id: randomId(g, i) };
    const fields = g.int(0, 8);
    for (let f = 0; f < fields; f++) doc[randomKey(g, f)] = randomValue(g, 0, false);
    yield doc;
  }
}

function randomId(g: Prng, i: number): unknown {
  // Unique by construction (the index is part of every kind of id).
  switch (g.int(0, 3)) {
    case 0:
      return new ObjectId(Buffer.concat([g.bytes(8), Buffer.from(Uint32Array.of(i).buffer).reverse()]));
    case 1:
      return new Int32(i);
    case 2:
      return `id-${i}-${word(g)}`;
    default:
      return { n: new Int32(i), kind: word(g) };
  }
}

function randomKey(g: Prng, position: number): string {
  // No '.', no leading '$', no NUL; suffixed so keys of one document never repeat.
  return `${g.pick(['k', 'name', 'väl', '名前', 'with space', 'under_score', 'dash-key'])}${position}`;
}

function randomValue(g: Prng, depth: number, insideArray: boolean): unknown {
  const kinds = depth >= 3 ? 11 : insideArray ? 12 : 13;
  switch (g.int(0, kinds - 1)) {
    case 0: {
      let x = (g.next() - 0.5) * 10 ** g.int(-5, 15);
      if (Object.is(x, -0)) x = 0;
      return new Double(x);
    }
    case 1:
      return g.bool(0.2) ? '' : `${word(g)} ${word(g)}`;
    case 2:
      return new Binary(g.bytes(g.int(0, 40)), g.pick([0, 0, 5, 128]));
    case 3:
      return new ObjectId(g.bytes(12));
    case 4:
      return g.bool();
    case 5:
      return date(g);
    case 6:
      return null;
    case 7:
      return new BSONRegExp(`^${word(g).replace(/[^a-z]/g, '')}[0-9]+`, g.pick(['', 'i', 'm', 'ims']));
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
