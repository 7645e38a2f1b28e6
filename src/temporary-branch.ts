/**
 * The temporary read-write branch through which restore and recover read a backup. A backup branch
 * has no compute endpoint (it costs storage only), so a child with a small endpoint is made from it:
 * annotated as this tool's temporary branch (TEMPORARY_KIND), expiring after restore-ttl-minutes
 * should every cleanup fail, and deleted when the work is done. Its name is in the action state
 * before it exists and its id as soon as it does, so the post step (cleanupTemporaryBranch) can
 * delete it after a killed run.
 */
import type pg from 'pg';
import { STANDBY, type Config } from './config.js';
import type { Io } from './io.js';
import {
  BACKUP_KIND,
  TEMPORARY_KIND,
  TOOL_ANNOTATION,
  findStandby,
  neonApiFor,
  standbyNotFound,
  type BranchInfo,
  type NeonApi,
} from './neon.js';
import { roleAndDatabaseOf } from './connection-string.js';
import { freeBranchName } from './naming.js';
import { connectPostgres } from './postgres.js';
import { registerRuntimeSecret } from './secrets.js';
import { applyRetention, ensureRoomForBranches, planRetention } from './retention.js';

/**
 * Names of the values saved for the post step (`STATE_<name>` there). They live within one job,
 * whose main and post steps come from the same bundle, so they need not match older releases.
 */
export const STATE_TEMPORARY_BRANCH_NAME = 'temporary-branch-name';
export const STATE_TEMPORARY_BRANCH_ID = 'temporary-branch-id';

/** A fresh endpoint may refuse connections for a moment after its operations finish. */
const CONNECT_DEADLINE_MS = 60_000;

/** Neon refuses an expiry more than 30 days ahead; ask for a little less, as the clocks differ. */
const MAX_EXPIRY_MS = 30 * 24 * 3600_000 - 3600_000;
/** The expiry is pushed forward each time a third of restore-ttl-minutes has passed, so two renewals can fail before it bites. */
const RENEWALS_PER_TTL = 3;

/** What the work inside the temporary branch is given. */
export interface TemporaryBranch {
  branch: BranchInfo;
  host: string;
  /** The first expiry; it is pushed forward while the work runs. */
  expiresAt: string;
  /** Connected with the standby's role and database and the password Neon gave that role on this branch, TLS verified; closed afterwards. */
  client: pg.Client;
}

export interface TemporaryBranchRequest {
  backup: BranchInfo;
  /** Names the branch apart: restore `<prefix><stamp>`, recover `<prefix>recover-<stamp>`. */
  purpose: 'restore' | 'recover';
  /** Leave the branch for inspection (keep-restore-branch) instead of deleting it. */
  keep: boolean;
  /** Called as soon as the branch exists, before the connection is tried. */
  onCreated?: (branch: BranchInfo) => void;
  /** How often the expiry is pushed forward (default: a third of restore-ttl-minutes). */
  renewEveryMs?: number;
}

/**
 * The backup to read: input backup-branch (a branch id or exact name of a backup this tool made),
 * `standby` for the standby itself, else the newest backup this tool made from this standby (from
 * any standby when the standby cannot be identified).
 *
 * A branch this tool did not make (`main`, a developer's branch, a temporary branch) is refused: its
 * data is not a frozen backup, and reading it by a slip of the input would verify or recover
 * something else than the user thinks. Reading the standby is possible, but only when asked for by
 * its own value, `standby`.
 * `alternative` names one more choice the caller accepts, added to every error's advice.
 */
