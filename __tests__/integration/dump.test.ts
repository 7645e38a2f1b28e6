// mongodump directories on the local stack: recover writes a backup as a dump (plain and gzip),
// backup reads a dump through the same sync as a live source, bad dumps are refused with the file and
// byte offset and leave the standby as it was, and the dump path carries every BSON corpus document.
// With mongodump/mongorestore available, both directions are also proven against the real tools.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Binary, BSON, Double, Int32, Long, MongoClient, ObjectId, Timestamp, type Document } from 'mongodb';
import type pg from 'pg';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import { bsonDocuments, parseMetadata } from '../../src/dump-format.js';
import { backup } from '../../src/modes/backup.js';
import { recover } from '../../src/modes/recover.js';
import { restore } from '../../src/modes/restore.js';
import { validate } from '../../src/modes/validate.js';
import { connectPostgres } from '../../src/postgres.js';
import { corpusValidCases, withInt32Id } from '../../test/support/bson-corpus.js';
import { mongoTools } from '../../devkit/mongo-tools.js';
import { recordingIo } from '../../test/support/recording-io.js';
import { findSecretLeaks, runCli } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];

// Own database names: FerretDB and the default branch are shared with test files running in parallel.
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const SOURCE_DB = `dump_src_${suffix}`;
const CORPUS_DB = `dump_corpus_${suffix}`;
const COLLECTIONS = ['customers', 'log', 'orders'];

type AnyIdDocument = Document & { _id: unknown };

/** The Neon settings of this file's own project, as the NEON_* variables of a workflow. */
let neonEnv: Record<string, string> = {};

function config(inputs: RawInputs): Config {
  return parseConfig({ databases: SOURCE_DB, ...inputs }, { ...process.env, ...neonEnv });
}

function customers(): Document[] {
  return Array.from({ length: 200 }, (_, i) => ({
    _id: i % 2 === 0 ? new ObjectId() : `key-${i}`,
    email: `user${i}@example.com`,
    int32: new Int32(i - 100),
    int64: Long.fromString(`${9_007_199_254_740_000 + i}`),
    double: new Double(i / 7),
    when: new Date(Date.UTC(2020, 0, 1) + i * 86_400_000),
    ts: new Timestamp({ t: 1_700_000_000 + i, i: 1 }),
    uuid: new Binary(Buffer.alloc(16, i & 0xff), 4),
    address: { city: i % 2 ? 'Lyon' : 'Porto', zip: `${10_000 + i}` },
    tags: ['a', `t${i % 5}`],
    z_last: 'key order kept',
    a_after: 1,
  }));
}

async function rawById(client: MongoClient, db: string, collection: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const raw of client.db(db).collection(collection).find({}, { raw: true })) {
    const bytes = Buffer.from(raw as unknown as Buffer);
    out.set(idOf(bytes), bytes);
  }
  return out;
}

function idOf(bytes: Buffer): string {
  return BSON.EJSON.stringify({ id: BSON.deserialize(bytes, { promoteValues: false })._id }, { relaxed: false });
}

async function fileDocs(file: string): Promise<Map<string, Buffer>> {
  const bytes = file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file);
  const out = new Map<string, Buffer>();
  for await (const doc of bsonDocuments(
    (async function* () {
      yield bytes;
    })(),
    file,
  ))
    out.set(idOf(doc), Buffer.from(doc));
  return out;
}

