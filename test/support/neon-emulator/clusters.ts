// One real PostgreSQL cluster per branch: a copy of an initdb'd template for a project's default
// branch, pg_basebackup (or a plain copy of a stopped data directory) for a child, start/stop with
// pg_ctl. Every cluster listens on its own loopback address (addresses.ts) on the shared port, with
// TLS and scram-sha-256, exactly as a client reaches a Neon endpoint: same role, password and
// database as the rest of its project, only the host differs. Every wait here is bounded: a tool
// that does not finish in time is killed and its request fails, naming the branch.
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { DEFAULT_HOST_NUMBER, hostOf, LAST_HOST_NUMBER } from './addresses.js';
import { backendHostOf, Entries } from './entry.js';
import type { EmulatorConfig } from './config.js';

/** The emulator's own superuser, reachable only over each cluster's unix socket. */
const ADMIN_USER = 'emulator_admin';
const SOCKET_PATH_LIMIT = 100; // sun_path is 108 bytes on Linux; keep a margin
/** The template is complete once this file exists in it (an initdb cut short leaves none). */
const TEMPLATE_READY = 'emulator-template-ready';
/** Longest a PostgreSQL tool may run: pg_ctl waits 60 s itself; a copy of test data takes seconds. */
const TOOL_TIMEOUT_MS = 180_000;
/** The emulator's own SQL on a cluster: connecting over the socket, and one statement. */
const ADMIN_CONNECT_TIMEOUT_MS = 15_000;
const ADMIN_QUERY_TIMEOUT_MS = 60_000;

/** Who owns a project's data on every branch: its role (and password) and its database. */
export interface ProjectOwner {
  role: string;
  rolePassword: string;
  database: string;
}

export class Clusters {
  readonly #config: EmulatorConfig;
  /** uid/gid that own the data directories, or undefined when the clusters run as ourselves. */
  readonly #owner: { uid: number; gid: number } | undefined;

  /** The endpoints' connection entries (like Neon's proxy), one per running cluster. */
  readonly entries: Entries;

  constructor(config: EmulatorConfig) {
    this.#config = config;
    this.entries = new Entries(config);
    const isRoot = process.getuid?.() === 0;
    if (isRoot && config.pgUser === '') {
      throw new Error('neon emulator: running as root needs EMULATOR_PG_USER (PostgreSQL refuses to run as root)');
    }
    this.#owner = isRoot ? { uid: idOf(config.pgUser, '-u'), gid: idOf(config.pgUser, '-g') } : undefined;
    const longest = path.join(this.socketDir(LAST_HOST_NUMBER), `.s.PGSQL.${config.pgPort}`);
    if (longest.length >= SOCKET_PATH_LIMIT) {
      throw new Error(
        `neon emulator: EMULATOR_STATE_DIR is too long for unix socket paths (${longest} is ${longest.length} chars, limit ${SOCKET_PATH_LIMIT}); use a shorter state directory`,
      );
    }
  }

  /** Fails fast, naming the files, when clients could not verify the endpoints' certificate. */
  async checkCertificate(): Promise<void> {
    const { tlsCert, caCert } = this.#config;
    const cert = new X509Certificate(await fs.readFile(tlsCert));
    const ca = new X509Certificate(await fs.readFile(caCert));
    if (!cert.verify(ca.publicKey)) {
      throw new Error(`neon emulator: ${tlsCert} is not signed by ${caCert}; regenerate the stack's certificates`);
    }
    for (const host of [hostOf(DEFAULT_HOST_NUMBER), hostOf(LAST_HOST_NUMBER)]) {
      if (cert.checkIP(host) === undefined) {
        throw new Error(
          `neon emulator: ${tlsCert} does not name ${host} (it needs IP SANs 127.0.0.1..${hostOf(LAST_HOST_NUMBER)}); run 'npm run stack:up', which regenerates it`,
        );
      }
    }
  }