export async function chooseBackupBranch(neon: NeonApi, config: Config, io: Io, opts: { alternative?: string } = {}): Promise<BranchInfo> {
  const orElse = opts.alternative ? `, or ${opts.alternative}` : '';
  const wanted = config.backupBranch;
  if (wanted === STANDBY) {
    const standby = await findStandby(neon, config);
    if (!standby) throw new Error(`backup-branch is 'standby', but ${standbyNotFound(config)}`);
    io.log.info(`backup: the standby itself, "${standby.name}" (${standby.id}), as asked (backup-branch: standby)`);
    return standby;
  }
  if (wanted) {
    const branch = await neon.findBranch(wanted);
    if (!branch) {
      throw new Error(
        `backup-branch "${wanted}" matches no branch (by id or exact name) of Neon project "${config.neonProjectId}"; ` +
          `pass the backup job's branch-id or branch-name output, or leave backup-branch empty for the newest backup${orElse}`,
      );
    }
    if (branch.expiresAt) {
      throw new Error(
        `backup-branch "${wanted}" (${branch.id}) has an expiry (${branch.expiresAt}), and Neon cannot branch from an expiring branch; ` +
          `choose a backup branch made by mode backup${orElse}`,
      );
    }
    if (branch.annotations[TOOL_ANNOTATION] !== BACKUP_KIND) {
      const standby = await findStandby(neon, config).catch(() => undefined);
      const isStandby = standby?.id === branch.id;
      throw new Error(
        `backup-branch "${wanted}" is branch "${branch.name}" (${branch.id}), which ${isStandby ? 'is the standby, not a backup:' : 'was not made by supaneon-sync backup:'} ` +
          'restore and recover read only the backup branches this tool made. ' +
          `Fix: pass a backup job's branch-id or branch-name output, leave backup-branch empty for the newest backup, ` +
          `or set backup-branch: ${STANDBY} to read the standby itself${orElse}`,
      );
    }
    io.log.info(`backup: "${branch.name}" (${branch.id}), created ${branch.createdAt}`);
    return branch;
  }
  const backups = await neon.toolBranches(BACKUP_KIND);
  // Prefer this standby's backups when several standbys share the project.
  const standby = await findStandby(neon, config).catch(() => undefined);
  const mine = standby ? backups.filter((b) => b.annotations['standby-branch-id'] === standby.id) : backups;
  const newest = mine[0];
  if (!newest) {
    throw new Error(
      `Neon project "${config.neonProjectId}" has no backup branch made by supaneon-sync` +
        (standby ? ` from the standby "${standby.name}" (${standby.id})` : '') +
        `; run mode backup first, or set backup-branch${orElse}`,
    );
  }
  io.log.info(`backup: the newest, "${newest.name}" (${newest.id}), created ${newest.createdAt}`);
  return newest;
}

/**
 * Makes the temporary branch from `req.backup`, connects to it, runs `use`, and then deletes the
 * branch (or keeps it, as asked) whatever happened, including a create that failed after Neon may
 * already have made the branch.
 */
export async function withTemporaryBranch<T>(
  neon: NeonApi,
  config: Config,
  io: Io,
  req: TemporaryBranchRequest,
  use: (t: TemporaryBranch) => Promise<T>,
): Promise<T> {
  await makeRoom(neon, config, io, req.backup.annotations['standby-branch-id'] ?? req.backup.parentId ?? '');

  const prefix = `${config.restorePrefix}${req.purpose === 'restore' ? '' : `${req.purpose}-`}`;
  const name = await freeBranchName(neon, prefix);
  const ttlMs = Math.min(config.restoreTtlMinutes * 60_000, MAX_EXPIRY_MS);
  const expiresAt = expiryFrom(Date.now(), ttlMs);
  const made: MadeBranch = { name, branch: undefined, expiresAt };
  io.saveState(STATE_TEMPORARY_BRANCH_NAME, name);
  let renewal: ExpiryRenewal | undefined;
  try {
    const created = await neon.createTemporaryBranch({
      name,
      parentId: req.backup.id,
      expiresAt,
      ...roleAndDatabaseOf(config.neonDatabaseUrl),
    });
    // Masked before anything else can print it.
    registerRuntimeSecret(created.password);
    const branch = created.branch;
    made.branch = branch;
    io.saveState(STATE_TEMPORARY_BRANCH_ID, branch.id);
    req.onCreated?.(branch);
    io.log.info(`temporary branch "${name}" (${branch.id}) created from "${req.backup.name}" at ${created.host}, expires ${expiresAt}`);
    renewal = renewExpiry(neon, made, ttlMs, req.renewEveryMs ?? ttlMs / RENEWALS_PER_TTL, io);
    const endpoint = { host: created.host, endpointId: created.endpointId, password: created.password };
    const client = await connectWithPatience(config.neonDatabaseUrl, endpoint, `supaneon-sync ${req.purpose}`);
    try {
      return await use({ branch, host: created.host, expiresAt, client });
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    await renewal?.stop();
    await removeOrKeep(neon, made, req.keep, config, io);
  }
}

interface MadeBranch {
  name: string;
  branch: BranchInfo | undefined;
  /** The expiry as last set. */
  expiresAt: string;
}

interface ExpiryRenewal {
  /** Stops renewing; resolves once a renewal in flight has settled. */
  stop(): Promise<void>;
}

/**
 * Neon deletes a branch when its expiry passes, even while it is in use: a verify or recover that
 * outlives restore-ttl-minutes would lose its branch mid-way. So while the work runs, the expiry is
 * moved to now + ttl every `everyMs`. A failed renewal is a warning (the next one tries again); the
 * expiry stays the safety net for a run that dies.
 */
function renewExpiry(neon: NeonApi, made: MadeBranch, ttlMs: number, everyMs: number, io: Io): ExpiryRenewal {
  const branch = made.branch;
  if (branch === undefined) return { stop: async () => undefined };
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      inFlight = (async () => {
        const next = expiryFrom(Date.now(), ttlMs);
        try {
          await neon.setBranchExpiry(branch.id, next);
          made.expiresAt = next;
          io.log.debug(`temporary branch "${branch.name}" (${branch.id}): expiry moved to ${next}`);
        } catch (e) {
          io.log.warn(
            `could not move the expiry of temporary branch "${branch.name}" (${branch.id}): ${(e as Error).message}; ` +
              `it expires at ${made.expiresAt} unless a later attempt succeeds`,
          );
        }
        if (!stopped) schedule();
      })();
    }, everyMs);
    // A pending renewal must not keep a finished process alive.
    timer.unref();
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
  };
}

