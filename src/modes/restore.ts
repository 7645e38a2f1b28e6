/**
 * mode: restore — prove a backup restores. The runbook:
 *   1. pick the backup branch (input backup-branch, else this standby's newest backup);
 *   2. sweep this tool's expired restore-test branches and make sure one more branch fits;
 *   3. record the temporary branch's name in the action state (so the post step can remove it even
 *      if this step dies), create it from the backup with a small endpoint and an expiry, record
 *      its id;
 *   4. connect with the standby's role and database at the new endpoint (TLS verified) and run the
 *      checks (verify.ts), the user checks, and optionally the source comparison;
 *   5. always delete the temporary branch (unless keep-restore-branch), then report.
 */
import type pg from 'pg';
import type { MongoClient } from 'mongodb';
import type { Config } from '../config.js';
import type { Io } from '../io.js';
import { connectMongo } from '../mongo.js';
import { NeonApi, TOOL_ANNOTATION, type BranchInfo } from '../neon.js';
import { connectPostgres } from '../postgres.js';
import { formatDuration, markdownTable } from '../report.js';
import { FREE_PLAN_BRANCH_LIMIT, applyRetention, ensureRoomForBranches, planRetention } from '../retention.js';
import { compareSourceCounts, logCheck, runUserCheck, verifyBackup, type CheckResult, type VerifyReport } from '../verify.js';

/** Names of the values saved for the post step (`STATE_<name>` there). */
export const STATE_RESTORE_BRANCH_NAME = 'restore-branch-name';
export const STATE_RESTORE_BRANCH_ID = 'restore-branch-id';

/** A fresh endpoint may refuse connections for a moment after its operations finish. */
const CONNECT_DEADLINE_MS = 60_000;

