// Readiness probes for the stack scripts, so they need neither curl nor a mongo shell:
//   node probe.mjs mongo <uri>   exit 0 when a MongoDB driver `ping` answers
//   node probe.mjs http <url>    exit 0 on HTTP 200, printing the body
// Exit 1 means "not ready (yet)"; the reason goes to stderr.
import { MongoClient } from 'mongodb';

const [kind, target] = process.argv.slice(2);
const TIMEOUT_MS = 2000;

async function probeMongo(uri) {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: TIMEOUT_MS,
    connectTimeoutMS: TIMEOUT_MS,
  });
  try {
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}

async function probeHttp(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
  process.stdout.write(body);
}

try {
  if (kind === 'mongo') await probeMongo(target);
  else if (kind === 'http') await probeHttp(target);
  else throw new Error(`unknown probe '${kind}' (expected mongo or http)`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
