/**
 * The action's post step (runs after the job, `post-if: always()`): cleans up only what the main
 * step recorded in its state. This version's modes record nothing that outlives the main step.
 */
import * as core from '@actions/core';

core.info(`supaneon-sync post: nothing to clean up (mode ${core.getInput('mode') || 'unset'} recorded no temporary branches)`);