export async function restore(config: Config, io: Io): Promise<boolean> {
  const started = Date.now();
  const neon = newNeonApi(config, io);
  const finish = (verified: boolean, collections: number, documents: number) => {
    io.setOutput('verified', verified ? 'true' : 'false');
    io.setOutput('collections', collections);
    io.setOutput('documents', documents);
    io.setOutput('duration-seconds', Math.round((Date.now() - started) / 1000));
  };

  let restoreBranch: BranchInfo | undefined;
  let backup: BranchInfo;
  let report: VerifyReport | undefined;
  const extraChecks: CheckResult[] = [];
  try {
    // 1. Which backup.
    backup = await chooseBackup(neon, config, io);
    io.setOutput('backup-branch-id', backup.id);
    io.setOutput('backup-branch-name', backup.name);

    // 2. Leftovers of earlier runs first: they count against the branch limit.
    const now = new Date();
    const standbyId = backup.annotations['standby-branch-id'] ?? backup.parentId ?? '';
    const sweep = planRetention({
      branches: await neon.listBranches(),
      standbyId,
      retain: config.retain,
      restoreTtlMinutes: config.restoreTtlMinutes,
      now,
      kinds: ['restore-test'],
    });
    if (sweep.delete.length > 0 || sweep.skipped.length > 0) await applyRetention(neon, sweep, io);
    const project = await neon.getProject();
    await ensureRoomForBranches(
      neon,
      {
        needed: 1,
        limit: project.branchLimit ?? FREE_PLAN_BRANCH_LIMIT,
        standbyId,
        retain: config.retain,
        restoreTtlMinutes: config.restoreTtlMinutes,
        kinds: ['restore-test'],
      },
      io,
    );

    // 3. The temporary branch. Its name is on record before it exists, its id as soon as it does.
    let name = `${config.restorePrefix}${utcStamp(new Date())}`;
    // Two runs within one second (a retried job, a matrix) would otherwise ask for the same name.
    while ((await neon.findBranchesByName(name)).length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
      name = `${config.restorePrefix}${utcStamp(new Date())}`;
    }
    const expiresAt = rfc3339Seconds(new Date(Date.now() + config.restoreTtlMinutes * 60_000));
    io.saveState(STATE_RESTORE_BRANCH_NAME, name);
    let host: string;
    try {
      const created = await neon.createRestoreBranch({ name, parentId: backup.id, expiresAt });
      restoreBranch = created.branch;
      host = created.host;
    } catch (e) {
      // The create may have happened even though it failed: the finally below looks it up by name.
      restoreBranch = { id: '', name, createdAt: now.toISOString(), isDefault: false, annotations: {} };
      throw e;
    }
    io.saveState(STATE_RESTORE_BRANCH_ID, restoreBranch.id);
    io.setOutput('restore-branch-id', restoreBranch.id);
    io.log.info(`restore branch "${name}" (${restoreBranch.id}) created from "${backup.name}" at ${host}, expires ${expiresAt}`);

    // 4. The checks.
    const client = await connectWithPatience(config.neonDatabaseUrl, host);
    try {
      report = await verifyBackup(client, {
        runId: backup.annotations['run-id'],
        mode: config.verify,
        sampleSize: config.sampleSize,
        batchSize: config.batchSize,
        log: io.log,
      });
      if (report.manifest?.backup.status === 'completed') {
        for (const [i, sql] of config.checks.entries()) {
          const result = await runUserCheck(client, sql, i);
          logCheck(io.log, result);
          extraChecks.push(result);
        }
        if (config.compareSource) extraChecks.push(...(await sourceComparison(config, report, io)));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (e) {
    finish(false, report?.collections ?? 0, report?.documents ?? 0);
    throw e;
  } finally {
    // 5. Cleanup, whatever happened above.
    if (restoreBranch) await removeOrKeep(neon, restoreBranch, config, io);
  }

  const checks = [...report.checks, ...extraChecks];
  const failures = checks.filter((c) => c.status === 'fail');
  const verified = failures.length === 0;
  finish(verified, report.collections, report.documents);
  await io.appendSummary(summary(backup, restoreBranch, checks, verified, report, (Date.now() - started) / 1000));
  if (verified) {
    io.log.info(`Verified: backup "${backup.name}" restores completely and exactly (${report.collections} collection(s), ${report.documents} document(s)).`);
  } else {
    for (const f of failures) io.log.error(`Verification failed: ${f.subject}: ${f.check}: ${f.detail}`);
  }
  return verified;
}

/**
 * The post step's cleanup: deletes the restore branch the main step recorded, if it still exists.
 * Only a branch annotated as this tool's restore test is ever deleted here.
 */
export async function cleanupRestoreState(
  state: { restoreBranchId?: string; restoreBranchName?: string },
  config: Config,
  io: Io,
): Promise<void> {
  const id = state.restoreBranchId?.trim() || undefined;
  const name = state.restoreBranchName?.trim() || undefined;
  if (!id && !name) {
    io.log.info('supaneon-sync post: no restore branch recorded, nothing to clean up');
    return;
  }
  if (config.keepRestoreBranch) {
    io.log.info(`supaneon-sync post: keeping restore branch ${name ?? id} (keep-restore-branch: true); it expires on its own`);
    return;
  }
  const neon = newNeonApi(config, io);
  const branches = await neon.listBranches();
  const targets = branches.filter(
    (b) => b.annotations[TOOL_ANNOTATION] === 'restore-test' && (id ? b.id === id : b.name === name),
  );
  const foreign = branches.find((b) => (id ? b.id === id : b.name === name) && b.annotations[TOOL_ANNOTATION] !== 'restore-test');
  if (foreign) {
    io.log.warn(`supaneon-sync post: branch "${foreign.name}" (${foreign.id}) is not a supaneon-sync restore-test branch; not deleting it`);
  }
  if (targets.length === 0) {
    io.log.info(`supaneon-sync post: restore branch ${name ?? ''}${id ? ` (${id})` : ''} is already gone`);
    return;
  }
  for (const b of targets) {
    await neon.deleteBranch(b.id);
    io.log.info(`supaneon-sync post: deleted restore branch "${b.name}" (${b.id}) left by the main step`);
  }
}

function newNeonApi(config: Config, io: Io): NeonApi {
  return new NeonApi({ apiKey: config.neonApiKey, projectId: config.neonProjectId, baseUrl: config.neonApiHost, log: io.log });
}

async function chooseBackup(neon: NeonApi, config: Config, io: Io): Promise<BranchInfo> {
  const wanted = config.backupBranch;
  if (wanted) {
    const branch = await neon.findBranch(wanted);
    if (!branch) {
      throw new Error(
        `backup-branch "${wanted}" matches no branch (by id or exact name) of Neon project "${config.neonProjectId}"; ` +
          "pass the backup job's branch-id or branch-name output, or leave backup-branch empty for the newest backup",
      );
    }
    if (branch.expiresAt) {
      throw new Error(
        `backup-branch "${wanted}" (${branch.id}) has an expiry (${branch.expiresAt}), and Neon cannot branch from an expiring branch; ` +
          'choose a backup branch made by mode backup',
      );
    }
    if (branch.annotations[TOOL_ANNOTATION] !== 'backup') {
      io.log.warn(`backup-branch "${branch.name}" (${branch.id}) was not made by supaneon-sync backup; verifying the newest completed backup recorded on it`);
    }
    io.log.info(`backup: "${branch.name}" (${branch.id}), created ${branch.createdAt}`);
    return branch;
  }
  const backups = await neon.toolBranches('backup');
  // Prefer this standby's backups when several standbys share the project.
  const standby = await neon.findBranchByEndpointHost(new URL(config.neonDatabaseUrl).hostname).catch(() => undefined);
  const mine = standby ? backups.filter((b) => b.annotations['standby-branch-id'] === standby.id) : backups;
  const newest = mine[0];
  if (!newest) {
    throw new Error(
      `Neon project "${config.neonProjectId}" has no backup branch made by supaneon-sync` +
        (standby ? ` from the standby "${standby.name}" (${standby.id})` : '') +
        '; run mode backup first, or set backup-branch',
    );
  }
  io.log.info(`backup: the newest, "${newest.name}" (${newest.id}), created ${newest.createdAt}`);
  return newest;
}

async function connectWithPatience(url: string, host: string): Promise<pg.Client> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (let delay = 500; ; delay = Math.min(5000, delay * 2)) {
    try {
      return await connectPostgres(url, { host, applicationName: 'supaneon-sync restore' });
    } catch (e) {
      if (Date.now() + delay > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function sourceComparison(config: Config, report: VerifyReport, io: Io): Promise<CheckResult[]> {
  if (!config.mongodbUri) {
    const r: CheckResult = { subject: '(source)', check: 'source count', status: 'notice', detail: 'compare-source needs mongodb-uri (or MONGODB_SRV_URL)' };
    logCheck(io.log, r);
    return [r];
  }
  let mongo: MongoClient | undefined;
  try {
    mongo = await connectMongo(config.mongodbUri);
    const results = await compareSourceCounts(mongo, report.manifest?.collections ?? [], report.counts);
    results.forEach((r) => logCheck(io.log, r));
    return results;
  } catch (e) {
    const r: CheckResult = { subject: '(source)', check: 'source count', status: 'notice', detail: (e as Error).message };
    logCheck(io.log, r);
    return [r];
  } finally {
    await mongo?.close().catch(() => undefined);
  }
}

async function removeOrKeep(neon: NeonApi, branch: BranchInfo, config: Config, io: Io): Promise<void> {
  try {
    // No id: the create failed, but Neon may have made the branch anyway.
    const targets = branch.id
      ? [branch]
      : (await neon.findBranchesByName(branch.name)).filter((b) => b.annotations[TOOL_ANNOTATION] === 'restore-test');
    if (targets.length === 0) return;
    if (config.keepRestoreBranch) {
      for (const b of targets) io.log.info(connectHint(b, config));
    } else {
      for (const b of targets) {
        await neon.deleteBranch(b.id);
        io.log.info(`restore branch "${b.name}" (${b.id}) deleted`);
      }
    }
    // Nothing left for the post step to do.
    io.saveState(STATE_RESTORE_BRANCH_ID, '');
    io.saveState(STATE_RESTORE_BRANCH_NAME, '');
  } catch (e) {
    io.log.warn(
      `could not delete restore branch "${branch.name}"${branch.id ? ` (${branch.id})` : ''}: ${(e as Error).message}. ` +
        "The action's post step tries again, and the branch expires on its own.",
    );
  }
}

function connectHint(b: BranchInfo, config: Config): string {
  const u = new URL(config.neonDatabaseUrl);
  const role = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return (
    `keeping restore branch "${b.name}" (${b.id}) as asked (keep-restore-branch: true)` +
    `${b.expiresAt ? `; it expires at ${b.expiresAt}` : ''}. Connect with the standby's credentials: ` +
    `psql "postgresql://${role}@<endpoint host of branch ${b.id}>/${database}?sslmode=require" (password: the standby's), ` +
    'or copy its connection string from the Neon console. Delete it there when done.'
  );
}

function summary(backup: BranchInfo, restoreBranch: BranchInfo | undefined, checks: CheckResult[], verified: boolean, report: VerifyReport, seconds: number): string {
  const verdict = verified ? '**verified**' : `**FAILED** (${checks.filter((c) => c.status === 'fail').length} check(s))`;
  const run = report.manifest?.backup;
  return [
    '## supaneon-sync restore verification',
    '',
    `Backup branch \`${backup.name}\` (\`${backup.id}\`)${run ? `, run \`${run.runId}\`` : ''}: ${verdict}. ` +
      `${report.collections} collection(s), ${report.documents} document(s), ${formatDuration(seconds)}. ` +
      `Temporary branch \`${restoreBranch?.name ?? '-'}\`${restoreBranch?.id ? ` (\`${restoreBranch.id}\`)` : ''}.`,
    '',
    markdownTable(
      ['Collection', 'Check', 'Result', 'Details'],
      checks.map((c) => [c.subject, c.check, c.status === 'pass' ? 'pass' : c.status === 'fail' ? '**FAIL**' : 'notice', c.detail]),
    ),
  ].join('\n');
}

/** 2026-06-15T12:03:04.567Z -> 20260615T120304Z */
function utcStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** RFC 3339 to the second, as Neon wants expires_at. */
function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
