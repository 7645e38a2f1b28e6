// What real Neon does that a first run meets, on the local stack's stricter emulator: a Free-plan
// project (plan-limited endpoint settings refused), the standby URL exactly as Neon's console writes
// it (pooler-free host here, channel_binding=require, options=endpoint=<id> checked by the
// endpoint's entry like Neon's proxy), a backup taken before the standby's password was reset, a
// protected standby whose children get fresh passwords, expiry pushed forward during long work.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { MongoClient } from 'mongodb';
import { parseConfig, type Config, type RawInputs } from '../../src/config.js';
import { backup } from '../../src/modes/backup.js';
import { recover } from '../../src/modes/recover.js';
import { restore } from '../../src/modes/restore.js';
import { validate } from '../../src/modes/validate.js';
import { connectMongo } from '../../src/mongo.js';
import { NeonApi, type BranchInfo } from '../../src/neon.js';
import { connectPostgres } from '../../src/postgres.js';
import { clearSecrets, registerSecret } from '../../src/secrets.js';
import { withTemporaryBranch } from '../../src/temporary-branch.js';
import { loadDataset, shopDataset } from '../../devkit/shop.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';
import { recordingIo } from '../../test/support/recording-io.js';
import { findSecretLeaks, runAction } from '../../devkit/action.js';
import { describeWithStack } from '../../test/support/describe-with-stack.js';

const DB = `rn_shop_${process.pid}_${Date.now().toString(36)}`;
const PREFIX = `rn${process.pid}_`;
const STACK = ['MONGODB_SRV_URL', 'NEON_API_KEY', 'NEON_API_HOST', 'SUPANEON_STACK_DIR'];
const COUNTS = { customers: 30, products: 10, orders: 60 };
const TOTAL = COUNTS.customers + COUNTS.products + COUNTS.orders;

