// Writes the inputs from the one table of inputs (src/inputs.ts): the `inputs:` block of action.yml
// (the file GitHub reads), docs/INPUTS.md (the inputs table, and the outputs table from action.yml's
// `outputs:`), and the same tables into README.md between its `<!-- inputs:start -->` and
// `<!-- inputs:end -->` markers. Unit tests fail when any of them differs from the table: run
// `npm run docs:inputs` after changing src/inputs.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import {
  actionYmlInput,
  defaultText,
  ENV_FALLBACKS,
  INPUT_NAMES,
  MODES,
  REQUIRED_BY_MODE,
  SECRET_INPUTS,
  type InputName,
} from '../src/inputs.js';
import { asMarkdown, markdownTable } from '../src/report.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const INPUTS_DOC = path.join(root, 'docs', 'INPUTS.md');
export const ACTION_YML = path.join(root, 'action.yml');

interface ActionYml {
  outputs: Record<string, { description: string }>;
}

function requiredFor(name: InputName): string {
  const modes = MODES.filter((m) => REQUIRED_BY_MODE[m].includes(name));
  if (modes.length === 0) return 'no';
  return modes.length === MODES.length ? 'yes' : modes.join(', ');
}

/** docs/INPUTS.md: the inputs from the table, the outputs from action.yml (the table holds inputs only). */
export function renderInputsDoc(actionYmlText: string): string {
  const action = parse(actionYmlText) as ActionYml;
  const inputs = INPUT_NAMES.map((name) => {
    const notes = [SECRET_INPUTS.includes(name) ? 'Secret: pass it from `secrets.*`; masked in every log.' : undefined].filter(Boolean);
    const fallback = ENV_FALLBACKS[name];
    const shown = fallback ? '' : defaultText(name);
    // The descriptions are Markdown written for this table, placed as they are.
    return [
      `\`${name}\``,
      requiredFor(name),
      shown ? `\`${shown}\`` : fallback ? `env \`${fallback}\`` : '',
      [actionYmlInput(name).description, ...notes].join(' '),
    ].map(asMarkdown);
  });
  const outputs = Object.entries(action.outputs).map(([name, spec]) => [`\`${name}\``, spec.description].map(asMarkdown));
  return (
    '<!-- Generated from src/inputs.ts and the outputs of action.yml by `npm run docs:inputs`; do not edit by hand. -->\n\n' +
    '## Inputs\n\n' +
    'Every input is also a CLI flag (`--input-name value`). An empty input falls back to the environment ' +
    'variable shown under Default.\n\n' +
    markdownTable(['Input', 'Required', 'Default', 'Description'], inputs) +
    '\n## Outputs\n\n' +
    markdownTable(['Output', 'Description'], outputs)
  );
}

/**
 * action.yml's `inputs:` block from the table, in the layout the file has always had (two-space
 * indents, double-quoted descriptions; JSON's string escapes are valid YAML).
 */
export function renderActionInputs(): string {
  const lines = ['inputs:'];
  for (const name of INPUT_NAMES) {
    const spec = actionYmlInput(name);
    lines.push(`  ${name}:`, `    description: ${JSON.stringify(spec.description)}`, `    required: ${spec.required}`);
    if (spec.default !== undefined) lines.push(`    default: ${JSON.stringify(spec.default)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** action.yml with its `inputs:` block (up to the blank line before `outputs:`) replaced. */
export function embedInActionYml(actionYmlText: string): string {
  return actionYmlText.replace(/^inputs:\n[\s\S]*?\n(?=\noutputs:)/m, renderActionInputs());
}

/** The README with the tables (one heading level down, under its own section) between the markers. */
export function embedInReadme(readme: string, doc: string): string {
  const tables = doc.replace(/^<!--.*-->\n\n/, '').replace(/^## /gm, '### ');
  return readme.replace(
    /(<!-- inputs:start -->)[\s\S]*?(<!-- inputs:end -->)/,
    (_m, start: string, end: string) => `${start}\n${tables}${end}`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const actionYml = readFileSync(ACTION_YML, 'utf8');
  const updatedActionYml = embedInActionYml(actionYml);
  if (updatedActionYml !== actionYml) {
    writeFileSync(ACTION_YML, updatedActionYml);
    process.stdout.write('updated the inputs of action.yml\n');
  }
  const doc = renderInputsDoc(updatedActionYml);
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