function expiryFrom(now: number, ttlMs: number): string {
  return rfc3339Seconds(new Date(now + ttlMs));
}

/** Expired temporary branches of earlier runs go first (they count against the branch limit), then one more must fit. */
async function makeRoom(neon: NeonApi, config: Config, io: Io, standbyId: string): Promise<void> {
  const sweep = planRetention({
    branches: await neon.listBranches(),
    standbyId,
    retain: config.retain,
    restoreTtlMinutes: config.restoreTtlMinutes,
    now: new Date(),
    kinds: [TEMPORARY_KIND],
  });
  if (sweep.delete.length > 0 || sweep.skipped.length > 0) await applyRetention(neon, sweep, io);
  const project = await neon.getProject();
  await ensureRoomForBranches(
    neon,
    {
      needed: 1,
      limit: project.branchLimit,
      standbyId,
      retain: config.retain,
      restoreTtlMinutes: config.restoreTtlMinutes,
      kinds: [TEMPORARY_KIND],
    },
    io,
  );
}

/**
 * The post step's cleanup: deletes the temporary branch the main step recorded (its id, else its
 * name), if it still exists. Only a branch annotated as this tool's temporary branch is ever
 * deleted here.
 */
export async function cleanupTemporaryBranch(state: { id?: string; name?: string }, config: Config, io: Io): Promise<void> {
  const id = state.id?.trim() || undefined;
  const name = state.name?.trim() || undefined;
  if (!id && !name) {
    io.log.info('supaneon-sync post: no restore branch recorded, nothing to clean up');
    return;
  }
  if (config.keepRestoreBranch) {
    io.log.info(`supaneon-sync post: keeping restore branch ${name ?? id} (keep-restore-branch: true); it expires on its own`);
    return;
  }
  const neon = neonApiFor(config, io.log);
  const branches = await neon.listBranches();
  const targets = branches.filter((b) => b.annotations[TOOL_ANNOTATION] === TEMPORARY_KIND && (id ? b.id === id : b.name === name));
  const foreign = branches.find((b) => (id ? b.id === id : b.name === name) && b.annotations[TOOL_ANNOTATION] !== TEMPORARY_KIND);
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

async function connectWithPatience(
  url: string,
  endpoint: { host: string; endpointId: string; password: string },
  applicationName: string,
): Promise<pg.Client> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (let delay = 500; ; delay = Math.min(5000, delay * 2)) {
    try {
      return await connectPostgres(url, { endpoint, applicationName });
    } catch (e) {
      if (Date.now() + delay > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function removeOrKeep(neon: NeonApi, made: MadeBranch, keep: boolean, config: Config, io: Io): Promise<void> {
  try {
    // No branch: the create failed, but Neon may have made it anyway; only this tool's temporary branch is touched.
    const targets = made.branch
      ? [made.branch]
      : (await neon.findBranchesByName(made.name)).filter((b) => b.annotations[TOOL_ANNOTATION] === TEMPORARY_KIND);
    if (targets.length === 0) return;
    if (keep) {
      for (const b of targets) io.log.info(connectHint(b, config));
    } else {
      for (const b of targets) {
        await neon.deleteBranch(b.id);
        io.log.info(`temporary branch "${b.name}" (${b.id}) deleted`);
      }
    }
    // Nothing left for the post step to do.
    io.saveState(STATE_TEMPORARY_BRANCH_ID, '');
    io.saveState(STATE_TEMPORARY_BRANCH_NAME, '');
  } catch (e) {
    io.log.warn(
      `could not delete temporary branch "${made.name}"${made.branch ? ` (${made.branch.id})` : ''}: ${(e as Error).message}. ` +
        `The action's post step tries again, and the branch expires on its own at ${made.expiresAt}.`,
    );
  }
}

function connectHint(b: BranchInfo, config: Config): string {
  const u = new URL(config.neonDatabaseUrl);
  const role = decodeURIComponent(u.username);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return (
    `keeping restore branch "${b.name}" (${b.id}) as asked (keep-restore-branch: true)` +
    `${b.expiresAt ? `; it expires at ${b.expiresAt}` : ''}. Connect with the standby's role and database: ` +
    `psql "postgresql://${role}@<endpoint host of branch ${b.id}>/${database}?sslmode=require" with that branch's own password ` +
    "(the Neon console shows it; it may differ from the standby's), or copy its connection string from the console. Delete it there when done."
  );
}

/** RFC 3339 to the second, as Neon wants expires_at. */
function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
