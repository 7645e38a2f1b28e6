/**
 * The MongoDB side: connect, list what the selection covers (with the options and indexes a
 * restore needs), and stream documents as the raw BSON bytes the server sent, so nothing is
 * decoded and re-encoded on the way to the standby.
 */
import { BSON, MongoClient, type ClientSession, type Document, type Timestamp } from 'mongodb';
import { documentsPerReply } from './batch-size.js';
import { isSelected, isSystemDatabase, type Selection } from './selection.js';

export interface CollectionSpec {
  database: string;
  collection: string;
  kind: 'collection' | 'timeseries' | 'view';
  options: Document;
  indexes: Document[];
}

export interface SourceInfo {
  hosts: string[];
  serverVersion: string;
  topology: 'standalone' | 'replicaSet' | 'sharded';
  /** Whether this server can serve one snapshot across collections (replica set or sharded, MongoDB >= 5.0). */
  snapshotReads: boolean;
}

/**
 * The names of the `?key=value` options of a MongoDB URI (empty when it has none). Values are
 * never returned: options such as `authMechanismProperties` or `tlsCertificateKeyFilePassword`
 * carry secrets, and any of them may be a secret pasted into the wrong place.
 */
export function uriOptions(uri: string): { name: string; value: string }[] {
  const query = uri.split('?', 2)[1]?.split('#', 1)[0] ?? '';
  return query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const decode = (v: string) => {
        try {
          return decodeURIComponent(v);
        } catch {
          return v;
        }
      };
      return eq === -1 ? { name: decode(p), value: '' } : { name: decode(p.slice(0, eq)), value: decode(p.slice(eq + 1)) };
    });
}

/**
 * A driver error as a message safe to print. The driver quotes option values in its errors
 * (`Invalid read preference mode "…"`, `…, got <value>`): a configuration error is reported by the
 * option it names, never its text; any other error has every option value of the URI cut out.
 */
export function describeDriverError(err: unknown, uri: string, input: string): string {
  const e = err as { name?: string; message?: string };
  const message = String(e?.message ?? err);
  const options = uriOptions(uri);
  const isConfigurationError = ['MongoParseError', 'MongoInvalidArgumentError', 'MongoAPIError', 'MongoMissingCredentialsError'].includes(
    e?.name ?? '',
  );
  if (isConfigurationError) {
    const lower = message.toLowerCase();
    const named = options.filter((o) => lower.includes(o.name.toLowerCase()) || (o.value.length > 0 && message.includes(o.value)));
    const which =
      named.length > 0
        ? `option${named.length === 1 ? '' : 's'} ${[...new Set(named.map((o) => o.name))].join(', ')} (value not shown)`
        : options.length > 0
          ? `one of its options ${options.map((o) => o.name).join(', ')} (values not shown)`
          : 'its form';
    return `${input}: the MongoDB driver refuses ${which}; fix the connection string's ${named.length > 0 || options.length > 0 ? 'options' : 'syntax'} (see the MongoDB connection string documentation)`;
  }
  let out = message;
  for (const o of options) {
    // Values like "true" or "1" are everywhere in messages and say nothing; longer ones are cut out.
    if (o.value.length >= 3 && !/^(true|false|\d+)$/i.test(o.value)) out = out.split(o.value).join(`<${o.name}>`);
  }
  return out;
}

export async function connectMongo(uri: string, opts: { connectTimeoutMs?: number; input?: string } = {}): Promise<MongoClient> {
  const timeout = opts.connectTimeoutMs ?? 10_000;
  const input = opts.input ?? 'mongodb-uri';
  let client: MongoClient;
  try {
    client = new MongoClient(uri, {
      appName: 'supaneon-sync',
      // An unreachable server should fail the run in seconds, not after the driver's 30 s default.
      serverSelectionTimeoutMS: timeout,
      connectTimeoutMS: timeout,
    });
  } catch (err) {
    // eslint-disable-next-line preserve-caught-error -- the driver's error quotes option values: it must not travel on
    throw new Error(`${input} is not a usable MongoDB connection string: ${describeDriverError(err, uri, input)}`);
  }
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => undefined);
    // eslint-disable-next-line preserve-caught-error -- the driver's error quotes option values: it must not travel on
    throw new Error(
      `cannot reach MongoDB at ${describeMongoUri(uri)}: ${describeDriverError(err, uri, input)}; check ${input} and that the server accepts connections from this runner`,
    );
  }
  return client;
}

/** Hosts of a MongoDB URI for messages, without credentials or options. */
export function describeMongoUri(uri: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]*)/.exec(uri);
  return m ? m[1] : '(unparseable MongoDB URI)';
}

