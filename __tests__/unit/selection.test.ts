import { isSelected, isSystemDatabase, matchesPattern, validatePattern, type Selection } from '../../src/selection.js';

const all: Selection = { databases: [], include: [], exclude: [] };

describe('isSystemDatabase', () => {
  it.each(['admin', 'local', 'config'])('%s is a system database', (db) => expect(isSystemDatabase(db)).toBe(true));
  it.each(['Admin', 'shop', 'administration', 'configs'])('%s is not', (db) => expect(isSystemDatabase(db)).toBe(false));
});

describe('isSelected', () => {
  it('selects every user collection by default', () => {
    expect(isSelected('shop', 'orders', all)).toBe(true);
    expect(isSelected('shop', 'a.b', all)).toBe(true);
  });

  it('never selects system databases, even when named', () => {
    expect(isSelected('admin', 'users', all)).toBe(false);
    expect(isSelected('local', 'oplog.rs', { databases: ['local'], include: ['local.*'], exclude: [] })).toBe(false);
    expect(isSelected('config', 'chunks', all)).toBe(false);
  });

  it('never selects system.* collections', () => {
    expect(isSelected('shop', 'system.views', all)).toBe(false);
    expect(isSelected('shop', 'system.profile', { databases: [], include: ['shop.*'], exclude: [] })).toBe(false);
    expect(isSelected('shop', 'systems', all)).toBe(true);
  });

  it('restricts to the listed databases', () => {
    const s: Selection = { databases: ['shop', 'crm'], include: [], exclude: [] };
    expect(isSelected('shop', 'orders', s)).toBe(true);
    expect(isSelected('crm', 'leads', s)).toBe(true);
    expect(isSelected('shop2', 'orders', s)).toBe(false);
    expect(isSelected('Shop', 'orders', s)).toBe(false);
  });

  it('keeps only included namespaces and lets exclude win', () => {
    const s: Selection = { databases: [], include: ['shop.*', '*.audit'], exclude: ['shop.tmp_*', 'crm.audit'] };
    expect(isSelected('shop', 'orders', s)).toBe(true);
    expect(isSelected('shop', 'tmp_1', s)).toBe(false);
    expect(isSelected('hr', 'audit', s)).toBe(true);
    expect(isSelected('crm', 'audit', s)).toBe(false);
    expect(isSelected('crm', 'leads', s)).toBe(false);
  });

  it('combines databases with include and exclude', () => {
    const s: Selection = { databases: ['shop'], include: ['*.orders*'], exclude: ['*.orders_old'] };
    expect(isSelected('shop', 'orders', s)).toBe(true);
    expect(isSelected('shop', 'orders_old', s)).toBe(false);
    expect(isSelected('crm', 'orders', s)).toBe(false);
    expect(isSelected('shop', 'users', s)).toBe(false);
  });
});

describe('matchesPattern', () => {
  it('* spans dots', () => {
    expect(matchesPattern('shop.*', 'shop', 'orders.2024.q1')).toBe(true);
    expect(matchesPattern('*', 'any', 'thing')).toBe(true);
    expect(matchesPattern('sh*', 'shop', 'x')).toBe(true);
    expect(matchesPattern('shop.*', 'shopping', 'x')).toBe(false);
  });

  it('? is exactly one character, also a non-ASCII one', () => {
    expect(matchesPattern('shop.log?', 'shop', 'log1')).toBe(true);
    expect(matchesPattern('shop.log?', 'shop', 'log')).toBe(false);
    expect(matchesPattern('shop.log?', 'shop', 'log12')).toBe(false);
    expect(matchesPattern('shop.?', 'shop', '😀')).toBe(true);
  });

  it('treats regular-expression characters literally and is case-sensitive', () => {
    expect(matchesPattern('a+b.(c)|[d]', 'a+b', '(c)|[d]')).toBe(true);
    expect(matchesPattern('a+b.c', 'aab', 'c')).toBe(false);
    expect(matchesPattern('a/b-c.$x^', 'a/b-c', '$x^')).toBe(true);
    expect(matchesPattern('Shop.*', 'shop', 'x')).toBe(false);
  });

  it('\\ makes the next character literal', () => {
    expect(matchesPattern('shop.a\\*b', 'shop', 'a*b')).toBe(true);
    expect(matchesPattern('shop.a\\*b', 'shop', 'axxb')).toBe(false);
    expect(matchesPattern('shop.a\\?', 'shop', 'a?')).toBe(true);
    expect(matchesPattern('shop.a\\?', 'shop', 'ab')).toBe(false);
  });
});

describe('validatePattern', () => {
  it.each(['shop.*', '*', '*.logs', 'shop.orders', 'a?b', 'shop.a\\*b'])('accepts %j', (p) => {
    expect(validatePattern(p)).toBeUndefined();
  });

  it('refuses empty patterns, NUL, a trailing lone backslash, and patterns that cannot match', () => {
    expect(validatePattern('')).toMatch(/empty/);
    expect(validatePattern('  ')).toMatch(/empty/);
    expect(validatePattern('a.\0')).toMatch(/NUL/);
    expect(validatePattern('shop.a\\')).toMatch(/lone/);
    expect(validatePattern('shop.a\\\\')).toBeUndefined();
    expect(validatePattern('shop')).toMatch(/did you mean "shop\.\*"/);
    expect(validatePattern('shop\\*')).toMatch(/cannot match/);
    expect(validatePattern('shop\\.x')).toBeUndefined();
  });
});
