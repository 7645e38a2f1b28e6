/**
 * `npm run bench:codec`: the document codec alone, in memory, on the benchmark's own documents.
 * The codec is the hot path of every mode (backup encodes each document, verification re-checks
 * each stored row, recover decodes each one), so a change to it is measured here before and after,
 * without the servers whose speed hides it in the end-to-end benchmark.
 *
 * Each operation runs in a process of its own (so the JIT's view of one does not slow another)
 * over the same documents for several rounds; the fastest round is reported, in documents and MB
 * per second of the process's own CPU time (user + system), which other work on the machine
 * disturbs far less than wall time.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BSON } from 'mongodb';
import { assertUtf8Text, decodeExact, encodeDocument, idKey, queryJson } from '../src/codec.js';
import { COLLECTIONS, generateDocument, planDataset } from '../devkit/generate.js';

const { values } = parseArgs({
  options: { docs: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '7' }, op: { type: 'string' } },
});
const docs = Number(values.docs);
const rounds = Number(values.rounds);
if (!Number.isInteger(docs) || docs < 1 || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error('--docs and --rounds take whole numbers of at least 1');
}

const raws: Buffer[] = [];
for (const plan of planDataset(docs)) {
  for (let i = 0; i < plan.documents; i++) raws.push(Buffer.from(BSON.serialize(generateDocument(plan.stream, i))));
}
const bytes = raws.reduce((sum, r) => sum + r.length, 0);

const operations: Record<string, (raw: Buffer) => unknown> = {
  // backup: everything stored for a document
  encodeDocument,
  // verification: the checks each stored row goes through
  'verify (assertUtf8Text + queryJson + idKey)': (raw) => {
    assertUtf8Text(raw);
    return queryJson(raw).length + idKey(raw).length;
  },
  // recover: values the driver writes back byte-exact (re-serialized and compared)
  decodeExact,
};

let sink = 0;
if (values.op === undefined) {
  console.log(`${raws.length} documents of ${COLLECTIONS.length} shapes, ${(bytes / 1e6).toFixed(1)} MB of BSON, best of ${rounds} rounds`);
  for (const name of Object.keys(operations)) {
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--docs', String(docs), '--rounds', String(rounds), '--op', name];
    process.stdout.write(execFileSync(process.execPath, args, { encoding: 'utf8' }));
  }
} else {
  const op = operations[values.op];
  if (op === undefined) throw new Error(`--op takes one of: ${Object.keys(operations).join(', ')}`);
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = process.cpuUsage();
    for (const raw of raws) sink += op(raw) === undefined ? 0 : 1;
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  console.log(
    `${values.op}: ${(raws.length / best).toFixed(0)} docs/s, ${(bytes / 1e6 / best).toFixed(1)} MB/s (${(best * 1000).toFixed(0)} ms of CPU)`,
  );
}
if (sink < 0) console.log(sink); // keeps the results alive so no call is optimised away
