import { spawnSync } from 'node:child_process';
import { repoRoot } from '../../devkit/stack.js';
import {
  clearSecrets,
  deriveSecretForms,
  MIN_MASK_LENGTH,
  redact,
  registerRuntimeSecret,
  registerSecret,
  userInfoOf,
} from '../../src/secrets.js';

// A password with every URL-special character, URL-encoded in the connection string.
const PASSWORD = 'p@ss:w/rd%zz?#&';
const ENCODED = encodeURIComponent(PASSWORD);
const URI = `mongodb+srv://app_user:${ENCODED}@cluster0.example.net/shop?retryWrites=true`;

afterEach(() => clearSecrets());

describe('deriveSecretForms', () => {
  test('a connection string yields the URL, the password raw and decoded, and user:password', () => {
    const forms = deriveSecretForms(URI);
    expect(forms).toEqual(expect.arrayContaining([URI, ENCODED, PASSWORD, `app_user:${ENCODED}`, `app_user:${PASSWORD}`]));
    expect(forms).not.toContain('app_user');
    expect(forms).not.toContain('cluster0.example.net');
  });

  test('a password with unescaped special characters is still found', () => {
    const forms = deriveSecretForms('postgres://owner:ab/c@d@ep-x.neon.tech/app?sslmode=require');
    expect(forms).toContain('ab/c@d');
    expect(forms).toContain('owner:ab/c@d');
  });

  test('a multi-host MongoDB URI (not a WHATWG URL) still yields its password', () => {
    expect(deriveSecretForms('mongodb://u:s3cr%2Ft@a:27017,b:27017/?replicaSet=rs0')).toEqual(
      expect.arrayContaining(['s3cr%2Ft', 's3cr/t', 'u:s3cr/t']),
    );
  });

  test('a plain key is its own only form', () => {
    expect(deriveSecretForms('napi_abc123')).toEqual(['napi_abc123']);
  });
});

describe('registerSecret', () => {
  test('masks every form once, before use', () => {
    const masked: string[] = [];
    registerSecret(URI, (v) => masked.push(v));
    registerSecret(URI, (v) => masked.push(v));
    expect(masked).toEqual(expect.arrayContaining([URI, ENCODED, PASSWORD, `app_user:${PASSWORD}`]));
    expect(new Set(masked).size).toBe(masked.length);
  });

  test('empty values are ignored; a plain key is registered as it is', () => {
    const masked: string[] = [];
    registerSecret('', (v) => masked.push(v));
    registerSecret('   ', (v) => masked.push(v));
    expect(masked).toEqual([]);
    registerSecret('napi_key_1', (v) => masked.push(v));
    expect(masked).toEqual(['napi_key_1']);
  });
});

describe('userInfoOf', () => {
  test('takes everything up to the last @ before the query', () => {
    expect(userInfoOf('mongodb://u:p@ss:w/rd@host:1/db?x=a@b')).toBe('u:p@ss:w/rd');
    expect(userInfoOf('postgres://host/db')).toBeUndefined();
    expect(userInfoOf('not a url u:p@h')).toBeUndefined();
  });
});

describe('redact', () => {
  test('replaces every registered form, whole URLs first', () => {
    registerSecret(URI, () => undefined);
    registerSecret('napi_key_1', () => undefined);
    expect(redact(`connecting to ${URI} with key napi_key_1`)).toBe('connecting to *** with key ***');
    expect(redact(`password was ${PASSWORD}.`)).toBe('password was ***.');
    expect(redact(`auth app_user:${PASSWORD} failed`)).toBe('auth *** failed');
    const out = redact(`some driver said mongodb://app_user:${ENCODED}@other-host/`);
    expect(out).not.toContain(ENCODED);
    expect(out).not.toContain(PASSWORD);
  });

  test('blanks the password of any URL with credentials, known or not', () => {
    expect(redact('failed: postgresql://someone:unknownpw@db.example.com:5432/x?sslmode=require')).toBe(
      'failed: postgresql://someone:***@db.example.com:5432/x?sslmode=require',
    );
    expect(redact('a mongodb+srv://u:p%40w@c.example.net/ and https://x:y@z/')).toBe(
      'a mongodb+srv://u:***@c.example.net/ and https://x:***@z/',
    );
  });

  test('leaves text without secrets alone', () => {
    registerSecret('napi_key_1', () => undefined);
    const text = 'MongoDB 8.0.1 at cluster0.example.net:27017, 3 collections | http://localhost:8080/api/v2';
    expect(redact(text)).toBe(text);
  });
});

describe('guardCrashes', () => {
  test('an uncaught error is reported redacted, never as Node prints it, and exits 1', () => {
    const script = `
      import { guardCrashes } from './src/run.ts';
      guardCrashes((line) => process.stderr.write('reported: ' + line + '\\n'));
      setTimeout(() => { throw new Error('driver said postgresql://owner:CrashPw1@h/db'); }, 0);
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('reported: supaneon-sync failed unexpectedly: driver said postgresql://owner:***@h/db');
    expect(result.stderr).not.toContain('CrashPw1');
  });
});

describe('secrets learned during a run', () => {
  test('a branch password is masked with the run mask, raw and URL-encoded, and redacted', () => {
    clearSecrets();
    const masked: string[] = [];
    registerSecret('postgresql://u:standby-pw@h/db', (v) => masked.push(v));
    registerRuntimeSecret('npg_fr/sh@pw');
    expect(masked).toEqual(expect.arrayContaining(['npg_fr/sh@pw', encodeURIComponent('npg_fr/sh@pw')]));
    expect(redact('password npg_fr/sh@pw and npg_fr%2Fsh%40pw')).toBe('password *** and ***');
    clearSecrets();
  });
});

describe('short secrets', () => {
  test('a one-letter password is not masked everywhere (it would rewrite ids and numbers) but still leaves connection strings', () => {
    clearSecrets();
    const masked: string[] = [];
    const tooShort = registerSecret('mongodb://leak_user:r@db.example.net/', (v) => masked.push(v));
    expect(tooShort).toBe(true);
    expect(masked).not.toContain('r');
    expect(masked.every((m) => m.length >= MIN_MASK_LENGTH)).toBe(true);
    expect(masked).toContain('leak_user:r');
    expect(redact('branch br-cold-leaf-36040892, consistency per-collection')).toBe(
      'branch br-cold-leaf-36040892, consistency per-collection',
    );
    expect(redact('failed: mongodb://other:r@h/ and :r@h')).toBe('failed: mongodb://other:***@h/ and :***@h');
    clearSecrets();
  });

  test.each([
    ['URL-encoded', 'mongodb://u:%40%3A@h/', ['%40%3A']],
    ['unicode', 'mongodb://u:%C3%BC@h/', ['ü']],
    ['a short key', 'abc', ['abc']],
  ])('%s short secret: reported as too short, its short forms never registered', (_label, value, forms) => {
    clearSecrets();
    const masked: string[] = [];
    expect(registerSecret(value, (v) => masked.push(v))).toBe(true);
    for (const f of forms) expect(masked).not.toContain(f);
    clearSecrets();
  });

  test('a password of MIN_MASK_LENGTH characters is masked and redacted everywhere', () => {
    clearSecrets();
    const masked: string[] = [];
    expect(registerSecret('mongodb://u:abcdefgh@h/', (v) => masked.push(v))).toBe(false);
    expect(masked).toContain('abcdefgh');
    expect(redact('echo abcdefgh')).toBe('echo ***');
    clearSecrets();
  });
});
