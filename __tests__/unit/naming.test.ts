import { createHash } from 'node:crypto';
import { META_SCHEMA, quoteIdent, schemaNameFor, tableNameFor } from '../../src/naming.js';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const hash8 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 8);

describe('tableNameFor', () => {
  it.each([
    'orders',
    'a.b.c',
    'with space',
    'quote"inside',
    "single'quote",
    'dollar$',
    'Ünïcødé 日本語',
    'x'.repeat(63),
    'pg_catalog',
    'public',
  ])('keeps %j as it is', (name) => {
    expect(tableNameFor(name)).toBe(name);
  });

  it('maps a name longer than 63 bytes to a 54-byte prefix + ~ + 8 hex of sha256', () => {
    const name = 'events.' + 'x'.repeat(200);
    const table = tableNameFor(name);
    expect(table).toBe(name.slice(0, 54) + '~' + hash8(name));
    expect(bytes(table)).toBe(63);
  });

  it('keeps distinct long names with a common prefix distinct', () => {
    const base = 'a'.repeat(100);
    const names = Array.from({ length: 2000 }, (_, i) => `${base}.${i}`);
    const tables = new Set(names.map(tableNameFor));
    expect(tables.size).toBe(names.length);
    for (const t of tables) expect(bytes(t)).toBeLessThanOrEqual(63);
  });

  it('never cuts a multi-byte character in half', () => {
    for (const ch of ['é', '日', '😀']) {
      for (let pad = 0; pad < 4; pad++) {
        const name = 'p'.repeat(pad) + ch.repeat(60);
        const table = tableNameFor(name);
        expect(bytes(table)).toBeLessThanOrEqual(63);
        const prefix = table.slice(0, -9);
        expect(name.startsWith(prefix)).toBe(true);
        expect(prefix).not.toContain('\uFFFD');
        // the prefix is the longest whole-character prefix within 54 bytes
        expect(bytes(prefix)).toBeGreaterThan(54 - bytes(ch));
        expect(bytes(prefix)).toBeLessThanOrEqual(54);
      }
    }
  });

  it("maps a name that itself looks mapped, so it cannot equal another name's mapping", () => {
    const long = 'z'.repeat(80);
    const lookalike = tableNameFor(long); // 'zzz…~hhhhhhhh', 63 bytes
    expect(tableNameFor(lookalike)).not.toBe(lookalike);
    expect(tableNameFor(lookalike)).not.toBe(tableNameFor(long));
    expect(tableNameFor('orders~0123abcd')).toBe('orders~0123abcd~' + hash8('orders~0123abcd'));
    expect(tableNameFor('orders~0123ABCD')).toBe('orders~0123ABCD'); // not the mapped form (upper case)
  });

  it('is deterministic', () => {
    const name = 'n'.repeat(300);
    expect(tableNameFor(name)).toBe(tableNameFor(name));
  });

  it('rejects names MongoDB cannot have', () => {
    expect(() => tableNameFor('')).toThrow(/empty/);
    expect(() => tableNameFor('a\0b')).toThrow(/NUL/);
  });
});

describe('schemaNameFor', () => {
  it('keeps ordinary database names', () => {
    expect(schemaNameFor('shop')).toBe('shop');
    expect(schemaNameFor('Shop-EU_2')).toBe('Shop-EU_2');
    expect(schemaNameFor('données')).toBe('données');
  });

  it.each([
    'pg_catalog',
    'pg_toast',
    'pg_anything',
    'PG_Data',
    'information_schema',
    'Information_Schema',
    'public',
    'PUBLIC',
    META_SCHEMA,
    'SupaNeon_Sync',
  ])('maps reserved name %j away from itself', (name) => {
    const schema = schemaNameFor(name);
    expect(schema).toBe(`_${name}~${hash8(name)}`);
    expect(schema.toLowerCase().startsWith('pg_')).toBe(false);
  });

  it('gives reserved look-alikes distinct schemas', () => {
    const names = ['public', 'Public', 'PUBLIC', 'pg_a', 'pg_A', 'supaneon_sync', 'SUPANEON_SYNC'];
    expect(new Set(names.map(schemaNameFor)).size).toBe(names.length);
  });

  it('never returns a reserved schema name for any input', () => {
    const inputs = ['pg_', 'pg_x'.repeat(30), 'Pg_' + 'é'.repeat(40), 'public', 'information_schema', META_SCHEMA, 'a'.repeat(64)];
    for (const input of inputs) {
      const schema = schemaNameFor(input);
      expect(bytes(schema)).toBeLessThanOrEqual(63);
      expect([META_SCHEMA, 'public', 'information_schema']).not.toContain(schema.toLowerCase());
      expect(schema.toLowerCase().startsWith('pg_')).toBe(false);
      expect(schema).toMatch(/~[0-9a-f]{8}$/);
    }
  });

  it('maps long database names like long collection names', () => {
    const name = 'd'.repeat(64);
    expect(schemaNameFor(name)).toBe('d'.repeat(54) + '~' + hash8(name));
  });
});

describe('quoteIdent', () => {
  it('wraps in double quotes and doubles inner quotes', () => {
    expect(quoteIdent('orders')).toBe('"orders"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('""')).toBe('""""""');
    expect(quoteIdent("it's")).toBe('"it\'s"');
    expect(quoteIdent('a.b; DROP TABLE x; --')).toBe('"a.b; DROP TABLE x; --"');
  });

  it('rejects identifiers PostgreSQL cannot have', () => {
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(() => quoteIdent('a\0')).toThrow(/NUL/);
  });
});
