// Starts the Neon API emulator: `node --import tsx test/support/neon-emulator/main.ts`, configured
// by EMULATOR_* environment variables (see config.ts). Ready when GET /__emulator/health answers.
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import { Clusters } from './clusters.js';
import { readConfig } from './config.js';
import { Projects } from './projects.js';
import { createServer } from './server.js';

/** How often expired branches are looked for, like Neon's background deletion job. */
const SWEEP_INTERVAL_MS = 3000;

const log = (message: string): void => {
  process.stdout.write(`${new Date().toISOString()} neon-emulator: ${message}\n`);
};

async function main(): Promise<void> {
  const config = readConfig(process.env);
  fs.mkdirSync(config.stateDir, { recursive: true });
  fs.chmodSync(config.stateDir, 0o755); // the cluster user must be able to reach its directories
  const pidFile = path.join(config.stateDir, 'emulator.pid');
  const other = runningEmulator(pidFile);
  if (other !== undefined) {
    // Two emulators on one state directory would fight over the same clusters.
    throw new StartRefused(`another Neon emulator (pid ${other}) already serves ${config.stateDir}; stop it first (kill -TERM ${other})`);
  }
  fs.writeFileSync(pidFile, `${process.pid}\n`);

  const clusters = new Clusters(config);
  // Filled in as start-up proceeds; a signal can arrive at any point of it.
  const running: { server?: http.Server; sweeper?: NodeJS.Timeout; projects?: Projects } = {};
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping every cluster`);
    clearInterval(running.sweeper);
    running.server?.close();
    running.server?.closeAllConnections(); // includes calls left hanging by fault injection
    let code = 0;
    try {
      if (running.projects) await running.projects.stopAll();
      else await clusters.stopEverything();
    } catch (error) {
      log(`stopping clusters failed: ${(error as Error).message}`);
      code = 1;
    }
    fs.rmSync(pidFile, { force: true });
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const started = Date.now();
  await clusters.checkCertificate();
  const projects = await Projects.open(config, clusters, log);
  running.projects = projects;
  const server = createServer(projects, config.apiKey, log);
  // Idle keep-alive connections are closed by the client, never by us: a server that closes them
  // races a client reusing one, which then fails with "other side closed" (a POST is not replayed).
  server.keepAliveTimeout = 0;
  running.server = server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, '127.0.0.1', resolve);
  });
  running.sweeper = setInterval(() => {
    void projects.sweepExpired(log);
  }, SWEEP_INTERVAL_MS);
  const { defaultBranchId, defaultHost } = projects.stackDefault.defaultEndpoint();
  log(
    `ready in ${Date.now() - started} ms: API http://127.0.0.1:${config.port}/api/v2, the stack's project ${config.projectId}, default branch ${defaultBranchId} at ${defaultHost}:${config.pgPort}`,
  );
}

/** The pid in the pid file, if that process is alive and is a Neon emulator. */
function runningEmulator(pidFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined; // no pid file: nothing runs
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('neon-emulator') ? pid : undefined;
  } catch {
    return undefined; // that process is gone
  }
}

/** A refusal to start that must leave the running emulator's clusters alone. */
class StartRefused extends Error {}

main().catch(async (error: unknown) => {
  log(`failed to start: ${(error as Error).message}`);
  if (error instanceof StartRefused) process.exit(1);
  // Do not leave clusters running that nothing will stop.
  try {
    const config = readConfig(process.env);
    await new Clusters(config).stopEverything();
    fs.rmSync(path.join(config.stateDir, 'emulator.pid'), { force: true });
  } catch {
    // configuration itself was the problem: nothing was started
  }
  process.exit(1);
});