export async function describeSource(client: MongoClient, uri: string): Promise<SourceInfo> {
  const admin = client.db('admin');
  const hello = await admin.command({ hello: 1 });
  const build = await admin.command({ buildInfo: 1 }).catch(() => ({ version: 'unknown' }) as Document);
  const topology = hello.msg === 'isdbgrid' ? 'sharded' : hello.setName ? 'replicaSet' : 'standalone';
  const major = Number(String(build.version).split('.')[0]);
  // FerretDB answers as a standalone (no setName), so it never gets here; wire version 13 = 5.0.
  const snapshotReads = topology !== 'standalone' && Number.isFinite(major) && major >= 5 && (hello.maxWireVersion ?? 0) >= 13;
  return { hosts: describeMongoUri(uri).split(','), serverVersion: String(build.version), topology, snapshotReads };
}

/** The cluster's current logical time as canonical Extended JSON, or undefined where the server has none (standalone, FerretDB). */
export async function clusterTime(client: MongoClient): Promise<string | undefined> {
  const reply = await client.db('admin').command({ ping: 1 });
  const t = (reply.operationTime ?? reply.$clusterTime?.clusterTime) as Timestamp | undefined;
  return t ? timestampJson(t) : undefined;
}

function timestampJson(t: Timestamp): string {
  return BSON.EJSON.stringify(t, { relaxed: false });
}

/** The snapshot time a snapshot session settled on after its first read, if it did. */
export function snapshotTimeOf(session: ClientSession): string | undefined {
  // The driver keeps the server-chosen atClusterTime on the session but does not type it publicly.
  const t = (session as unknown as { snapshotTime?: Timestamp }).snapshotTime;
  return t ? timestampJson(t) : undefined;
}

const INDEX_NOISE = ['v', 'ns'];

/**
 * Names in `databases` that the server does not list. MongoDB lists a database once it holds a
 * collection, so a misspelt name and a database that was never created look the same: either way
 * the backup would silently leave it out (and drop its tables from the standby).
 */
export async function missingDatabases(client: MongoClient, s: Selection): Promise<string[]> {
  if (s.databases.length === 0) return [];
  const listed = await client.db('admin').admin().listDatabases({ nameOnly: true });
  const present = new Set(listed.databases.map((d) => d.name));
  return s.databases.filter((db) => !present.has(db));
}

/** The one line validate and backup report for `missingDatabases`. */
export function missingDatabasesMessage(missing: readonly string[]): string {
  return (
    `database${missing.length === 1 ? '' : 's'} ${missing.join(', ')} listed in 'databases' ${missing.length === 1 ? 'does' : 'do'} not exist: ` +
    "fix the names in the 'databases' input"
  );
}

export async function listSelectedCollections(client: MongoClient, s: Selection): Promise<CollectionSpec[]> {
  const listed = await client.db('admin').admin().listDatabases({ nameOnly: true });
  const databases = listed.databases
    .map((d) => d.name)
    .filter((db) => !isSystemDatabase(db))
    .filter((db) => s.databases.length === 0 || s.databases.includes(db))
    .sort();
  const specs: CollectionSpec[] = [];
  for (const database of databases) {
    const db = client.db(database);
    const infos = await db.listCollections({}, { nameOnly: false }).toArray();
    infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const info of infos) {
      if (!isSelected(database, info.name, s)) continue;
      const kind = info.type === 'view' ? 'view' : info.type === 'timeseries' ? 'timeseries' : 'collection';
      const options: Document = { ...((info as Document).options ?? {}) };
      let indexes: Document[] = [];
      if (kind !== 'view') {
        const raw = await db.collection(info.name).listIndexes().toArray();
        // `v` and `ns` describe the server's storage, not the index; a restore into another server must not replay them.
        indexes = raw.map((ix) => Object.fromEntries(Object.entries(ix).filter(([k]) => !INDEX_NOISE.includes(k))));
      }
      specs.push({ database, collection: info.name, kind, options, indexes });
    }
  }
  return specs;
}

/** How long a count estimate may take: it only feeds a progress ETA or a report, never worth delaying a backup. */
export const ESTIMATE_TIMEOUT_MS = 2_000;

/**
 * The server's quick estimate of a collection's document count, or undefined when it cannot answer
 * within `timeoutMs`. `$collStats` is asked first: MongoDB and FerretDB both answer it from metadata,
 * whereas FerretDB answers `count` (what estimatedDocumentCount sends) by reading the whole collection.
 * A server without `$collStats` gets estimatedDocumentCount, bounded the same way. The time bound is
 * sent as maxTimeMS and also kept on this side, so a server that ignores maxTimeMS cannot hold us up.
 */
