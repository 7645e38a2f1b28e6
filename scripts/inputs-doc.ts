// Writes docs/INPUTS.md (the inputs and outputs tables) from action.yml, with which modes require
// each input taken from the configuration's own rules, and puts the same tables into README.md
// between its `<!-- inputs:start -->` and `<!-- inputs:end -->` markers. Unit tests fail when either
// differs from action.yml: run `npm run docs:inputs` after changing it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ENV_FALLBACKS, MODES, REQUIRED_BY_MODE, SECRET_INPUTS, type InputName } from '../src/config.js';
import { asMarkdown, markdownTable } from '../src/report.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const INPUTS_DOC = path.join(root, 'docs', 'INPUTS.md');

interface ActionYml {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
}

function requiredFor(name: string): string {
  if (name === 'mode') return 'yes';
  const modes = MODES.filter((m) => REQUIRED_BY_MODE[m].includes(name as InputName));
  if (modes.length === 0) return 'no';
  return modes.length === MODES.length ? 'yes' : modes.join(', ');
}

export function renderInputsDoc(actionYmlText: string): string {
  const action = parse(actionYmlText) as ActionYml;
  const inputs = Object.entries(action.inputs).map(([name, spec]) => {
    const notes = [
      SECRET_INPUTS.includes(name as InputName) ? 'Secret: pass it from `secrets.*`; masked in every log.' : undefined,
    ].filter(Boolean);
    const fallback = ENV_FALLBACKS[name as InputName];
    // action.yml's own text is Markdown written for this table, placed as it is.
    return [
      `\`${name}\``,
      requiredFor(name),
      spec.default ? `\`${spec.default}\`` : fallback ? `env \`${fallback}\`` : '',
      [spec.description, ...notes].join(' '),
    ].map(asMarkdown);
  });
  const outputs = Object.entries(action.outputs).map(([name, spec]) => [`\`${name}\``, spec.description].map(asMarkdown));
  return (
    '<!-- Generated from action.yml by `npm run docs:inputs`; do not edit by hand. -->\n\n' +
    '## Inputs\n\n' +
    'Every input is also a CLI flag (`--input-name value`). An empty input falls back to the environment ' +
    'variable shown under Default.\n\n' +
    markdownTable(['Input', 'Required', 'Default', 'Description'], inputs) +
    '\n## Outputs\n\n' +
    markdownTable(['Output', 'Description'], outputs)
  );
}

/** The README with the tables (one heading level down, under its own section) between the markers. */
export function embedInReadme(readme: string, doc: string): string {
  const tables = doc.replace(/^<!--.*-->\n\n/, '').replace(/^## /gm, '### ');
  return readme.replace(/(<!-- inputs:start -->)[\s\S]*?(<!-- inputs:end -->)/, (_m, start: string, end: string) => `${start}\n${tables}${end}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const doc = renderInputsDoc(readFileSync(path.join(root, 'action.yml'), 'utf8'));
  writeFileSync(INPUTS_DOC, doc);
  process.stdout.write(`wrote ${path.relative(root, INPUTS_DOC)}\n`);
  const readmeFile = path.join(root, 'README.md');
  const readme = readFileSync(readmeFile, 'utf8');
  const updated = embedInReadme(readme, doc);
  if (updated !== readme) {
    writeFileSync(readmeFile, updated);
    process.stdout.write('updated the inputs and outputs tables in README.md\n');
  }
}
