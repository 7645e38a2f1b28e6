/**
 * Mode name -> the function that runs it. Every mode has the same shape, so the action and the CLI
 * dispatch the same way.
 */
import type { Config, Mode } from '../config.js';
import type { Io } from '../io.js';
import { backup } from './backup.js';
import { recover } from './recover.js';
import { validate } from './validate.js';

export type ModeRunner = (config: Config, io: Io) => Promise<boolean>;

export const MODE_RUNNERS: Readonly<Partial<Record<Mode, ModeRunner>>> = {
  validate,
  backup,
  recover,
};

export async function dispatch(config: Config, io: Io): Promise<boolean> {
  const runner = MODE_RUNNERS[config.mode];
  if (!runner) throw new Error(`mode ${config.mode} is not available in this version of supaneon-sync: use one of ${Object.keys(MODE_RUNNERS).join(', ')}`);
  return runner(config, io);
}
