/**
 * mode: restore — prove a backup restores. The runbook:
 *   0. with max-backup-age, fail before anything is made when the newest backup is too old;
 *   1. pick the backup branch (input backup-branch, else this standby's newest backup);
 *   2. sweep this tool's expired temporary branches and make sure one more branch fits;
 *   3. record the temporary branch's name in the action state (so the post step can remove it even
 *      if this step dies), create it from the backup with a small endpoint and an expiry, record
 *      its id;
 *   4. connect with the standby's role and database at the new endpoint (TLS verified) and run the
 *      checks (verify.ts), the user checks, and optionally the source comparison;
 *   5. always delete the temporary branch (unless keep-restore-branch), then report.
 * Steps 1-3 and 5 are shared with recover (temporary-branch.ts).
 */
import type { MongoClient } from 'mongodb';
import type { Config } from '../config.js';
import type { Io } from '../io.js';
import { backupFreshness } from '../freshness.js';
import { connectMongo } from '../mongo.js';
import { neonApiFor, type BranchInfo } from '../neon.js';
import { checkTable, formatDuration, logCheck, markdownText, type Check } from '../report.js';
import { chooseBackupBranch, withTemporaryBranch } from '../temporary-branch.js';
import { compareSourceCounts, runUserCheck, verifyBackup, type VerifyReport } from '../verify.js';

export async function restore(config: Config, io: Io): Promise<boolean> {
  const started = Date.now();
  const neon = neonApiFor(config, io.log);
  const finish = (verified: boolean, collections: number, documents: number) => {
    io.setOutput('verified', verified ? 'true' : 'false');
    io.setOutput('collections', collections);
    io.setOutput('documents', documents);
    io.setOutput('duration-seconds', Math.round((Date.now() - started) / 1000));
  };

  let temporaryBranch: BranchInfo | undefined;
  let backup: BranchInfo;
  let report: VerifyReport;
  let partial: VerifyReport | undefined; // what a run that fails after the data checks still reports
  const extraChecks: Check[] = [];
  try {
    // 0. A schedule that stopped leaves old backups that still restore: their age must fail the run.
    if (config.maxBackupAgeMs !== undefined && config.maxBackupAge !== undefined) {
      const fresh = await backupFreshness(neon, {
        neonDatabaseUrl: config.neonDatabaseUrl,
        maxAgeMs: config.maxBackupAgeMs,
        maxAgeText: config.maxBackupAge,
      });
      if (!fresh.ok) throw new Error(fresh.detail);
      io.log.info(`freshness: ${fresh.detail}`);
    }

    // 1. Which backup.
    backup = await chooseBackupBranch(neon, config, io);
    io.setOutput('backup-branch-id', backup.id);
    io.setOutput('backup-branch-name', backup.name);

    // 2, 3 and 5: the temporary branch, made room for, recorded, and removed (or kept) afterwards.
    const onCreated = (b: BranchInfo) => {
      temporaryBranch = b;
      io.setOutput('restore-branch-id', b.id);
    };
    report = await withTemporaryBranch(
      neon,
      config,
      io,
      { backup, purpose: 'restore', keep: config.keepRestoreBranch, onCreated },
      async ({ client }) => {
        // 4. The checks.
        const r = await verifyBackup(client, {
          runId: backup.annotations['run-id'],
          mode: config.verify,
          sampleSize: config.sampleSize,
          log: io.log,
        });
        partial = r;
        if (r.manifest?.backup.status === 'completed') {
          for (const [i, sql] of config.checks.entries()) {
            const result = await runUserCheck(client, sql, i);
            logCheck(io.log, result);
            extraChecks.push(result);
          }
          if (config.compareSource) extraChecks.push(...(await sourceComparison(config, r, io)));
        }
        return r;
      },
    );
  } catch (e) {
    finish(false, partial?.collections ?? 0, partial?.documents ?? 0);
    throw e;
  }

  const checks = [...report.checks, ...extraChecks];
  const failures = checks.filter((c) => c.status === 'fail');
  const verified = failures.length === 0;
  finish(verified, report.collections, report.documents);
  await io.appendSummary(summary(backup, temporaryBranch, checks, verified, report, (Date.now() - started) / 1000));
  if (verified) {
    io.log.info(
      `Verified: backup "${backup.name}" restores completely and exactly (${report.collections} collection(s), ${report.documents} document(s)).`,
    );
  } else {
    for (const f of failures) io.log.error(`Verification failed: ${f.subject}: ${f.check}: ${f.detail}`);
  }
  return verified;
}

async function sourceComparison(config: Config, report: VerifyReport, io: Io): Promise<Check[]> {
  if (!config.mongodbUri) {
    const r: Check = {
      subject: '(source)',
      check: 'source count',
      status: 'notice',
      detail: 'compare-source needs mongodb-uri (or MONGODB_SRV_URL)',
    };
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
    const r: Check = { subject: '(source)', check: 'source count', status: 'notice', detail: (e as Error).message };
    logCheck(io.log, r);
    return [r];
  } finally {
    await mongo?.close().catch(() => undefined);
  }
}

function summary(
  backup: BranchInfo,
  temporaryBranch: BranchInfo | undefined,
  checks: Check[],
  verified: boolean,
  report: VerifyReport,
  seconds: number,
): string {
  const verdict = verified ? '**verified**' : `**FAILED** (${checks.filter((c) => c.status === 'fail').length} check(s))`;
  const run = report.manifest?.backup;
  return [
    '## supaneon-sync restore verification',
    '',
    `Backup branch ${markdownText(backup.name)} (${markdownText(backup.id)})${run ? `, run ${markdownText(run.runId)}` : ''}: ${verdict}. ` +
      `${report.collections} collection(s), ${report.documents} document(s), ${formatDuration(seconds)}. ` +
      `Temporary branch ${markdownText(temporaryBranch?.name ?? '-')}${temporaryBranch?.id ? ` (${markdownText(temporaryBranch.id)})` : ''}.`,
    '',
    checkTable(
      [
        ['Collection', (c) => c.subject],
        ['Check', (c) => c.check],
      ],
      checks,
    ),
  ].join('\n');
}
