// What the release workflow relies on, checked on every change so a tag never finds it missing:
// a CHANGELOG.md section for the package's version (the release notes) and the security policy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TOOL_VERSION } from '../../src/manifest.js';
import { repoRoot } from '../../devkit/stack.js';

const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

test('CHANGELOG.md has a section for the package version, with content', () => {
  const changelog = readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8');
  const start = changelog.split('\n').findIndex((l) => l.startsWith(`## [${version}]`));
  expect(start).toBeGreaterThan(-1);
  const rest = changelog.split('\n').slice(start + 1);
  const end = rest.findIndex((l) => l.startsWith('## '));
  const notes = (end === -1 ? rest : rest.slice(0, end)).join('\n').trim();
  expect(notes.length).toBeGreaterThan(0);
});

test('the version recorded in manifests is the package version', () => {
  expect(TOOL_VERSION).toBe(version);
});

test('SECURITY.md says how to report a problem and what is promised about secrets, TLS and data', () => {
  const security = readFileSync(path.join(repoRoot, 'SECURITY.md'), 'utf8');
  expect(security).toMatch(/^## Reporting a vulnerability$/m);
  for (const heading of ['**Secrets**', '**TLS**', '**Data**']) expect(security).toContain(heading);
});
