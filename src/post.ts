/**
 * The action's post step (runs after the job's steps, `post-if: always()`, even when the main step
 * failed or was cancelled): deletes only what the main step recorded in its state, i.e. the
 * temporary branch of a restore or recover that could not clean up after itself.
 * Importing this module runs nothing: post-index.ts (the bundle's entry) and local-action call run().
 */
import * as core from '@actions/core';
import { configFrom, effectiveInputs } from './config.js';
import { currentGithubRun } from './github-run.js';
import { inertLogText } from './log-safety.js';
import { actionIo, readInputs } from './main.js';
import { guardCrashes, secureIo } from './run.js';
import { cleanupTemporaryBranch, STATE_TEMPORARY_BRANCH_ID, STATE_TEMPORARY_BRANCH_NAME } from './temporary-branch.js';

export async function run(): Promise<void> {
  guardCrashes((line) => core.setFailed(line));
  const raw = readInputs();
  const mode = raw.mode?.trim() || 'unset';
  const state = { id: core.getState(STATE_TEMPORARY_BRANCH_ID), name: core.getState(STATE_TEMPORARY_BRANCH_NAME) };

  // Restore and recover record the temporary branch they read a backup through; other modes record nothing.
  if (!state.id && !state.name) {
    // The mode input is shown as given: made inert like every other log line that carries a value.
    core.info(inertLogText(`supaneon-sync post: nothing to clean up (mode ${mode} left no temporary branch on record)`));
    return;
  }
  const effective = effectiveInputs(raw, process.env);
  const io = secureIo(effective, actionIo(), (secret) => core.setSecret(secret));
  try {
    await cleanupTemporaryBranch(state, configFrom(effective, process.env, currentGithubRun()), io);
  } catch (error) {
    // A warning, not a failure: the branch carries an expiry and the next backup or restore sweeps
    // expired temporary branches, so the job's own result should stand.
    io.log.warn(
      `supaneon-sync post: could not delete temporary branch ${state.name || state.id}: ` +
        `${error instanceof Error ? error.message : String(error)}; it expires on its own, and the next backup or restore removes it`,
    );
  }
}
