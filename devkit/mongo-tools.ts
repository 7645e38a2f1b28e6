// The MongoDB Database Tools (mongodump, mongorestore) for tests that prove the dump format against
// the real thing. Taken from SUPANEON_MONGO_TOOLS_DIR, else from PATH, else built and cached by
// scripts/stack/mongo-tools.sh. When none of these gives them, tests report themselves skipped with
// the reason, never passed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './stack.js';

export type MongoTools = { mongodump: string; mongorestore: string } | { missing: string };

let found: MongoTools | undefined;

function runs(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

function inDir(dir: string): MongoTools | undefined {
  const mongodump = path.join(dir, 'mongodump');
  const mongorestore = path.join(dir, 'mongorestore');
  return existsSync(mongodump) && existsSync(mongorestore) && runs(mongodump) && runs(mongorestore)
    ? { mongodump, mongorestore }
    : undefined;
}

/** Finds (or builds, once per machine) mongodump and mongorestore; synchronous so a test file can decide to skip at load time. */
export function mongoTools(): MongoTools {
  if (found) return found;
  const fromEnv = process.env.SUPANEON_MONGO_TOOLS_DIR;
  if (fromEnv) {
    found = inDir(fromEnv) ?? { missing: `SUPANEON_MONGO_TOOLS_DIR=${fromEnv} holds no runnable mongodump and mongorestore` };
    return found;
  }
  const onPath = spawnSync('bash', ['-c', 'command -v mongodump'], { encoding: 'utf8' }).stdout.trim();
  const pathTools = onPath ? inDir(path.dirname(onPath)) : undefined;
  if (pathTools) return (found = pathTools);
  const script = path.join(repoRoot, 'scripts', 'stack', 'mongo-tools.sh');
  const built = spawnSync('bash', [script], { encoding: 'utf8', timeout: 600_000 });
  const dir = built.stdout.trim().split('\n').pop() ?? '';
  const tools = built.status === 0 && dir ? inDir(dir) : undefined;
  if (tools) return (found = tools);
  const why = (built.stderr ?? '').trim().split('\n').filter(Boolean).pop() ?? `exit ${built.status ?? built.signal}`;
  found = { missing: `mongodump/mongorestore unavailable: ${why.replace(/^stack: error: /, '')}` };
  return found;
}
