// docs/INPUTS.md (embedded in the README) must list exactly the inputs and outputs of action.yml,
// and every output a mode sets must be declared there.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { embedInReadme, renderInputsDoc } from '../../scripts/inputs-doc.js';
import { repoRoot } from '../../devkit/stack.js';

const actionText = readFileSync(path.join(repoRoot, 'action.yml'), 'utf8');
const action = parse(actionText) as { inputs: Record<string, unknown>; outputs: Record<string, unknown> };
const doc = readFileSync(path.join(repoRoot, 'docs', 'INPUTS.md'), 'utf8');

/** First-column names of the table under a `## heading`. */
function tableNames(markdown: string, heading: string): string[] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith(`${heading}\n`)) ?? '';
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => /^\| `([^`]+)`/.exec(l)?.[1] ?? '');
}

test('the inputs table lists exactly the inputs of action.yml, in order', () => {
  expect(tableNames(doc, 'Inputs')).toEqual(Object.keys(action.inputs));
});

test('the outputs table lists exactly the outputs of action.yml, in order', () => {
  expect(tableNames(doc, 'Outputs')).toEqual(Object.keys(action.outputs));
});

test('docs/INPUTS.md is what `npm run docs:inputs` writes from action.yml', () => {
  expect(doc).toBe(renderInputsDoc(actionText));
});

test('every output a mode sets is declared in action.yml', () => {
  const modesDir = path.join(repoRoot, 'src', 'modes');
  const set = new Set<string>();
  for (const file of readdirSync(modesDir).filter((f) => f.endsWith('.ts'))) {
    for (const m of readFileSync(path.join(modesDir, file), 'utf8').matchAll(/setOutput\(\s*'([^']+)'/g)) set.add(m[1]);
  }
  expect(set.size).toBeGreaterThan(0);
  expect([...set].filter((name) => !(name in action.outputs))).toEqual([]);
});

test('action.yml: node24 entry points that exist, branding, a description and a default for every optional input', () => {
  const full = parse(actionText) as {
    name: string;
    description: string;
    branding: { icon: string; color: string };
    runs: { using: string; main: string; post: string };
    inputs: Record<string, { description?: string; required?: boolean; default?: string }>;
    outputs: Record<string, { description?: string }>;
  };
  expect(full.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/post/index.js' });
  expect(full.branding).toEqual({ icon: 'database', color: 'green' });
  expect(full.description.length).toBeLessThanOrEqual(125); // the Marketplace's limit
  for (const [name, spec] of Object.entries(full.inputs)) {
    expect({ name, described: Boolean(spec.description) }).toEqual({ name, described: true });
    if (!spec.required) expect({ name, hasDefault: typeof spec.default }).toEqual({ name, hasDefault: 'string' });
  }
  // getBooleanInput-style inputs need a real default: the toolkit refuses an empty boolean.
  for (const name of ['compare-source', 'keep-restore-branch', 'drop-target']) expect(full.inputs[name].default).toBe('false');
  for (const [name, spec] of Object.entries(full.outputs))
    expect({ name, described: Boolean(spec.description) }).toEqual({ name, described: true });
});

// The README embeds the tables between `<!-- inputs:start -->` and `<!-- inputs:end -->`.
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const embedded = /<!-- inputs:start -->([\s\S]*?)<!-- inputs:end -->/.exec(readme)?.[1].trim() ?? '';
(embedded ? test : test.skip)(
  embedded
    ? 'the README embeds the same inputs and outputs'
    : 'the README embeds the same inputs and outputs (skipped: nothing between its inputs:start/inputs:end markers yet)',
  () => {
    const section = `\n${embedded}`.replace(/^#{2,4} /gm, '## ');
    expect(tableNames(section, 'Inputs')).toEqual(Object.keys(action.inputs));
    expect(tableNames(section, 'Outputs')).toEqual(Object.keys(action.outputs));
  },
);

test('embedInReadme replaces only what lies between the markers, one heading level down', () => {
  const out = embedInReadme('# T\n\n<!-- inputs:start -->\nSTALE_TABLES\n<!-- inputs:end -->\n\n## After\n', doc);
  expect(out.startsWith('# T\n\n<!-- inputs:start -->\n### Inputs\n')).toBe(true);
  expect(out.endsWith('<!-- inputs:end -->\n\n## After\n')).toBe(true);
  expect(out).not.toContain('STALE_TABLES');
  const section = /<!-- inputs:start -->([\s\S]*?)<!-- inputs:end -->/.exec(out)?.[1] ?? '';
  expect(tableNames(section.replace(/^### /gm, '## '), 'Inputs')).toEqual(Object.keys(action.inputs));
});

test('action.yml holds no ${{ }} expression: the runner evaluates them even in descriptions and refuses to load the action', () => {
  expect(actionText.split('\n').filter((line) => line.includes('${{'))).toEqual([]);
});
