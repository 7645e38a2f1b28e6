/**
 * The action's main step: read every input through the toolkit, run the mode, report failure.
 * Everything the action writes goes through the redacting Io built here.
 */
import * as core from '@actions/core';
import { INPUT_NAMES, type RawInputs } from './config.js';
import type { Io } from './io.js';
import { guardCrashes, runFromInputs } from './run.js';

/** The Io of a GitHub Actions step: log commands, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_STATE. */
export function actionIo(): Io {
  return {
    log: {
      info: (m) => core.info(m),
      warn: (m) => core.warning(m),
      error: (m) => core.error(m),
      debug: (m) => core.debug(m),
      group: (name, fn) => core.group(name, fn),
    },
    setOutput: (name, value) => core.setOutput(name, value),
    appendSummary: async (markdown) => {
      // Outside GitHub (a local `node dist/index.js`) there may be no summary file: the log has it all.
      if (!process.env.GITHUB_STEP_SUMMARY) {
        core.debug('GITHUB_STEP_SUMMARY is not set: job summary not written');
        return;
      }
      await core.summary.addRaw(markdown, true).write();
    },
    saveState: (name, value) => core.saveState(name, value),
  };
}

export function readInputs(): RawInputs {
  return Object.fromEntries(INPUT_NAMES.map((name) => [name, core.getInput(name)]));
}

export async function run(): Promise<void> {
  guardCrashes((line) => core.setFailed(line));
  const result = await runFromInputs(readInputs(), process.env, actionIo(), (secret) => core.setSecret(secret));
  if (!result.ok) core.setFailed(result.failure ?? 'supaneon-sync failed');
}
