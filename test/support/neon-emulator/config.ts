// The emulator's settings, read once from the environment that scripts/stack/up.sh sets.
import path from 'node:path';

export interface EmulatorConfig {
  readonly port: number;
  readonly apiKey: string;
  readonly projectId: string;
  readonly stateDir: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly caCert: string;
  readonly pgPort: number;
  readonly pgBinDir: string;
  /** OS user that owns and runs the clusters when the emulator runs as root; '' = the current user. */
  readonly pgUser: string;
  readonly role: string;
  readonly rolePassword: string;
  readonly database: string;
  readonly operationDelayMs: number;
  readonly branchLimit: number;
}

export function readConfig(env: NodeJS.ProcessEnv): EmulatorConfig {
  const problems: string[] = [];
  const text = (name: string, fallback?: string): string => {
    const value = env[name] ?? fallback;
    if (value === undefined || value === '') {
      problems.push(`${name} is not set`);
      return '';
    }
    return value;
  };
  const int = (name: string, fallback?: number): number => {
    const raw = env[name];
    if ((raw === undefined || raw === '') && fallback !== undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) {
      problems.push(`${name} must be a non-negative integer (got ${raw === undefined ? 'nothing' : JSON.stringify(raw)})`);
    }
    return value;
  };
  const absolute = (name: string): string => {
    const value = text(name);
    if (value !== '' && !path.isAbsolute(value)) problems.push(`${name} must be an absolute path (got ${value})`);
    return value;
  };

  const config: EmulatorConfig = {
    port: int('EMULATOR_PORT'),
    apiKey: text('EMULATOR_API_KEY'),
    projectId: text('EMULATOR_PROJECT_ID'),
    stateDir: absolute('EMULATOR_STATE_DIR'),
    tlsCert: absolute('EMULATOR_TLS_CERT'),
    tlsKey: absolute('EMULATOR_TLS_KEY'),
    caCert: absolute('EMULATOR_CA_CERT'),
    pgPort: int('EMULATOR_PG_PORT'),
    pgBinDir: absolute('EMULATOR_PG_BINDIR'),
    pgUser: env.EMULATOR_PG_USER ?? '',
    role: text('EMULATOR_ROLE', 'neondb_owner'),
    rolePassword: text('EMULATOR_ROLE_PASSWORD'),
    database: text('EMULATOR_DATABASE', 'neondb'),
    operationDelayMs: int('EMULATOR_OPERATION_DELAY_MS', 200),
    branchLimit: int('EMULATOR_BRANCH_LIMIT', 10),
  };
  if (config.branchLimit < 1) problems.push('EMULATOR_BRANCH_LIMIT must be at least 1 (the default branch counts)');
  if (problems.length > 0) {
    throw new Error(`neon emulator: invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return config;
}