  dataDir(branchId: string): string {
    return path.join(this.#config.stateDir, 'clusters', branchId);
  }

  /** Each running cluster needs its own socket directory: they all share one port number. */
  socketDir(hostNumber: number): string {
    return path.join(this.#config.stateDir, 'sock', String(hostNumber));
  }

  async prepareDirectories(): Promise<void> {
    for (const dir of ['clusters', 'sock', 'logs', 'template']) await this.#ownedDir(path.join(this.#config.stateDir, dir));
  }

  /**
   * A fresh cluster for a project's default branch: a copy of the template (initdb runs once per
   * state directory, not once per project), started, with the project's role and database.
   */
  async createDefault(branchId: string, hostNumber: number, owner: ProjectOwner): Promise<void> {
    await this.#ensureTemplate();
    const dataDir = this.dataDir(branchId);
    await fs.rm(dataDir, { recursive: true, force: true });
    await this.#run('cp', ['-a', this.#templateDir(), dataDir], false);
    await this.start(branchId, hostNumber, owner);
    await this.withAdmin(hostNumber, 'postgres', async (client) => {
      // Neon's owner role is not a superuser: it logs in, creates databases, and owns its database.
      const ddl = await client.query<{ sql: string }>(
        "SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', $1::text, $2::text) AS sql",
        [owner.role, owner.rolePassword],
      );
      await client.query(ddl.rows[0].sql);
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(owner.database)} OWNER ${client.escapeIdentifier(owner.role)}`);
    });
  }

  #templateDir(): string {
    return path.join(this.#config.stateDir, 'template', 'data');
  }

  #template: Promise<void> | undefined;

  /** initdb once into a side directory, renamed into place only when complete. */
  #ensureTemplate(): Promise<void> {
    this.#template ??= (async () => {
      const dir = this.#templateDir();
      if (await exists(path.join(dir, TEMPLATE_READY))) return;
      await fs.rm(dir, { recursive: true, force: true });
      const building = `${dir}.new`;
      await fs.rm(building, { recursive: true, force: true });
      await this.#run('initdb', [
        '-D',
        building,
        '-U',
        ADMIN_USER,
        '-E',
        'UTF8',
        '--locale=C.UTF-8',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '--no-sync',
      ]);
      await fs.appendFile(path.join(building, 'postgresql.conf'), "\ninclude_if_exists = 'emulator.conf'\n");
      await this.#writeOwned(path.join(building, 'pg_hba.conf'), HBA);
      await this.#writeOwned(path.join(building, TEMPLATE_READY), '');
      await fs.rename(building, dir);
    })().catch((error: unknown) => {
      this.#template = undefined; // the next project creation tries again
      throw error;
    });
    return this.#template;
  }

  /**
   * A new data directory holding the parent's data as of now. A running parent is copied with
   * pg_basebackup; a stopped one (storage-only branch) with a plain file copy, which is
   * consistent because a cleanly stopped cluster has nothing in flight.
   */
  async copy(parent: { branchId: string; hostNumber: number | undefined }, childId: string): Promise<void> {
    const target = this.dataDir(childId);
    await fs.rm(target, { recursive: true, force: true });
    if (parent.hostNumber !== undefined && (await this.isRunning(parent.branchId))) {
      await this.#run('pg_basebackup', [
        '-h',
        this.socketDir(parent.hostNumber),
        '-p',
        String(this.#config.pgPort),
        '-U',
        ADMIN_USER,
        '-D',
        target,
        '-X',
        'stream',
        '-c',
        'fast',
        '--no-sync',
      ]);
    } else {
      await this.#run('cp', ['-a', this.dataDir(parent.branchId), target], false);
      await fs.rm(path.join(target, 'postmaster.pid'), { force: true });
    }
  }

  /** Starts the cluster of a branch on its address (a cluster already running is left running). */
  async start(branchId: string, hostNumber: number, owner: Pick<ProjectOwner, 'role' | 'rolePassword'>): Promise<void> {
    if (!(await this.isRunning(branchId))) await this.#startStopped(branchId, hostNumber);
    // The role's password is the branch's own (the caller's), whatever the copied data held.
    await this.setRolePassword(hostNumber, owner);
    await this.entries.open(hostNumber, branchId);
  }

  /** Sets the owner role's password in a running cluster (a reset_password, a child's fresh password). */
  async setRolePassword(hostNumber: number, owner: Pick<ProjectOwner, 'role' | 'rolePassword'>): Promise<void> {
    await this.withAdmin(hostNumber, 'postgres', async (client) => {
      const ddl = await client.query<{ sql: string }>(
        "SELECT format('ALTER ROLE %I PASSWORD %L', rolname, $2::text) AS sql FROM pg_roles WHERE rolname = $1",
        [owner.role, owner.rolePassword],
      );
      if (ddl.rows.length === 1) await client.query(ddl.rows[0].sql);
    });
  }

  async #startStopped(branchId: string, hostNumber: number): Promise<void> {
    const dataDir = this.dataDir(branchId);
    const socketDir = this.socketDir(hostNumber);
    await this.#ownedDir(socketDir, 0o700);
    // Re-copied at every start so a regenerated stack certificate is picked up by every branch.
    await this.#copyOwned(this.#config.tlsCert, path.join(dataDir, 'server.crt'));
    await this.#copyOwned(this.#config.tlsKey, path.join(dataDir, 'server.key'));
    await this.#writeOwned(path.join(dataDir, 'emulator.conf'), clusterSettings(hostNumber, this.#config.pgPort, socketDir));
    const log = path.join(this.#config.stateDir, 'logs', `${branchId}.log`);
    try {
      await this.#run('pg_ctl', ['start', '-D', dataDir, '-w', '-t', '60', '-s', '-l', log]);
    } catch (error) {
      const tail = await fs.readFile(log, 'utf8').then(
        (t) => t.split('\n').slice(-15).join('\n'),
        () => '',
      );
      throw new Error(
        `starting the cluster of branch ${branchId} on ${hostOf(hostNumber)}:${this.#config.pgPort} failed: ${(error as Error).message}\n${tail}`,
        { cause: error },
      );
    }
  }

  async stop(branchId: string): Promise<void> {
    await this.entries.closeBranch(branchId);
    if (!(await this.isRunning(branchId))) return;
    await this.#run('pg_ctl', ['stop', '-D', this.dataDir(branchId), '-m', 'fast', '-w', '-t', '60', '-s']);
  }

  async remove(branchId: string): Promise<void> {
    await this.stop(branchId);
    await fs.rm(this.dataDir(branchId), { recursive: true, force: true });
    await fs.rm(path.join(this.#config.stateDir, 'logs', `${branchId}.log`), { force: true });
  }

  /** Stops every cluster under the state directory, whether or not the state still knows it. */
  async stopEverything(): Promise<void> {
    const ids = await fs.readdir(path.join(this.#config.stateDir, 'clusters')).catch(() => [] as string[]);
    const results = await Promise.allSettled(ids.map((id) => this.stop(id)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) throw new Error(failures.map((f) => (f.reason as Error).message).join('\n'));
  }

  /** Removes the data directories of branches that no longer exist (a deletion cut short by a stop). */
  async removeAllExcept(branchIds: readonly string[]): Promise<string[]> {
    const ids = await fs.readdir(path.join(this.#config.stateDir, 'clusters')).catch(() => [] as string[]);
    const orphans = ids.filter((id) => !branchIds.includes(id));
    for (const id of orphans) await this.remove(id);
    return orphans;
  }

  async isRunning(branchId: string): Promise<boolean> {
    try {
      await this.#run('pg_ctl', ['status', '-D', this.dataDir(branchId)]);
      return true;
    } catch {
      return false; // exit 3 = not running, 4 = no data directory
    }
  }

  /** Drops and recreates the project's database, empty and owned by the project's role. */
  async recreateDatabase(hostNumber: number, owner: Pick<ProjectOwner, 'role' | 'database'>): Promise<void> {
    await this.withAdmin(hostNumber, 'postgres', async (client) => {
      const db = client.escapeIdentifier(owner.database);
      await client.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${db} OWNER ${client.escapeIdentifier(owner.role)}`);
    });
  }

  /** Size of the cluster's databases on disk, reported as the branch's logical size. */
  async logicalSize(branchId: string): Promise<number> {
    return directorySize(path.join(this.dataDir(branchId), 'base'));
  }

  async withAdmin<T>(hostNumber: number, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: this.socketDir(hostNumber),
      port: this.#config.pgPort,
      user: ADMIN_USER,
      database,
      connectionTimeoutMillis: ADMIN_CONNECT_TIMEOUT_MS,
      query_timeout: ADMIN_QUERY_TIMEOUT_MS,
    });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }

  /**
   * Runs a PostgreSQL tool (or cp) as the cluster owner; its stderr becomes the error message. One
   * that outlives TOOL_TIMEOUT_MS is killed, so a stuck copy fails its request instead of holding
   * the project's work queue (and with it every later mutation of the project) for ever.
   */
  #run(tool: string, args: string[], fromBinDir = true): Promise<string> {
    const program = fromBinDir ? path.join(this.#config.pgBinDir, tool) : tool;
    const [file, argv] = this.#owner ? ['runuser', ['-u', this.#config.pgUser, '--', program, ...args]] : [program, args];
    return new Promise((resolve, reject) => {
      // cwd: the cluster user may not be allowed into the emulator's working directory.
      execFile(
        file,
        argv,
        { cwd: '/', maxBuffer: 16 * 1024 * 1024, timeout: TOOL_TIMEOUT_MS, killSignal: 'SIGKILL' },
        (error, stdout, stderr) => {
          if (error?.killed)
            reject(
              new Error(
                `${tool} ${args[0] ?? ''} did not finish within ${TOOL_TIMEOUT_MS / 1000} s and was killed: ${(stderr || stdout).trim()}`,
              ),
            );
          else if (error) reject(new Error(`${tool} ${args[0] ?? ''} failed: ${(stderr || stdout || error.message).trim()}`));
          else resolve(stdout);
        },
      );
    });
  }

  async #ownedDir(dir: string, mode = 0o755): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode });
    await fs.chmod(dir, mode);
    if (this.#owner) await fs.chown(dir, this.#owner.uid, this.#owner.gid);
  }

  /** Files the server reads must belong to the cluster user; the key must not be readable by others. */
  async #writeOwned(file: string, content: string): Promise<void> {
    await fs.writeFile(file, content, { mode: 0o600 });
    await fs.chmod(file, 0o600);
    if (this.#owner) await fs.chown(file, this.#owner.uid, this.#owner.gid);
  }

  async #copyOwned(from: string, to: string): Promise<void> {
    await this.#writeOwned(to, await fs.readFile(from, 'utf8'));
  }
}

// Only the emulator's superuser may use the unix socket (whose directory is private to the
// cluster user); every client connection must be TLS with a password: plain TCP is refused.
const HBA = `# Written by the Neon emulator.
local    all          ${ADMIN_USER}   trust
local    replication  ${ADMIN_USER}   trust
hostssl  all          all             127.0.0.0/8   scram-sha-256
`;

function clusterSettings(hostNumber: number, port: number, socketDir: string): string {
  return `# Written by the Neon emulator at every start.
# Behind the endpoint's entry (entry.ts), which listens on the endpoint address itself.
listen_addresses = '${backendHostOf(hostNumber)}'
port = ${port}
unix_socket_directories = '${socketDir}'
unix_socket_permissions = 0700
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
shared_buffers = '16MB'
max_connections = 30
# Test data only: skipping fsync makes branch copies and test writes fast; a crash may lose it.
fsync = off
# pg_basebackup (branch creation) needs replication-level WAL and a WAL sender.
wal_level = replica
max_wal_senders = 4
`;
}

function idOf(user: string, flag: '-u' | '-g'): number {
  try {
    return Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error(`neon emulator: EMULATOR_PG_USER=${user} is not a user on this machine`);
  }
}

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await fs.stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
