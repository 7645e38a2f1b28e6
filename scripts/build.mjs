// Builds the committed bundles with ncc: the action's main and post steps and the CLI.
// ESM output (the package is "type": "module"; @actions/core 3 is ESM-only), no minification and
// no source maps, so dist/ stays readable and a rebuild of the same tree is byte-identical.
import ncc from '@vercel/ncc';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Optional add-ons that mongodb and pg load lazily inside try/catch. They are left out on purpose:
// without them the drivers use plain TCP/TLS with SCRAM and no wire compression, which is all this
// product uses, and the bundle stays free of native code that would tie it to one platform.
const OPTIONAL_ADDONS = [
  'kerberos',
  'snappy',
  '@mongodb-js/zstd',
  'mongodb-client-encryption',
  '@aws-sdk/credential-providers',
  'gcp-metadata',
  'socks',
  'aws4',
  'pg-native',
];

const ENTRIES = [
  { input: 'index.js', output: 'dist/index.js' },
  { input: 'post-index.js', output: 'dist/post/index.js' },
  { input: 'cli.js', output: 'dist/cli/index.js', executable: true },
];

// src/ is transpiled to ES modules first and ncc bundles the JavaScript. ncc's own TypeScript
// step either type-checks the whole project (any test file's type error breaks the bundle) or,
// in transpile-only mode, emits CommonJS for NodeNext sources, which the ESM-only toolkit refuses.
// The staging directory sits inside node_modules so package resolution works and git ignores it.
const staging = path.join(root, 'node_modules', '.cache', 'supaneon-sync-build');

async function transpileSources(dir, out) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const from = path.join(dir, entry.name);
    const to = path.join(out, entry.name);
    if (entry.isDirectory()) {
      await transpileSources(from, to);
    } else if (entry.name.endsWith('.ts')) {
      const { outputText } = ts.transpileModule(await readFile(from, 'utf8'), {
        fileName: from,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          esModuleInterop: true,
          verbatimModuleSyntax: false,
        },
      });
      await mkdir(out, { recursive: true });
      await writeFile(to.replace(/\.ts$/, '.js'), outputText);
    }
  }
}

async function bundle(input) {
  try {
    return await ncc(path.join(staging, input), {
      externals: OPTIONAL_ADDONS,
      minify: false,
      sourceMap: false,
      // No cache: a stale cache could make two builds of the same tree differ.
      cache: false,
      quiet: true,
    });
  } catch (error) {
    // ncc's errors carry its own minified source in the stack; the message is what matters.
    process.stderr.write(`build of ${input} failed:\n${String(error?.message ?? error).slice(0, 4000)}\n`);
    process.exit(1);
  }
}

await rm(staging, { recursive: true, force: true });
await transpileSources(path.join(root, 'src'), staging);
await rm(path.join(root, 'dist'), { recursive: true, force: true });
for (const entry of ENTRIES) {
  const { code, assets } = await bundle(entry.input);
  const outFile = path.join(root, entry.output);
  const outDir = path.dirname(outFile);
  await mkdir(outDir, { recursive: true });
  const body = code.replace(/^#!.*\n/, '');
  const text = entry.executable ? `#!/usr/bin/env node\n${body}` : body;
  await writeFile(outFile, text);
  if (entry.executable) await chmod(outFile, 0o755);
  for (const [name, asset] of Object.entries(assets ?? {})) {
    const file = path.join(outDir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, asset.source);
  }
  const extra = Object.keys(assets ?? {});
  process.stdout.write(
    `built ${entry.output} (${Math.round(text.length / 1024)} KB${extra.length ? `; assets: ${extra.join(', ')}` : ''})\n`,
  );
}