describeWithStack('real Neon behaviour on the local stack', STACK, (env) => {
  let project: TestProject;
  let mongo: MongoClient;
  let neon: NeonApi;
  let standbyEndpoint: { id: string; branchId: string };

  /** This project's emulator settings (the plan Neon would set by subscription). */
  const setPlan = async (plan: string): Promise<unknown> => {
    const res = await fetch(`${project.apiHost.replace(/\/api\/v2\/?$/, '')}/__emulator/projects/${project.projectId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${project.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plan }),
    });
    if (!res.ok) throw new Error(`emulator plan ${plan}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  const api = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${project.apiHost}/projects/${project.projectId}${route}`, {
        method,
        headers: { authorization: `Bearer ${project.apiKey}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      // An operation of the previous call may still hold the project (423): wait for it, bounded.
      if (res.status === 423 && attempt < 100) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    }
  };

  /** The standby URL exactly as Neon's console writes it, with the given password. */
  const consoleUrl = (password?: string): string => {
    const u = new URL(project.databaseUrl);
    if (password !== undefined) u.password = encodeURIComponent(password);
    u.search = `?sslmode=require&channel_binding=require&options=endpoint%3D${standbyEndpoint.id}`;
    return u.toString();
  };
  const config = (mode: string, url: string, inputs: RawInputs = {}): Config =>
    parseConfig({ mode, databases: DB, ...project.inputs, 'neon-database-url': url, 'lock-wait-seconds': '60', ...inputs }, process.env);
  const ok = async (what: string, run: (io: ReturnType<typeof recordingIo>) => Promise<boolean>) => {
    const io = recordingIo();
    const passed = await run(io);
    if (!passed) throw new Error(`${what} failed:\n${io.lines.join('\n')}`);
    return io;
  };

  beforeAll(async () => {
    project = await createTestProject('real-neon.test.ts');
    neon = new NeonApi({ apiKey: project.apiKey, projectId: project.projectId, baseUrl: project.apiHost, log: recordingIo().log });
    const endpoints = (await api('GET', '/endpoints')).json.endpoints as { id: string; branch_id: string; host: string }[];
    const standby = endpoints.find((e) => e.host === new URL(project.databaseUrl).hostname);
    if (!standby) throw new Error("the test project has no endpoint at its default branch's host");
    standbyEndpoint = { id: standby.id, branchId: standby.branch_id };
    mongo = await connectMongo(env.MONGODB_SRV_URL);
    await loadDataset(mongo, DB, shopDataset(COUNTS, 5));
  }, 600_000);

  afterAll(async () => {
    clearSecrets();
    if (mongo) {
      for (const name of [DB, `${PREFIX}a_${DB}`, `${PREFIX}b_${DB}`, `${PREFIX}c_${DB}`])
        await mongo
          .db(name)
          .dropDatabase()
          .catch(() => undefined);
      await mongo.close();
    }
    await project?.dispose();
  });

  test("a Free-plan project refuses plan-limited endpoint settings with Neon's message", async () => {
    const project = (await api('GET', '')).json.project as { owner: { subscription_type: string } };
    expect(project.owner.subscription_type).toBe('free_v3');
    const refused = await api('POST', '/branches', {
      branch: { name: 'rn-suspend' },
      endpoints: [{ type: 'read_write', suspend_timeout_seconds: 60 }],
    });
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ code: '', message: 'suspend interval changing is not allowed for your account' });
    const tooBig = await api('POST', '/branches', {
      branch: { name: 'rn-big' },
      endpoints: [{ type: 'read_write', autoscaling_limit_max_cu: 8 }],
    });
    expect(tooBig.status).toBe(400);
    expect((await neon.findBranchesByName('rn-suspend')).length + (await neon.findBranchesByName('rn-big')).length).toBe(0);
  });

  test("the endpoint entry refuses an options=endpoint that names another endpoint, with the proxy's message", async () => {
    const u = new URL(consoleUrl());
    u.searchParams.set('options', 'endpoint=ep-somewhere-else-12345678');
    await expect(connectPostgres(u.toString())).rejects.toThrow(
      `Inconsistent project name inferred from SNI ('${standbyEndpoint.id}') and project option ('ep-somewhere-else-12345678')`,
    );
  });

  test('the console URL: validate, backup, restore and recover pass on the Free plan', async () => {
    const url = consoleUrl();
    await ok('validate', (io) => validate(config('validate', url), io));
    await ok('backup', (io) => backup(config('backup', url), io));
    const restored = await ok('restore', (io) => restore(config('restore', url), io));
    expect(restored.outputs).toMatchObject({ verified: 'true', documents: String(TOTAL) });
    const recovered = await ok('recover', (io) =>
      recover(config('recover', url, { 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': `${PREFIX}a_` }), io),
    );
    expect(recovered.outputs).toMatchObject({ verified: 'true', documents: String(TOTAL) });
  });

  test('a backup taken before the standby password was reset still restores and recovers', async () => {
    const before = (await neon.toolBranches('backup'))[0];
    expect(before).toBeDefined();
    const reset = await api('POST', `/branches/${standbyEndpoint.branchId}/roles/neondb_owner/reset_password`);
    expect(reset.status).toBe(200);
    const password = (reset.json.role as { password: string }).password;
    expect(password).not.toBe(decodeURIComponent(new URL(project.databaseUrl).password));
    const url = consoleUrl(password);
    // The old password no longer opens the standby.
    await expect(connectPostgres(consoleUrl())).rejects.toThrow(/password authentication failed/);

    const restored = await ok('restore', (io) => restore(config('restore', url, { 'backup-branch': before.id }), io));
    expect(restored.outputs).toMatchObject({ verified: 'true', 'backup-branch-id': before.id, documents: String(TOTAL) });
    const recovered = await ok('recover', (io) =>
      recover(
        config('recover', url, {
          'backup-branch': before.id,
          'target-mongodb-uri': env.MONGODB_SRV_URL,
          'target-database-prefix': `${PREFIX}b_`,
        }),
        io,
      ),
    );
    expect(recovered.outputs).toMatchObject({ verified: 'true', documents: String(TOTAL) });
  });

  test('a protected standby (children get fresh passwords): backup, restore and recover pass', async () => {
    // Free has no protected branches, as on Neon; Launch does.
    const refused = await api('PATCH', `/branches/${standbyEndpoint.branchId}`, { branch: { protected: true } });
    expect(refused.status).toBe(400);
    await setPlan('launch');
    expect((await api('PATCH', `/branches/${standbyEndpoint.branchId}`, { branch: { protected: true } })).status).toBe(200);
    const password = (
      (await api('GET', `/branches/${standbyEndpoint.branchId}/roles/neondb_owner/reveal_password`)).json as { password: string }
    ).password;
    const url = consoleUrl(password);

    const backedUp = await ok('backup', (io) => backup(config('backup', url), io));
    const made = (await neon.findBranch(backedUp.outputs['branch-id'])) as BranchInfo;
    const childPassword = ((await api('GET', `/branches/${made.id}/roles/neondb_owner/reveal_password`)).json as { password: string })
      .password;
    expect(childPassword).not.toBe(password);
    expect((await neon.findBranch(standbyEndpoint.branchId))?.protected).toBe(true);

    const restored = await ok('restore', (io) => restore(config('restore', url), io));
    expect(restored.outputs).toMatchObject({ verified: 'true', 'backup-branch-id': made.id, documents: String(TOTAL) });
    const recovered = await ok('recover', (io) =>
      recover(config('recover', url, { 'target-mongodb-uri': env.MONGODB_SRV_URL, 'target-database-prefix': `${PREFIX}c_` }), io),
    );
    expect(recovered.outputs).toMatchObject({ verified: 'true', documents: String(TOTAL) });
  });

  test('the standby is found by endpoint id from any host form; an unknown endpoint gets one line naming the input and the fix', async () => {
    const alias = new URL(consoleUrl());
    alias.hostname = 'localhost';
    expect((await neon.findBranchByEndpoint(alias.toString()))?.id).toBe(standbyEndpoint.branchId);
    const pooler = `postgresql://u:p@${standbyEndpoint.id}-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require`;
    expect((await neon.findBranchByEndpoint(pooler))?.id).toBe(standbyEndpoint.branchId);

    const unknown = new URL(consoleUrl());
    unknown.searchParams.set('options', 'endpoint=ep-nowhere-00000000');
    const io = recordingIo();
    expect(await validate(config('validate', unknown.toString()), io)).toBe(false);
    const pattern =
      /neon-database-url reaches endpoint ep-nowhere-00000000 .*which is in no branch of Neon project .*copy the connection string from that project's dashboard/;
    expect(io.lines.join('\n')).toMatch(pattern);
    expect(io.lines.filter((l) => pattern.test(l))).toHaveLength(1);
  });

  test('expires_at is pushed forward while the work on a temporary branch runs; the branch password Neon handed out is masked', async () => {
    const masked: string[] = [];
    clearSecrets(); // earlier runs in this process met the same password already
    registerSecret(undefined, (v) => masked.push(v));
    const backupBranch = (await neon.toolBranches('backup'))[0];
    const cfg = config(
      'restore',
      consoleUrl(
        ((await api('GET', `/branches/${standbyEndpoint.branchId}/roles/neondb_owner/reveal_password`)).json as { password: string })
          .password,
      ),
    );
    const io = recordingIo();
    await withTemporaryBranch(
      neon,
      cfg,
      io,
      { backup: backupBranch, purpose: 'restore', keep: false, renewEveryMs: 1500 },
      async ({ branch, expiresAt }) => {
        // The protected standby's backup gave this branch a password of its own; it was masked before use.
        const own = ((await api('GET', `/branches/${branch.id}/roles/neondb_owner/reveal_password`)).json as { password: string }).password;
        expect(masked).toContain(own);
        // Bounded: renewals come every 1.5 s; Neon's expiry has whole seconds.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const now = (await api('GET', `/branches/${branch.id}`)).json.branch as { expires_at: string };
          if (Date.parse(now.expires_at) > Date.parse(expiresAt)) break;
          if (Date.now() > deadline) throw new Error(`expires_at stayed ${now.expires_at}`);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      },
    );
    expect(io.lines.filter((l) => l.startsWith('warning:'))).toEqual([]);
  });

  test('through the action (dist/, npm run build): the password Neon hands the temporary branch is masked and never printed', async () => {
    const backupBranch = (await neon.toolBranches('backup'))[0];
    // The newest backup was made from the protected standby: its children share its fresh password.
    const branchPassword = (
      (await api('GET', `/branches/${backupBranch.id}/roles/neondb_owner/reveal_password`)).json as { password: string }
    ).password;
    const standbyPassword = (
      (await api('GET', `/branches/${standbyEndpoint.branchId}/roles/neondb_owner/reveal_password`)).json as { password: string }
    ).password;
    expect(branchPassword).not.toBe(standbyPassword);
    const run = await runAction(
      { mode: 'restore', ...project.inputs, 'neon-database-url': consoleUrl(standbyPassword), 'backup-branch': backupBranch.id },
      {
        env: { NEON_API_KEY: undefined, NEON_PROJECT_ID: undefined, NEON_DATABASE_URL: undefined, NEON_API_HOST: undefined },
        timeoutMs: 180_000,
      },
    );
    expect(run.exitCode).toBe(0);
    expect(run.outputs.verified).toBe('true');
    expect(run.stdout).toContain(`::add-mask::${branchPassword}`);
    expect(findSecretLeaks(run, [branchPassword, standbyPassword])).toEqual([]);
  }, 240_000);

  test('a repeated DELETE of a branch answers 204, and the client takes it as done', async () => {
    const made = await neon.createBackupBranch({ name: 'rn-delete-twice', parentId: standbyEndpoint.branchId, runId: 'rn' });
    await neon.deleteBranch(made.id);
    expect((await api('DELETE', `/branches/${made.id}`)).status).toBe(204);
    await expect(neon.deleteBranch(made.id)).resolves.toBeUndefined();
  });

  test('channel_binding=require refuses a server that does not offer SCRAM-SHA-256-PLUS, before sending the password', async () => {
    const tlsDir = path.join(env.SUPANEON_STACK_DIR, 'tls');
    const files = fs.readdirSync(tlsDir);
    const certFile = files.find((f) => f === 'server.crt');
    const keyFile = files.find((f) => f === 'server.key');
    if (!certFile || !keyFile) throw new Error(`no endpoint certificate in ${tlsDir}: ${files.join(', ')}`);
    const received: Buffer[] = [];
    // A Postgres-protocol server that accepts TLS and asks for plain SCRAM-SHA-256 only, as a server
    // without channel binding (or one in the middle) would.
    const server = net.createServer((raw) => {
      raw.once('data', () => {
        raw.write('S');
        const secure = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: tls.createSecureContext({
            cert: fs.readFileSync(path.join(tlsDir, certFile)),
            key: fs.readFileSync(path.join(tlsDir, keyFile)),
          }),
        });
        secure.on('error', () => undefined);
        let startup = true;
        secure.on('data', (chunk: Buffer) => {
          if (startup) {
            startup = false;
            const mechanisms = Buffer.from('SCRAM-SHA-256\0\0');
            const msg = Buffer.alloc(9 + mechanisms.length);
            msg.write('R', 0, 'latin1');
            msg.writeInt32BE(8 + mechanisms.length, 1);
            msg.writeInt32BE(10, 5);
            mechanisms.copy(msg, 9);
            secure.write(msg);
          } else {
            received.push(chunk);
          }
        });
      });
      raw.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const u = new URL(consoleUrl());
      u.hostname = '127.0.0.1';
      u.port = String(port);
      await expect(connectPostgres(u.toString())).rejects.toThrow(
        /offers only SCRAM-SHA-256 without channel binding, but neon-database-url has channel_binding=require/,
      );
      // prefer (or no channel_binding) falls back, as libpq does: the client answers with SCRAM.
      u.searchParams.set('channel_binding', 'prefer');
      await expect(connectPostgres(u.toString(), { connectTimeoutMs: 1000 })).rejects.toThrow();
    } finally {
      server.close();
    }
    // Under require nothing was sent after the startup packet; under prefer the SCRAM first message was.
    expect(received.length).toBe(1);
    expect(received[0].toString('latin1')).toContain('SCRAM-SHA-256');
  });
});
