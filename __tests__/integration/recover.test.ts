// mode: recover on the local stack: a real backup into the emulated Neon project, then recover into a
// side-by-side database on the MongoDB-wire server, compared byte for byte with the source.
import net from 'node:net';
import { Binary, BSON, Double, Int32, Long, MongoClient, ObjectId, Timestamp, BSONRegExp, type Document } from 'mongodb';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import type { Logger } from '../../src/io.js';
import { backup } from '../../src/modes/backup.js';
import { NeonApi } from '../../src/neon.js';
import { recover } from '../../src/modes/recover.js';
import { STATE_TEMPORARY_BRANCH_NAME } from '../../src/temporary-branch.js';
import { loadCollection } from '../../devkit/shop.js';
import { randomDocuments } from '../../test/support/random-documents.js';
import { findSecretLeaks, runAction, runPost, startAction } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { recordingIo } from '../../test/support/recording-io.js';

const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST'];

// Own database names: FerretDB and the default branch are shared with test files running in parallel.
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const SOURCE_DB = `rec_src_${suffix}`;
const PREFIX = 'rcv_';

/** A document whose `_id` may be of any type (the driver's default schema assumes ObjectId). */
type AnyIdDocument = Document & { _id: unknown };

/** The mode's configuration, the Neon settings coming from the NEON_* variables as in a workflow. */
function config(inputs: RawInputs, neonEnv: Record<string, string>): Config {
  return parseConfig({ databases: SOURCE_DB, ...inputs }, { ...process.env, ...neonEnv });
}

/** Documents covering every BSON type the MongoDB-wire test server accepts, nested where it allows. */
function typedDocuments(): Document[] {
  const docs: Document[] = [];
  for (let i = 0; i < 300; i++) {
    docs.push({
      _id: i % 3 === 0 ? new ObjectId() : i % 3 === 1 ? `key-${i}` : new Int32(100_000 + i),
      name: `customer ${i} ✓ ünïcödé`,
      email: `user${i}@example.com`,
      int32: new Int32(i - 150),
      int64: Long.fromString(`${9_007_199_254_740_000 + i}`),
      double: new Double(i / 7),
      wholeDouble: new Double(i),
      bool: i % 2 === 0,
      nothing: null,
      when: new Date(Date.UTC(2020, 0, 1) + i * 86_400_000),
      ts: new Timestamp({ t: 1_700_000_000 + i, i: i + 1 }),
      regex: new BSONRegExp(`^user${i}`, 'i'),
      bin: new Binary(Buffer.from([i & 0xff, 1, 2, 3]), 0),
      uuid: new Binary(Buffer.alloc(16, i & 0xff), 4),
      userBin: new Binary(Buffer.from('custom'), 0x80),
      address: { street: `${i} Main St`, city: i % 2 ? 'Lyon' : 'Porto', geo: { lat: new Double(45.75), lng: new Double(4.85) } },
      tags: ['a', `t${i % 5}`, new Int32(i), { nested: true }],
      z_last: 'key order kept',
      a_first_after: 'not sorted',
    });
  }
  return docs;
}

async function rawById(client: MongoClient, db: string, collection: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const cursor = client.db(db).collection(collection).find({}, { raw: true });
  for await (const raw of cursor) {
    const bytes = Buffer.from(raw as unknown as Buffer);
    const id = BSON.deserialize(bytes, { promoteValues: false })._id;
    out.set(BSON.EJSON.stringify({ id }, { relaxed: false }), bytes);
  }
  return out;
}

/** Forwards TCP to the real server until cut(): then every connection through it is destroyed. */
class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  private forwarded = 0;
  private cutAfter = Infinity;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (chunk: Buffer) => {
        this.forwarded += chunk.length;
        if (this.forwarded > this.cutAfter) return this.cutAll();
        upstream.write(chunk);
      });
      upstream.pipe(client);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Cut every connection once `bytes` more bytes have gone from the client to the server. */
  cutAfterBytes(bytes: number): void {
    this.cutAfter = this.forwarded + bytes;
  }

  private cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function withHostPort(uri: string, host: string, port: number): string {
  return uri.replace(/^(mongodb:\/\/(?:[^@/]*@)?)[^/?]+/, `$1${host}:${port}`);
}

