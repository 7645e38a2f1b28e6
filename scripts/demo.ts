/**
 * The demo behind `npm run demo` (scripts/demo.sh brings the local stack up first).
 *
 * Loads a small shop into the stack's MongoDB, then runs the action bundle the way GitHub Actions
 * runs it (`node dist/index.js`, inputs as INPUT_* variables, real GITHUB_OUTPUT, GITHUB_STEP_SUMMARY
 * and GITHUB_STATE files, then the post step): validate, backup, a change to the data, a second
 * backup, restore verification, and recover into a side-by-side database that is then compared with
 * the source byte for byte. Every step's log, outputs and job summary are printed as plain text.
 *
 * Idempotent: it resets the stack's own Neon project (the one in .stack/env; tests make projects of
 * their own and never touch it) and drops its own MongoDB databases before it starts.
 */
import { BSON, MongoClient, type Document } from 'mongodb';
import { schemaNameFor, tableNameFor, quoteIdent } from '../src/naming.js';
import { connectPostgres } from '../src/postgres.js';
import { startAction, type ActionOptions, type ActionRun } from '../devkit/action.js';
import { loadDataset, shopDataset } from '../devkit/shop.js';
import { loadStackEnv } from '../devkit/stack.js';
import { WorkflowCommandReader } from '../devkit/workflow-commands.js';

const SHOP = 'shop';
const RECOVER_PREFIX = 'recovered_';
const RECOVERED = `${RECOVER_PREFIX}${SHOP}`;

const stack = loadStackEnv();
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

class DemoFailure extends Error {}

function heading(text: string): void {
  console.log(`\n${bold(`━━ ${text} `.padEnd(100, '━'))}`);
}

// ---------------------------------------------------------------------------------------------
// Running the bundle as GitHub Actions does

interface StepResult {
  ok: boolean;
  outputs: Record<string, string>;
}

/** Workflow commands (`::group::`, `::warning::`, `::add-mask::`…) as a person would read them on GitHub. */
function renderLogLine(line: string, commands: WorkflowCommandReader): string | undefined {
  const command = commands.read(line);
  if (!command) return line;
  switch (command.name) {
    case 'add-mask':
    case 'debug':
    case 'endgroup':
    case 'save-state':
    case 'set-output':
      return undefined;
    case 'group':
      return bold(`▸ ${command.data}`);
    case 'warning':
    case 'error':
    case 'notice':
      return `${command.name}: ${command.data}`;
    default:
      return line;
  }
}

/** Runs one entry of the bundle as GitHub does, its log shown as it comes. */
function runStep(entry: 'main' | 'post', opts: ActionOptions): Promise<ActionRun> {
  const commands = new WorkflowCommandReader();
  return startAction(entry, {
    ...opts,
    onLine: (line) => {
      const shown = renderLogLine(line, commands);
      if (shown !== undefined) for (const l of shown.split('\n')) console.log(`  │ ${l}`);
    },
  }).result;
}

/**
 * One step of a workflow: `uses: ./` with `with: inputs`. The environment is what a runner gives an
 * action (no MONGODB_SRV_URL or NEON_* fallbacks), plus the stack's CA so TLS to the emulated Neon
 * endpoints verifies, as it does against Neon's public certificates on GitHub.
 */
async function actionStep(title: string, inputs: Record<string, string>): Promise<StepResult> {
  heading(title);
  const opts: ActionOptions = {
    inputs,
    baseEnv: 'runner',
    env: { NODE_EXTRA_CA_CERTS: stack.NODE_EXTRA_CA_CERTS },
    timeoutMs: 30 * 60_000,
  };
  console.log(
    dim(
      `  node dist/index.js   ${Object.keys(inputs)
        .map((k) => `INPUT_${k.toUpperCase()}`)
        .join(' ')}`,
    ),
  );

  const main = await runStep('main', opts);
  const code = main.signal ? 128 : (main.exitCode ?? 1);

  // GitHub runs the post step after the job, whatever happened; here, right after the step.
  if (Object.keys(main.state).length > 0) {
    console.log(dim('  post step: node dist/post/index.js'));
    await runStep('post', { ...opts, state: main.state });
  }

  const { outputs } = main;
  console.log(bold('\n  outputs'));
  const width = Math.max(0, ...Object.keys(outputs).map((k) => k.length));
  for (const [name, value] of Object.entries(outputs)) {
    const shown = value.length > 200 ? `${value.slice(0, 200)}… (${value.length} characters)` : value;
    console.log(`    ${name.padEnd(width)}  ${shown}`);
  }
  if (main.summary.trim()) {
    console.log(bold('\n  job summary'));
    for (const line of renderMarkdown(main.summary)) console.log(`    ${line}`);
  }
  console.log(code === 0 ? `\n  ✔ ${title}: exit 0` : `\n  ✘ ${title}: exit ${code}`);
  return { ok: code === 0, outputs };
}

