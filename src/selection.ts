// Which MongoDB collections a run covers.
//
// Rules, in order:
// 1. System databases (admin, local, config) are never backed up or recovered, even when named in
//    `databases`: they hold the deployment's users, oplog and sharding state, which belong to the
//    deployment, not to the application's data. Collections named `system.*` are always skipped
//    for the same reason (views' definitions are recorded from listCollections instead).
// 2. `databases`, when not empty, restricts to exactly those database names.
// 3. `include`, when not empty, keeps only namespaces `db.collection` matching one of its patterns.
// 4. `exclude` removes namespaces matching any of its patterns; exclude wins over include.
//
// Patterns are globs over the whole namespace `db.collection`, case-sensitive like MongoDB names:
// `*` matches any run of characters, dots included (`shop.*` is every collection of `shop`, also
// `shop.orders.2024`; `*.logs` is `logs` in every database), `?` matches exactly one character,
// and `\` makes the next character literal (`shop.a\*b`).

export interface Selection {
  databases: readonly string[];
  include: readonly string[];
  exclude: readonly string[];
}

const SYSTEM_DATABASES = new Set(['admin', 'local', 'config']);

export function isSystemDatabase(db: string): boolean {
  return SYSTEM_DATABASES.has(db);
}

/**
 * Why `pattern` cannot be used, or undefined when it is fine. A pattern that cannot match any
 * `db.collection` (no `.`, `*` or `?`) is refused, since it most likely misses `.*`.
 */
export function validatePattern(pattern: string): string | undefined {
  if (pattern.trim() === '') return 'pattern is empty';
  if (pattern.includes('\0')) return `pattern ${JSON.stringify(pattern)} contains a NUL character`;
  if (/(^|[^\\])(\\\\)*\\$/.test(pattern))
    return `pattern ${JSON.stringify(pattern)} ends with a lone "\\"; write "\\\\" for a literal backslash`;
  // An escaped `*` or `?` is a literal character; an escaped `.` is still the namespace's dot.
  if (!/[.*?]/.test(pattern.replace(/\\(.)/gsu, (_, c: string) => (c === '.' ? '.' : 'x')))) {
    return `pattern ${JSON.stringify(pattern)} cannot match any "database.collection" name; did you mean "${pattern}.*"?`;
  }
  return undefined;
}

const compiled = new Map<string, RegExp>();

function globRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    let source = '';
    const chars = [...pattern]; // whole code points, so `?` is one character, not one UTF-16 unit
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i];
      if (c === '\\' && i + 1 < chars.length) source += escapeRegExp(chars[++i]);
      else if (c === '*') source += '.*';
      else if (c === '?') source += '.';
      else source += escapeRegExp(c);
    }
    re = new RegExp(`^${source}$`, 'su');
    compiled.set(pattern, re);
  }
  return re;
}

function escapeRegExp(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/** Whether namespace `db.collection` matches glob `pattern` (see the rules above). */
export function matchesPattern(pattern: string, db: string, collection: string): boolean {
  return globRegExp(pattern).test(`${db}.${collection}`);
}

export function isSelected(db: string, collection: string, s: Selection): boolean {
  if (isSystemDatabase(db) || collection.startsWith('system.')) return false;
  if (s.databases.length > 0 && !s.databases.includes(db)) return false;
  if (s.include.length > 0 && !s.include.some((p) => matchesPattern(p, db, collection))) return false;
  return !s.exclude.some((p) => matchesPattern(p, db, collection));
}