function expectSameDocuments(actual: Map<string, Buffer>, expected: Map<string, Buffer>, what: string): void {
  expect(actual.size).toBe(expected.size);
  for (const [id, bytes] of expected) {
    if (!actual.get(id)?.equals(bytes)) throw new Error(`${what} ${id}: bytes differ`);
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Runs a command with a time bound; resolves with its exit code and output. */
function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describeWithStack('mongodump directories on the local stack', STACK, (env) => {
  let mongo: MongoClient;
  let standby: pg.Client;
  let project: TestProject | undefined;
  let work: string;
  let liveBranchId: string;
  let liveRunHashes: Record<string, string>;
  const exported = () => path.join(work, 'exported');

  /** Per collection of a run (the newest completed when no id): its content hash, index definitions and options as recorded. */
  async function runHashes(runId?: string): Promise<Record<string, string>> {
    const r = await standby.query(
      `SELECT collection, content_hash || ' ' || indexes::text || ' ' || options::text AS content_hash
       FROM supaneon_sync.backup_collections WHERE run_id = COALESCE($1,
         (SELECT run_id FROM supaneon_sync.backups WHERE status = 'completed' ORDER BY finished_at DESC LIMIT 1)) AND database = $2`,
      [runId ?? null, SOURCE_DB],
    );
    return Object.fromEntries(r.rows.map((x) => [x.collection, x.content_hash]));
  }

  async function standbyState(): Promise<string> {
    const runs = await standby.query(
      `SELECT run_id FROM supaneon_sync.backups WHERE status = 'completed' ORDER BY finished_at DESC LIMIT 1`,
    );
    const rows = await standby.query(
      `SELECT count(*)::int AS n, md5(string_agg(hash::text, ',' ORDER BY _id)) AS h FROM "${SOURCE_DB}"."customers"`,
    );
    return JSON.stringify({ run: runs.rows[0]?.run_id, rows: rows.rows[0] });
  }

  beforeAll(async () => {
    project = await createTestProject('dump.test.ts');
    neonEnv = project.env;
    work = mkdtempSync(path.join(tmpdir(), 'supaneon-dump-'));
    mongo = new MongoClient(env.MONGODB_SRV_URL);
    await mongo.connect();
    const db = mongo.db(SOURCE_DB);
    await db.collection('customers').insertMany(customers());
    await db.collection('customers').createIndex({ email: 1 }, { unique: true, name: 'email_unique' });
    await db.collection('customers').createIndex({ 'address.city': 1, int32: -1 }, { name: 'city_int32' });
    await db.createCollection('log', { capped: true, size: 1_048_576, max: 1000 });
    await db.collection<AnyIdDocument>('log').insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: new Int32(i), line: `entry ${i}` })));
    await db.collection<AnyIdDocument>('orders').insertMany(
      Array.from({ length: 3000 }, (_, i) => ({
        _id: new Int32(i),
        payload: 'x'.repeat(300 + (i % 700)),
        at: new Date(1_700_000_000_000 + i),
      })),
    );
    standby = await connectPostgres(project.databaseUrl);

    const io = recordingIo();
    if (!(await backup(config({ mode: 'backup' }), io))) throw new Error(`the live backup failed:\n${io.lines.join('\n')}`);
    liveBranchId = io.outputs['branch-id'];
    liveRunHashes = await runHashes();
    expect(Object.keys(liveRunHashes).sort()).toEqual(COLLECTIONS);
  }, 600_000);

  afterAll(async () => {
    if (mongo) {
      for (const name of [SOURCE_DB, `dmp_${SOURCE_DB}`, `mr_${SOURCE_DB}`, `md_${SOURCE_DB}`])
        await mongo
          .db(name)
          .dropDatabase()
          .catch(() => undefined);
      await mongo.close();
    }
    await standby?.end().catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
    await project?.dispose();
  });

  test('recover writes a backup branch as a mongodump directory: exact bytes, mongodump metadata, verified, nothing beside it', async () => {
    const io = recordingIo();
    const ok = await recover(config({ mode: 'recover', 'backup-branch': liveBranchId, 'target-dump-dir': exported() }), io);
    expect(io.lines.filter((l) => l.startsWith('error:'))).toEqual([]);
    expect(ok).toBe(true);
    expect(io.outputs).toMatchObject({ verified: 'true', collections: '3', documents: '3250' });
    expect(listFiles(exported())).toEqual([
      ...COLLECTIONS.flatMap((c) => [`${SOURCE_DB}/${c}.bson`, `${SOURCE_DB}/${c}.metadata.json`]),
      'prelude.json',
    ]);
    expect(JSON.parse(readFileSync(path.join(exported(), 'prelude.json'), 'utf8'))).toEqual({
      ServerVersion: expect.any(String),
      ToolVersion: 'supaneon-sync 0.1.0',
    });
    // Only the dump itself: no staging directory left beside it.
    expect(readdirSync(work)).toEqual(['exported']);

    for (const c of COLLECTIONS) {
      expectSameDocuments(await fileDocs(path.join(exported(), SOURCE_DB, `${c}.bson`)), await rawById(mongo, SOURCE_DB, c), c);
    }
    const text = readFileSync(path.join(exported(), SOURCE_DB, 'customers.metadata.json'), 'utf8');
    expect(Object.keys(JSON.parse(text))).toEqual(['indexes', 'collectionName', 'type']);
    const meta = parseMetadata(text, 'customers.metadata.json');
    expect(meta).toMatchObject({ collectionName: 'customers', kind: 'collection' });
    expect(meta.indexes.map((ix) => ix.name).sort()).toEqual(['_id_', 'city_int32', 'email_unique']);
    expect(Object.keys(meta.indexes.find((ix) => ix.name === 'city_int32')?.key ?? {})).toEqual(['address.city', 'int32']);
    expect(parseMetadata(readFileSync(path.join(exported(), SOURCE_DB, 'log.metadata.json'), 'utf8'), 'log').options).toMatchObject({
      capped: true,
    });

    // No credential reaches a file.
    const password = decodeURIComponent(new URL(neonEnv.NEON_DATABASE_URL).password);
    for (const f of listFiles(exported())) {
      const bytes = readFileSync(path.join(exported(), f));
      for (const secret of [neonEnv.NEON_API_KEY, password, neonEnv.NEON_DATABASE_URL]) expect(bytes.includes(secret)).toBe(false);
    }
  }, 300_000);

  test('an existing dump is not overwritten unless drop-target, which replaces it whole', async () => {
    const target = path.join(work, 'existing');
    mkdirSync(target);
    writeFileSync(path.join(target, 'keep.txt'), 'mine');
    await expect(
      recover(config({ mode: 'recover', 'backup-branch': 'standby', 'target-dump-dir': target }), recordingIo()),
    ).rejects.toThrow(
      `target-dump-dir ${target} already holds 1 file(s) or folder(s): name a new directory, or set drop-target: true to replace it`,
    );
    expect(listFiles(target)).toEqual(['keep.txt']);
    const io = recordingIo();
    expect(
      await recover(config({ mode: 'recover', 'backup-branch': 'standby', 'target-dump-dir': target, 'drop-target': 'true' }), io),
    ).toBe(true);
    expect(listFiles(target)).toEqual(listFiles(exported()));
    expect(readdirSync(work).sort()).toEqual(['existing', 'exported']);
    rmSync(target, { recursive: true });
  }, 300_000);

  test('dump-gzip writes .bson.gz and .metadata.json.gz holding exactly the plain files', async () => {
    const target = path.join(work, 'gzipped');
    const io = recordingIo();
    expect(await recover(config({ mode: 'recover', 'backup-branch': 'standby', 'target-dump-dir': target, 'dump-gzip': 'true' }), io)).toBe(
      true,
    );
    expect(listFiles(target)).toEqual(listFiles(exported()).map((f) => `${f}.gz`));
    for (const c of COLLECTIONS) {
      expectSameDocuments(
        await fileDocs(path.join(target, SOURCE_DB, `${c}.bson.gz`)),
        await fileDocs(path.join(exported(), SOURCE_DB, `${c}.bson`)),
        c,
      );
      expect(gunzipSync(readFileSync(path.join(target, SOURCE_DB, `${c}.metadata.json.gz`)))).toEqual(
        readFileSync(path.join(exported(), SOURCE_DB, `${c}.metadata.json`)),
      );
    }
  }, 300_000);

  test('an export that fails midway leaves nothing: no target, no staging directory, and says the target was not changed', async () => {
    const table = `"${SOURCE_DB}"."orders"`;
    // One damaged row far into the collection: the export has written part of orders.bson when it finds it.
    await standby.query(`UPDATE ${table} SET hash = sha256('damaged'::bytea) WHERE _id = (SELECT max(_id) FROM ${table})`);
    const target = path.join(work, 'failed');
    try {
      await expect(
        recover(config({ mode: 'recover', 'backup-branch': 'standby', 'target-dump-dir': target }), recordingIo()),
      ).rejects.toThrow(
        new RegExp(
          `^export of ${SOURCE_DB}\\.orders to ${escape(path.join(target, SOURCE_DB, 'orders.bson'))} failed: .*does not match its recorded hash.*; ${escape(target)} was not changed$`,
        ),
      );
    } finally {
      await standby.query(`UPDATE ${table} SET hash = sha256(bson) WHERE hash <> sha256(bson)`);
    }
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(work).filter((f) => f.includes('failed'))).toEqual([]);
  }, 300_000);

  test('backup from a dump (plain, then gzip): same content hashes as the live backup, consistency dump; restore verifies it and recover gives the source bytes', async () => {
    const io = recordingIo();
    // MONGODB_SRV_URL stays set, as on a runner that also backs up live: the dump is the one source.
    expect(await backup(config({ mode: 'backup', 'source-dump-dir': exported() }), io)).toBe(true);
    expect(io.outputs.consistency).toBe('dump');
    expect(io.outputs.documents).toBe('3250');
    expect(await runHashes()).toEqual(liveRunHashes);
    const run = await standby.query(
      `SELECT consistency, source FROM supaneon_sync.backups WHERE status = 'completed' ORDER BY finished_at DESC LIMIT 1`,
    );
    expect(run.rows[0]).toMatchObject({ consistency: 'dump', source: { topology: 'dump', hosts: [] } });
    const branchId = io.outputs['branch-id'];

    const verified = recordingIo();
    expect(await restore(config({ mode: 'restore', 'backup-branch': branchId }), verified)).toBe(true);
    expect(verified.outputs.verified).toBe('true');

    const recovered = recordingIo();
    expect(
      await recover(
        config({ mode: 'recover', 'backup-branch': branchId, 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': 'dmp_' }),
        recovered,
      ),
    ).toBe(true);
    for (const c of COLLECTIONS) expectSameDocuments(await rawById(mongo, `dmp_${SOURCE_DB}`, c), await rawById(mongo, SOURCE_DB, c), c);
    const indexes = await mongo.db(`dmp_${SOURCE_DB}`).collection('customers').listIndexes().toArray();
    expect(indexes.map((ix) => ix.name).sort()).toEqual(['_id_', 'city_int32', 'email_unique']);

    const gz = recordingIo();
    expect(await backup(config({ mode: 'backup', 'source-dump-dir': path.join(work, 'gzipped') }), gz)).toBe(true);
    expect(gz.outputs).toMatchObject({ consistency: 'dump', documents: '3250', changed: '0' });
    expect(await runHashes()).toEqual(liveRunHashes);
  }, 600_000);

  test.each([false, true])(
    'an archive (gzip %p): recover writes one mongodump --archive file, backup reads it back to the same hashes',
    async (gzip) => {
      const file = path.join(work, `backup${gzip ? '.archive.gz' : '.archive'}`);
      const io = recordingIo();
      const inputs = {
        mode: 'recover',
        'backup-branch': 'standby',
        'target-dump-dir': file,
        'dump-archive': 'true',
        'dump-gzip': String(gzip),
      };
      expect(await recover(config(inputs), io)).toBe(true);
      expect(io.outputs).toMatchObject({ verified: 'true', documents: '3250' });
      expect(statSync(file).isFile()).toBe(true);
      expect(readdirSync(work).filter((f) => f.includes('partial'))).toEqual([]);
      // An existing archive is kept unless drop-target.
      await expect(recover(config(inputs), recordingIo())).rejects.toThrow(`target-dump-dir ${file} already exists`);

      const imported = recordingIo();
      expect(await backup(config({ mode: 'backup', 'source-dump-dir': file }), imported)).toBe(true);
      expect(imported.outputs).toMatchObject({ consistency: 'dump', documents: '3250', changed: '0' });
      expect(await runHashes()).toEqual(liveRunHashes);
    },
    600_000,
  );

  test('validate checks a dump as the source: found, metadata parsed, sizes; a damaged metadata file fails naming it', async () => {
    const io = recordingIo();
    expect(await validate(config({ mode: 'validate', 'source-dump-dir': exported() }), io)).toBe(true);
    expect(io.summary).toContain('3 collections in the dump');
    const broken = path.join(work, 'broken-metadata');
    cpSync(exported(), broken, { recursive: true });
    writeFileSync(path.join(broken, SOURCE_DB, 'log.metadata.json'), 'not json');
    const bad = recordingIo();
    expect(await validate(config({ mode: 'validate', 'source-dump-dir': broken }), bad)).toBe(false);
    expect(bad.outputs.report).toContain(`${path.join(broken, SOURCE_DB, 'log.metadata.json')}: not valid JSON at byte offset 0`);
    rmSync(broken, { recursive: true });
  }, 120_000);

  test('the CLI: recover --target-dump-dir, then backup --source-dump-dir, as a user types them', async () => {
    const out = path.join(work, 'cli-dump');
    const env = { ...neonEnv };
    const exportRun = await runCli(
      ['recover', '--backup-branch', 'standby', '--databases', SOURCE_DB, '--target-dump-dir', out, '--dump-gzip'],
      { env, timeoutMs: 300_000 },
    );
    expect({ exit: exportRun.exitCode, stderr: exportRun.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(exportRun.stdout).toContain('verified=true');
    expect(listFiles(out)).toEqual(listFiles(exported()).map((f) => `${f}.gz`));
    const importRun = await runCli(['backup', '--databases', SOURCE_DB, '--source-dump-dir', out], { env, timeoutMs: 300_000 });
    expect({ exit: importRun.exitCode, stderr: importRun.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(importRun.stdout).toContain('consistency=dump');
    expect(await runHashes()).toEqual(liveRunHashes);
    const password = decodeURIComponent(new URL(neonEnv.NEON_DATABASE_URL).password);
    expect(findSecretLeaks(exportRun, [neonEnv.NEON_API_KEY, password, neonEnv.NEON_DATABASE_URL])).toEqual([]);
    expect(findSecretLeaks(importRun, [neonEnv.NEON_API_KEY, password, neonEnv.NEON_DATABASE_URL])).toEqual([]);
  }, 600_000);

  test('a database listed in databases that the dump does not hold is refused before anything changes', async () => {
    const before = await standbyState();
    await expect(
      backup(config({ mode: 'backup', databases: `${SOURCE_DB},absent_${suffix}`, 'source-dump-dir': exported() }), recordingIo()),
    ).rejects.toThrow(
      `database absent_${suffix} listed in 'databases' does not exist in the dump ${exported()}: fix the names in the 'databases' input; nothing was changed`,
    );
    expect(await standbyState()).toBe(before);
  }, 120_000);

  describe('a bad dump fails with one line naming the file and the byte offset, and leaves the standby as it was', () => {
    const customersBson = () => readFileSync(path.join(exported(), SOURCE_DB, 'customers.bson'));
    const firstLength = () => customersBson().readInt32LE(0);
    const cases: Array<[string, (dir: string) => void, (dir: string) => string | RegExp]> = [
      [
        'a truncated .bson',
        (dir) => writeFileSync(path.join(dir, SOURCE_DB, 'customers.bson'), customersBson().subarray(0, customersBson().length - 10)),
        (dir) =>
          new RegExp(
            `^backup of ${SOURCE_DB}\\.customers failed: ${escape(path.join(dir, SOURCE_DB, 'customers.bson'))}: the document at byte offset \\d+ declares \\d+ bytes, but the file ends \\d+ byte\\(s\\) later`,
          ),
      ],
      [
        'a document length running past the end of the file',
        (dir) => {
          const bytes = Buffer.from(customersBson().subarray(0, firstLength()));
          bytes.writeInt32LE(firstLength() + 100, 0);
          writeFileSync(path.join(dir, SOURCE_DB, 'customers.bson'), bytes);
        },
        (dir) =>
          `${path.join(dir, SOURCE_DB, 'customers.bson')}: the document at byte offset 0 declares ${firstLength() + 100} bytes, but the file ends ${firstLength()} byte(s) later`,
      ],
      [
        'metadata that is not JSON',
        (dir) => writeFileSync(path.join(dir, SOURCE_DB, 'orders.metadata.json'), '{"indexes":[{"key":{"_id":1}},'),
        (dir) => `${path.join(dir, SOURCE_DB, 'orders.metadata.json')}: not valid JSON at byte offset 30 `,
      ],
      [
        'a directory with no dump in it',
        (dir) => {
          rmSync(dir, { recursive: true });
          mkdirSync(path.join(dir, 'notes'), { recursive: true });
          writeFileSync(path.join(dir, 'notes', 'readme.txt'), 'hello');
        },
        (dir) => `source-dump-dir ${dir} holds no mongodump output`,
      ],
    ];

    test.each(cases)(
      '%s',
      async (name, damage, expected) => {
        const dir = path.join(work, `bad-${name.replace(/\W+/g, '-')}`);
        cpSync(exported(), dir, { recursive: true });
        damage(dir);
        const before = await standbyState();
        let message = '';
        try {
          await backup(config({ mode: 'backup', 'source-dump-dir': dir }), recordingIo());
        } catch (err) {
          message = (err as Error).message;
        }
        const want = expected(dir);
        if (typeof want === 'string') expect(message).toContain(want);
        else expect(message).toMatch(want);
        expect(message).not.toContain('\n');
        expect(await standbyState()).toBe(before);
        rmSync(dir, { recursive: true, force: true });
      },
      300_000,
    );
  });

  const corpus = loadCorpus();
  const withCorpus = 'missing' in corpus ? test.skip : test;
  withCorpus(
    `every BSON corpus document goes dump -> standby -> dump byte for byte, and restore verifies it${'missing' in corpus ? ` (skipped: ${corpus.missing})` : ''}`,
    async () => {
      const cases = corpus as ReturnType<typeof corpusValidCases>;
      const input = path.join(work, 'corpus-in');
      mkdirSync(path.join(input, CORPUS_DB), { recursive: true });
      const docs = cases.map((c, i) => withInt32Id(c.bson, i));
      writeFileSync(path.join(input, CORPUS_DB, 'cases.bson'), Buffer.concat(docs));
      writeFileSync(
        path.join(input, CORPUS_DB, 'cases.metadata.json'),
        '{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"collectionName":"cases","type":"collection"}',
      );

      const io = recordingIo();
      expect(await backup(config({ mode: 'backup', databases: CORPUS_DB, 'source-dump-dir': input }), io)).toBe(true);
      expect(io.outputs.documents).toBe(String(docs.length));
      const branchId = io.outputs['branch-id'];
      const verified = recordingIo();
      expect(await restore(config({ mode: 'restore', databases: CORPUS_DB, 'backup-branch': branchId }), verified)).toBe(true);

      const output = path.join(work, 'corpus-out');
      expect(
        await recover(
          config({ mode: 'recover', databases: CORPUS_DB, 'backup-branch': branchId, 'target-dump-dir': output }),
          recordingIo(),
        ),
      ).toBe(true);
      const back = readFileSync(path.join(output, CORPUS_DB, 'cases.bson'));
      const byId = new Map<number, Buffer>();
      for await (const doc of bsonDocuments(
        (async function* () {
          yield back;
        })(),
        'cases.bson',
      ))
        byId.set(doc.readInt32LE(9), Buffer.from(doc));
      expect(byId.size).toBe(docs.length);
      docs.forEach((doc, i) => {
        if (!byId.get(i)?.equals(doc)) throw new Error(`${cases[i].name}: exported bytes differ from the dump's`);
      });
    },
    600_000,
  );

  const tools = mongoTools();
  const withTools = 'missing' in tools ? describe.skip : describe;
  withTools(`with the real mongodump and mongorestore${'missing' in tools ? ` (skipped: ${tools.missing})` : ''}`, () => {
    const bin = tools as { mongodump: string; mongorestore: string };

    test('mongorestore of an exported dump into an empty database gives the source documents byte for byte, with the same indexes', async () => {
      const target = `mr_${SOURCE_DB}`;
      const result = await run(bin.mongorestore, [
        `--uri=${env.MONGODB_SRV_URL}`,
        `--nsFrom=${SOURCE_DB}.*`,
        `--nsTo=${target}.*`,
        exported(),
      ]);
      expect({ code: result.code, out: result.out.slice(-2000) }).toMatchObject({ code: 0 });
      for (const c of COLLECTIONS) expectSameDocuments(await rawById(mongo, target, c), await rawById(mongo, SOURCE_DB, c), c);
      const indexes = await mongo.db(target).collection('customers').listIndexes().toArray();
      expect(indexes.map((ix) => ix.name).sort()).toEqual(['_id_', 'city_int32', 'email_unique']);
    }, 300_000);

    test('a mongodump of the live database, imported with source-dump-dir, restores verified and recovers byte for byte', async () => {
      const out = path.join(work, 'mongodump');
      const dumped = await run(bin.mongodump, [`--uri=${env.MONGODB_SRV_URL}`, `--db=${SOURCE_DB}`, `--out=${out}`]);
      expect({ code: dumped.code, out: dumped.out.slice(-2000) }).toMatchObject({ code: 0 });
      expect(
        existsSync(path.join(out, SOURCE_DB, 'customers.bson')) && statSync(path.join(out, SOURCE_DB, 'customers.bson')).size > 0,
      ).toBe(true);
      const io = recordingIo();
      expect(await backup(config({ mode: 'backup', 'source-dump-dir': out }), io)).toBe(true);
      expect(await runHashes()).toEqual(liveRunHashes);
      expect(await restore(config({ mode: 'restore', 'backup-branch': io.outputs['branch-id'] }), recordingIo())).toBe(true);
      expect(
        await recover(
          config({
            mode: 'recover',
            'backup-branch': io.outputs['branch-id'],
            'target-mongodb-uri': env.MONGODB_SRV_URL,
            'target-database-prefix': 'md_',
          }),
          recordingIo(),
        ),
      ).toBe(true);
      for (const c of COLLECTIONS) expectSameDocuments(await rawById(mongo, `md_${SOURCE_DB}`, c), await rawById(mongo, SOURCE_DB, c), c);
    }, 600_000);
  });
});

function loadCorpus(): ReturnType<typeof corpusValidCases> | { missing: string } {
  try {
    return corpusValidCases();
  } catch (err) {
    return { missing: (err as Error).message };
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