// ---------------------------------------------------------------------------------------------
// Job summary Markdown as plain text

function splitRow(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '\\' && i + 1 < body.length) cell += body[++i];
    else if (body[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else cell += body[i];
  }
  cells.push(cell.trim());
  return cells;
}

function inline(text: string): string {
  return text
    .replace(/<[^>]+>/g, '')
    .replace(/\*\*(.+?)\*\*/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]+\)/g, '$1');
}

function renderTable(rows: string[][]): string[] {
  const header = rows[0];
  const body = rows.slice(1).filter((r) => !r.every((c) => /^:?-{3,}:?$/.test(c)));
  const all = [header, ...body].map((r) => r.map(inline));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(all[0]), widths.map((w) => '─'.repeat(w)).join('  '), ...all.slice(1).map(line)];
}

export function renderMarkdown(markdown: string): string[] {
  const out: string[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim().startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].trim().startsWith('|'); i++) rows.push(splitRow(lines[i]));
      i--;
      out.push(...renderTable(rows));
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      const text = inline(h[2]);
      out.push(bold(text), h[1].length <= 2 ? '═'.repeat(text.length) : '─'.repeat(text.length));
      continue;
    }
    if (line.trim() === '' && (out.length === 0 || out[out.length - 1] === '')) continue;
    out.push(inline(line));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The shop, before and after

async function loadShop(mongo: MongoClient): Promise<void> {
  heading(`load a small shop into MongoDB database "${SHOP}"`);
  for (const db of [SHOP, RECOVERED]) await mongo.db(db).dropDatabase();
  const counts = await loadDataset(mongo, SHOP, shopDataset());
  for (const [collection, n] of Object.entries(counts)) console.log(`  ${SHOP}.${collection}: ${n} documents`);
  const sample = await mongo
    .db(SHOP)
    .collection('orders')
    .findOne({}, { sort: { _id: 1 } });
  console.log(dim(`  a sample order: ${BSON.EJSON.stringify(sample, { relaxed: true }).slice(0, 300)}…`));
}

async function changeShop(mongo: MongoClient): Promise<void> {
  heading('change the shop: new customers, orders shipped, products discontinued');
  const db = mongo.db(SHOP);
  const added = await db.collection('customers').insertMany([
    { name: { first: 'Hedy', last: 'Lamarr' }, email: 'hedy.lamarr@example.com', vip: true, createdAt: new Date(), tags: ['inventor'] },
    { name: { first: 'Alan', last: 'Turing' }, email: 'alan.turing@example.com', vip: false, createdAt: new Date(), tags: [] },
  ]);
  const shipped = await db.collection('orders').updateMany({ status: 'paid' }, { $set: { status: 'shipped', shippedAt: new Date() } });
  const gone = await db.collection('products').deleteMany({ stock: 0 });
  const discontinued = await db.collection('products').deleteMany({ _id: { $in: ['SKU-00001', 'SKU-00002'] } } as Document);
  console.log(`  customers: ${added.insertedCount} inserted`);
  console.log(`  orders:    ${shipped.modifiedCount} updated (paid → shipped)`);
  console.log(`  products:  ${gone.deletedCount + discontinued.deletedCount} deleted`);
}

/** Every document of every collection of `shop`, compared by its raw BSON bytes with `recovered_shop`. */
async function compareRecovered(mongo: MongoClient): Promise<boolean> {
  heading(`compare "${RECOVERED}" with "${SHOP}", byte for byte`);
  const collections = (await mongo.db(SHOP).listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).sort();
  const rows: string[][] = [['collection', 'source documents', 'recovered documents', 'byte-identical']];
  let ok = collections.length > 0;
  for (const name of collections) {
    const source = await rawById(mongo, SHOP, name);
    const recovered = await rawById(mongo, RECOVERED, name);
    let identical = 0;
    for (const [id, bytes] of source) if (recovered.get(id)?.equals(bytes)) identical++;
    const same = identical === source.size && recovered.size === source.size;
    ok &&= same;
    rows.push([name, String(source.size), String(recovered.size), same ? `all ${identical}` : `${identical} of ${source.size}: MISMATCH`]);
  }
  for (const line of renderTable(rows)) console.log(`  ${line}`);
  return ok;
}

async function rawById(mongo: MongoClient, db: string, collection: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const raw of mongo.db(db).collection(collection).find({}, { raw: true })) {
    const bytes = Buffer.from(raw as unknown as Buffer);
    out.set(BSON.EJSON.stringify({ id: BSON.deserialize(bytes, { promoteValues: false })._id }, { relaxed: false }), bytes);
  }
  return out;
}

