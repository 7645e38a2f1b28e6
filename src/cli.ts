#!/usr/bin/env node
// Entry of the `supaneon-sync` command; the behaviour lives in command-line.ts so tests import it without running it.
import { main } from './command-line.js';

process.exitCode = await main(process.argv.slice(2));