describeWithStack('mode: recover on the local stack', STACK, (env) => {
  let mongo: MongoClient;
  // This file's own Neon project: its standby, backup and temporary branches are nobody else's.
  let project: TestProject;
  let backupBranchId: string;
  const quiet: Logger = {
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    debug: () => undefined,
    group: (_n, fn) => fn(),
  };
  const neon = () => new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: quiet });
  /** Inputs of a recover step in a workflow, every one given explicitly as a user would. */
  const actionInputs = (prefix: string): Record<string, string> => ({
    mode: 'recover',
    'backup-branch': backupBranchId,
    'target-mongodb-uri': env.MONGODB_SRV_URL,
    'target-database-prefix': prefix,
    databases: SOURCE_DB,
    ...project.inputs,
  });

  beforeAll(async () => {
    project = await createTestProject('recover.test.ts');

    mongo = new MongoClient(env.MONGODB_SRV_URL);
    await mongo.connect();
    const db = mongo.db(SOURCE_DB);
    await db.collection('customers').insertMany(typedDocuments());
    await db.collection('customers').createIndex({ email: 1 }, { unique: true, name: 'email_unique' });
    await db.collection('customers').createIndex({ 'address.city': 1, int32: -1 }, { name: 'city_int32' });
    await loadCollection(mongo, SOURCE_DB, 'random', randomDocuments(7, 500));
    // Options the test server implements (capped, size, max) must come back on the target.
    await db.createCollection('log', { capped: true, size: 1_048_576, max: 1000 });
    await loadCollection(
      mongo,
      SOURCE_DB,
      'log',
      Array.from({ length: 50 }, (_, i) => ({ _id: new Int32(i), line: `entry ${i}` })),
    );
    // Enough bytes that the insert of this collection spans the point where the proxy cuts.
    await db.collection<AnyIdDocument>('events').insertMany(
      Array.from({ length: 4000 }, (_, i) => ({
        _id: new Int32(i),
        kind: 'view',
        payload: 'x'.repeat(700),
        at: new Date(1_700_000_000_000 + i),
      })),
    );

    const io = recordingIo();
    const ok = await backup(config({ mode: 'backup' }, project.env), io);
    if (!ok) throw new Error(`the backup this test recovers from failed:\n${io.lines.join('\n')}`);
    backupBranchId = io.outputs['branch-id'];
    expect(backupBranchId).toMatch(/\S/);
  }, 600_000);

  afterAll(async () => {
    if (mongo) {
      for (const name of [
        SOURCE_DB,
        `${PREFIX}${SOURCE_DB}`,
        `cut_${SOURCE_DB}`,
        `sb_${SOURCE_DB}`,
        `bnd_${SOURCE_DB}`,
        `kill_${SOURCE_DB}`,
      ])
        await mongo
          .db(name)
          .dropDatabase()
          .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  test('recovers every document byte-identical, with its indexes, and verifies from the target', async () => {
    const io = recordingIo();
    const ok = await recover(
      config({ mode: 'recover', 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': PREFIX }, project.env),
      io,
    );
    expect(io.lines.join('\n')).not.toContain('error:');
    expect(ok).toBe(true);
    expect(io.outputs.verified).toBe('true');
    expect(io.outputs.collections).toBe('4');
    expect(io.outputs.documents).toBe('4850');
    expect(io.outputs['backup-branch-id']).toMatch(/\S/);
    expect(Number(io.outputs['duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(io.summary).toContain(`${PREFIX}${SOURCE_DB}.customers`);
    expect(io.summary.split('\n').filter((line) => line.endsWith('| pass |'))).toHaveLength(4);
    expect(io.lines.some((l) => l.startsWith(`${PREFIX}${SOURCE_DB}.customers: verified (300 documents`))).toBe(true);

    for (const collection of ['customers', 'events', 'log', 'random']) {
      const source = await rawById(mongo, SOURCE_DB, collection);
      const target = await rawById(mongo, `${PREFIX}${SOURCE_DB}`, collection);
      expect(target.size).toBe(source.size);
      for (const [id, bytes] of source) {
        const copy = target.get(id);
        if (!copy || !copy.equals(bytes)) throw new Error(`${collection} ${id}: recovered bytes differ from the source`);
      }
    }

    const [log] = await mongo.db(`${PREFIX}${SOURCE_DB}`).listCollections({ name: 'log' }).toArray();
    expect((log as Document).options).toMatchObject({ capped: true, size: 1_048_576, max: 1000 });

    const indexes = await mongo.db(`${PREFIX}${SOURCE_DB}`).collection('customers').listIndexes().toArray();
    const byName = new Map(indexes.map((ix) => [ix.name as string, ix]));
    expect(byName.get('email_unique')?.unique).toBe(true);
    expect(byName.get('email_unique')?.key).toEqual({ email: 1 });
    expect(Object.entries(byName.get('city_int32')?.key ?? {})).toEqual([
      ['address.city', 1],
      ['int32', -1],
    ]);
  });

  test('refuses a non-empty target without drop-target, naming it, then replaces it with drop-target', async () => {
    const refused = recover(
      config({ mode: 'recover', 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': PREFIX }, project.env),
      recordingIo(),
    );
    await expect(refused).rejects.toThrow(new RegExp(`${PREFIX}${SOURCE_DB}\\.customers.*drop-target`));

    // A document that is not in the backup must be gone after the replacing run.
    await mongo.db(`${PREFIX}${SOURCE_DB}`).collection<AnyIdDocument>('events').insertOne({ _id: 'stray' });
    const io = recordingIo();
    const ok = await recover(
      config(
        { mode: 'recover', 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': PREFIX, 'drop-target': 'true' },
        project.env,
      ),
      io,
    );
    expect(ok).toBe(true);
    expect(io.outputs.documents).toBe('4850');
    expect(
      await mongo
        .db(`${PREFIX}${SOURCE_DB}`)
        .collection<AnyIdDocument>('events')
        .countDocuments({ _id: 'stray' } as Document),
    ).toBe(0);
  });

  test('a connection lost midway fails naming the collection reached; a rerun with drop-target completes', async () => {
    const real = new URL(env.MONGODB_SRV_URL.replace(/^mongodb:/, 'http:'));
    const proxy = new CuttableProxy({ host: real.hostname, port: Number(real.port || 27017) });
    await proxy.listen();
    const throughProxy = withHostPort(env.MONGODB_SRV_URL, '127.0.0.1', proxy.port);
    try {
      // `customers` (about 150 KB) goes through whole; the cut falls inside `events` (about 3 MB), before `log` and `random`.
      proxy.cutAfterBytes(1_000_000);
      const failed = recover(
        config({ mode: 'recover', 'target-mongodb-uri': throughProxy, 'target-database-prefix': 'cut_' }, project.env),
        recordingIo(),
      );
      await expect(failed).rejects.toThrow(new RegExp(`recover stopped at cut_${SOURCE_DB}\\.events after \\d+ of 4000 documents`));
    } finally {
      await proxy.close();
    }
    const io = recordingIo();
    const ok = await recover(
      config(
        { mode: 'recover', 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': 'cut_', 'drop-target': 'true' },
        project.env,
      ),
      io,
    );
    expect(ok).toBe(true);
    expect(io.outputs.verified).toBe('true');
    expect(await mongo.db(`cut_${SOURCE_DB}`).collection('events').countDocuments()).toBe(4000);
  });

  test('recovers from the standby itself, only the included collections', async () => {
    const io = recordingIo();
    const ok = await recover(
      config(
        {
          mode: 'recover',
          'backup-branch': 'standby',
          include: `${SOURCE_DB}.customers`,
          'target-mongodb-uri': env.MONGODB_SRV_URL,
          'target-database-prefix': 'sb_',
        },
        project.env,
      ),
      io,
    );
    expect(ok).toBe(true);
    expect(io.outputs.collections).toBe('1');
    expect(io.outputs.documents).toBe('300');
    expect(await mongo.db(`sb_${SOURCE_DB}`).listCollections({}, { nameOnly: true }).toArray()).toEqual([
      expect.objectContaining({ name: 'customers' }),
    ]);
    const source = await rawById(mongo, SOURCE_DB, 'customers');
    const target = await rawById(mongo, `sb_${SOURCE_DB}`, 'customers');
    expect([...target.entries()].every(([id, bytes]) => source.get(id)?.equals(bytes))).toBe(true);
    expect(target.size).toBe(300);
  });

  test('through the bundle as GitHub runs it: verified, byte-identical, no secret in anything it wrote', async () => {
    const run = await runAction(actionInputs('bnd_'), { timeoutMs: 300_000 });
    expect({ exit: run.exitCode, stderr: run.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(run.outputs).toMatchObject({ verified: 'true', collections: '4', documents: '4850', 'backup-branch-id': backupBranchId });
    expect(run.summary).toContain('supaneon-sync recover: verified');
    for (const collection of ['customers', 'events', 'log', 'random']) {
      const source = await rawById(mongo, SOURCE_DB, collection);
      const target = await rawById(mongo, `bnd_${SOURCE_DB}`, collection);
      expect(target.size).toBe(source.size);
      for (const [id, bytes] of source) {
        if (!target.get(id)?.equals(bytes)) throw new Error(`${collection} ${id}: recovered bytes differ from the source`);
      }
    }
    const password = decodeURIComponent(new URL(project.databaseUrl).password);
    expect(findSecretLeaks(run, [project.apiKey, project.databaseUrl, password])).toEqual([]);
  });

  test('leaves no temporary branch behind, whether a run succeeded or failed', async () => {
    expect(await neon().toolBranches('restore-test')).toEqual([]);
    expect((await neon().toolBranches('backup')).length).toBe(1);
  });
  test('a killed run leaves its temporary branch on record, and the post step deletes it', async () => {
    const inputs = actionInputs('kill_');
    const running = startAction('main', { inputs, timeoutMs: 300_000 });
    const api = neon();
    const deadline = Date.now() + 60_000;
    while ((await api.toolBranches('restore-test')).length === 0) {
      if (Date.now() > deadline) throw new Error('the recover run never created its temporary branch');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    running.child.kill('SIGKILL');
    const killed = await running.result;
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.state[STATE_TEMPORARY_BRANCH_NAME]).toMatch(/^restore-test-/);

    try {
      const post = await runPost(inputs, killed.state, { timeoutMs: 120_000 });
      expect(post.exitCode).toBe(0);
      expect(await api.toolBranches('restore-test')).toEqual([]);
    } finally {
      // Whatever the post step did, leave the project as this file found it.
      for (const b of await api.toolBranches('restore-test')) await api.deleteBranch(b.id);
    }
  });
});
