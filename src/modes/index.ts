/**
 * Mode name -> the function that runs it. Every mode has the same shape, so the action and the CLI
 * dispatch the same way.
 */
import type { Config, Mode } from '../config.js';
import type { Io } from '../io.js';
import { backup } from './backup.js';
import { recover } from './recover.js';
import { restore } from './restore.js';
import { validate } from './validate.js';

type ModeRunner = (config: Config, io: Io) => Promise<boolean>;

const MODE_RUNNERS: Readonly<Record<Mode, ModeRunner>> = {
  validate,
  backup,
  restore,
  recover,
};

export async function dispatch(config: Config, io: Io): Promise<boolean> {
  return MODE_RUNNERS[config.mode](config, io);
}