/** The standby is plain Postgres: what a team can do with it when MongoDB is down. */
async function queryStandby(): Promise<void> {
  heading('query the standby in SQL (the doc column is natural JSONB)');
  const orders = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('orders'))}`;
  const customers = `${quoteIdent(schemaNameFor(SHOP))}.${quoteIdent(tableNameFor('customers'))}`;
  const queries = [
    `SELECT doc->>'status' AS status, count(*) AS orders, round(sum((doc->>'total')::numeric), 2) AS revenue FROM ${orders} GROUP BY 1 ORDER BY 1`,
    `SELECT doc->>'email' AS email, doc->'address'->>'city' AS city FROM ${customers} WHERE doc @> '{"vip": true}' ORDER BY 1 LIMIT 3`,
  ];
  const client = await connectPostgres(stack.NEON_DATABASE_URL, { applicationName: 'supaneon-sync demo' });
  try {
    for (const sql of queries) {
      console.log(dim(`  ${sql}`));
      const result = await client.query(sql);
      const rows = [result.fields.map((f) => f.name), ...result.rows.map((r) => result.fields.map((f) => String(r[f.name])))];
      for (const line of renderTable(rows)) console.log(`    ${line}`);
    }
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------

/** Only the default branch (the standby) remains in the stack's own project, with an empty database. */
async function resetStackProject(): Promise<void> {
  const control = stack.NEON_API_HOST.replace(/\/api\/v2\/?$/, '/__emulator');
  const res = await fetch(`${control}/projects/${encodeURIComponent(stack.NEON_PROJECT_ID)}/reset`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.NEON_API_KEY}` },
    signal: AbortSignal.timeout(120_000),
  });
  if (!res.ok)
    throw new DemoFailure(`resetting the stack's Neon project ${stack.NEON_PROJECT_ID} failed: HTTP ${res.status} ${await res.text()}`);
}

function expectStep(step: StepResult, title: string, output?: [string, string]): void {
  if (!step.ok) throw new DemoFailure(`${title} failed (its log and job summary are above)`);
  if (output && step.outputs[output[0]] !== output[1]) {
    throw new DemoFailure(`${title}: output ${output[0]} is ${step.outputs[output[0]] ?? '(missing)'}, expected ${output[1]}`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const neon = {
    'neon-api-key': stack.NEON_API_KEY,
    'neon-project-id': stack.NEON_PROJECT_ID,
    'neon-database-url': stack.NEON_DATABASE_URL,
    'neon-api-host': stack.NEON_API_HOST,
  };
  const source = { 'mongodb-uri': stack.MONGODB_SRV_URL, databases: SHOP };

  heading('supaneon-sync demo on the local stack');
  console.log('  MongoDB-wire server, Neon API emulator and Postgres endpoints are local; the action runs from dist/.');
  const mongo = new MongoClient(stack.MONGODB_SRV_URL, { serverSelectionTimeoutMS: 30_000 });
  try {
    await resetStackProject();
    console.log("  the stack's Neon project reset: only its default branch (the standby), with an empty database");
    await mongo.connect();
    await loadShop(mongo);

    const validate = await actionStep('mode: validate', { mode: 'validate', ...source, ...neon });
    expectStep(validate, 'validate', ['valid', 'true']);

    const first = await actionStep('mode: backup (first)', { mode: 'backup', ...source, ...neon });
    expectStep(first, 'first backup');

    await changeShop(mongo);

    const second = await actionStep('mode: backup (after the changes: only changed rows are written)', {
      mode: 'backup',
      ...source,
      ...neon,
    });
    expectStep(second, 'second backup');
    const branchId = second.outputs['branch-id'];
    if (!branchId) throw new DemoFailure('the second backup reported no branch-id output');

    const restore = await actionStep(`mode: restore (verify backup branch ${second.outputs['branch-name'] ?? branchId})`, {
      mode: 'restore',
      'backup-branch': branchId,
      ...neon,
    });
    expectStep(restore, 'restore', ['verified', 'true']);

    const recovered = await actionStep(`mode: recover (into "${RECOVERED}", side by side)`, {
      mode: 'recover',
      'backup-branch': branchId,
      'target-mongodb-uri': stack.MONGODB_SRV_URL,
      'target-database-prefix': RECOVER_PREFIX,
      databases: SHOP,
      ...neon,
    });
    expectStep(recovered, 'recover', ['verified', 'true']);

    if (!(await compareRecovered(mongo))) throw new DemoFailure(`"${RECOVERED}" differs from "${SHOP}"`);
    await queryStandby();
  } finally {
    await mongo.close();
  }
  heading('done');
  console.log(
    bold(
      `  ✔ DEMO PASSED in ${Math.round((Date.now() - started) / 1000)} s: validated, backed up twice, restore verified, ` +
        `recovered into "${RECOVERED}" byte-identical to "${SHOP}".`,
    ),
  );
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.log(`\n${bold(`  ✘ DEMO FAILED: ${message}`)}`);
  if (!(error instanceof DemoFailure) && error instanceof Error && error.stack) console.log(dim(error.stack));
  process.exitCode = 1;
});