export async function estimateDocumentCount(
  client: MongoClient,
  database: string,
  collection: string,
  opts: { timeoutMs?: number } = {},
): Promise<number | undefined> {
  const timeoutMs = opts.timeoutMs ?? ESTIMATE_TIMEOUT_MS;
  const coll = client.db(database).collection(collection);
  const maxTimeMS = Math.max(1, timeoutMs); // 0 would mean "no limit" to the server
  const ask = async (): Promise<number | undefined> => {
    try {
      // A sharded collection answers one document per shard.
      const perShard = await coll.aggregate([{ $collStats: { count: {} } }], { maxTimeMS }).toArray();
      const counts = perShard.map((d) => Number(d.count));
      if (counts.length > 0 && counts.every((n) => Number.isFinite(n) && n >= 0)) return counts.reduce((a, b) => a + b, 0);
    } catch {
      // no $collStats here (or no privilege for it): the plain estimate below
    }
    return await coll.estimatedDocumentCount({ maxTimeMS });
  };
  return withinTime(ask, timeoutMs);
}

/** What `ask` answers, or undefined when it fails or has not answered within `timeoutMs`. */
async function withinTime<T>(ask: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([ask().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The server's average BSON size of a collection's documents, or undefined when it cannot say within
 * `timeoutMs` (no statistics, no privilege for them, an empty collection). `$collStats` with
 * storageStats first (MongoDB and FerretDB answer it from metadata; a sharded collection answers
 * per shard), then the collStats command. Bounded like estimateDocumentCount.
 */
export async function averageDocumentBytes(
  client: MongoClient,
  database: string,
  collection: string,
  opts: { timeoutMs?: number } = {},
): Promise<number | undefined> {
  const timeoutMs = opts.timeoutMs ?? ESTIMATE_TIMEOUT_MS;
  const db = client.db(database);
  const maxTimeMS = Math.max(1, timeoutMs);
  const average = (size: unknown, count: unknown): number | undefined => {
    const bytes = Number(size);
    const documents = Number(count);
    return Number.isFinite(bytes) && bytes > 0 && Number.isFinite(documents) && documents > 0 ? bytes / documents : undefined;
  };
  const ask = async (): Promise<number | undefined> => {
    try {
      const perShard = await db
        .collection(collection)
        .aggregate([{ $collStats: { storageStats: {} } }], { maxTimeMS })
        .toArray();
      const stats = perShard.map((d) => (d.storageStats ?? {}) as Document);
      const known = average(
        stats.reduce((n, s) => n + Number(s.size), 0),
        stats.reduce((n, s) => n + Number(s.count), 0),
      );
      if (stats.length > 0 && known !== undefined) return known;
    } catch {
      // no $collStats here (or no privilege for it): the command below
    }
    const stats = await db.command({ collStats: collection, maxTimeMS });
    return average(stats.size, stats.count);
  };
  return withinTime(ask, timeoutMs);
}

/**
 * Documents per reply for reading a collection: sized by bytes from its average document size
 * (batch-size.ts), at most `maxDocuments` (the batch-size input).
 */
export async function replyBatchSize(client: MongoClient, database: string, collection: string, maxDocuments: number): Promise<number> {
  return documentsPerReply(await averageDocumentBytes(client, database, collection), maxDocuments);
}

/**
 * Every document of a collection, each as its own Buffer of exact BSON bytes, in natural order
 * (no sort: a sort makes FerretDB and MongoDB buffer the whole collection). `batchSize` bounds
 * how many documents a batch holds (replyBatchSize chooses it by bytes); the server further caps
 * a batch at 16 MiB.
 *
 * The next batch is asked for (getMore) as soon as the current one is taken from the driver, so
 * the server's work and the network's round trip overlap with the consumer's handling of the
 * current batch instead of following it. Memory holds at most two batches: the one being consumed
 * and the one on its way.
 */
export async function* rawDocuments(
  client: MongoClient,
  spec: CollectionSpec,
  opts: { batchSize: number; session?: ClientSession },
): AsyncIterable<Buffer> {
  const cursor = client
    .db(spec.database)
    .collection(spec.collection)
    .find({}, { raw: true, batchSize: opts.batchSize, ...(opts.session ? { session: opts.session } : {}) });
  // hasNext() with an empty buffer sends the find or the getMore; it is awaited only when the
  // consumer wants the batch, and marked handled meanwhile so a failure while the consumer is busy
  // is reported here (by the await), not as an unhandled rejection.
  const ask = (): Promise<boolean> => {
    const asked = cursor.hasNext();
    asked.catch(() => undefined);
    return asked;
  };
  let next = ask();
  try {
    while (await next) {
      const batch = cursor.readBufferedDocuments();
      next = ask();
      for (const doc of batch) yield doc as unknown as Buffer;
    }
  } finally {
    // A consumer that stopped early: let the request on its way settle before closing the cursor.
    await next.catch(() => undefined);
    await cursor.close().catch(() => undefined);
  }
}

/** Whether each namespace exists in the deployment (any kind), asked once per database. */
export async function existingNamespaces(
  client: MongoClient,
  namespaces: readonly { database: string; collection: string }[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const database of new Set(namespaces.map((n) => n.database))) {
    const infos = await client.db(database).listCollections({}, { nameOnly: true }).toArray();
    for (const info of infos) found.add(`${database}.${info.name}`);
  }
  return found;
}
