// Test files that need the local stack (devkit/stack.ts brings it up; jest's global setup puts its
// settings into the environment). See docs/LOCAL-STACK.md.

// For test files that need the running stack: the named settings from the environment (global
// setup put them there), or `describe.skip` with the reason in its title when any is missing, so
// a run without the stack reports those tests as skipped, never as passed.
export function describeWithStack(title: string, names: readonly string[], body: (env: Record<string, string>) => void): void {
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    const why = process.env.SUPANEON_SKIP_STACK === '1' ? 'SUPANEON_SKIP_STACK=1' : `${missing.join(', ')} not set`;
    describe.skip(`${title} (skipped: needs the local stack; ${why})`, () => {
      test('needs the local stack', () => undefined);
    });
    return;
  }
  const env = Object.fromEntries(names.map((name) => [name, process.env[name] as string]));
  describe(title, () => body(env));
}
