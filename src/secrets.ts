/**
 * Secrets: derive every form a credential can take in a message, register each with the mask
 * function (core.setSecret in the action) before anything is logged, and redact every message.
 *
 * The runner masks only the exact values it is told about, never a password parsed out of a
 * connection string or its URL-decoded form, so each derived form is registered explicitly.
 * Driver errors echo connection strings, so redact() also blanks the password of any
 * `scheme://user:password@` it finds, known or not.
 *
 * Short values are the exception. GitHub's runner masks a registered value wherever it occurs, in
 * every later log line, and silently drops any job output that contains it: a one-letter password
 * `r` registered with `::add-mask::` would turn `br-cold-leaf-1` into `b***-cold-leaf-1` in the log
 * and drop the `branch-id` output the next job needs. So a form shorter than MIN_MASK_LENGTH is
 * neither registered with the runner nor replaced in free text; it is removed only where a password
 * sits in a connection string (`scheme://user:…@`, `:…@`), and the run warns once that it is too
 * short to mask safely. Longer forms (the whole URL, `user:password`, the percent-encoded form) are
 * still registered and replaced everywhere.
 */
export type MaskFn = (value: string) => void;

/** Shortest secret form that is masked everywhere; shorter ones would hit ids and numbers we print. */
export const MIN_MASK_LENGTH = 8;

const REDACTED = '***';
const known = new Set<string>();
/** The mask function of the run, kept so a secret learned mid-run (a branch's password) is masked the same way. */
let runMask: MaskFn | undefined;
// Longest first, so a URL is replaced whole rather than leaving pieces around a replaced password.
let ordered: string[] = [];
// Forms too short to mask everywhere: removed only between ':' and '@' (a URL's password).
let short: string[] = [];

/**
 * The user-info part (`user:password`) of a URL-like string, or undefined. It ends at the last '@'
 * before the query: a password with an unescaped '/' or '@' (which drivers then misparse and echo
 * in pieces) is still taken whole.
 */
export function userInfoOf(value: string): string | undefined {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value);
  if (!scheme) return undefined;
  const rest = value.slice(scheme[0].length).split('?', 1)[0] ?? '';
  const at = rest.lastIndexOf('@');
  return at === -1 ? undefined : rest.slice(0, at);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Every form of a secret value that could reach a message: the value itself and, for a
 * connection string, its password (as written, URL-decoded, re-encoded) and `user:password`.
 */
export function deriveSecretForms(value: string): string[] {
  const forms = new Set<string>();
  const add = (v: string | undefined) => {
    if (v !== undefined && v !== '') forms.add(v);
  };
  add(value);
  add(value.trim());
  const userInfo = userInfoOf(value.trim());
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    if (colon !== -1) {
      const user = userInfo.slice(0, colon);
      const password = userInfo.slice(colon + 1);
      const decoded = safeDecode(password);
      add(userInfo);
      add(`${safeDecode(user)}:${decoded}`);
      add(password);
      add(decoded);
      add(encodeURIComponent(decoded));
      add(JSON.stringify(decoded).slice(1, -1));
    }
    // The URL as Node re-serializes it (percent-encoding normalized) appears in some errors.
    try {
      add(new URL(value.trim()).href);
    } catch {
      // multi-host MongoDB URIs are not WHATWG URLs; the forms above still cover their password
    }
  }
  return [...forms];
}

/**
 * Registers a secret and all its derived forms: masked from now on and redacted by redact().
 * Returns true when some form (the value or its password) was too short to mask everywhere: the
 * caller warns once (see the top of this file).
 */
export function registerSecret(value: string | undefined, mask: MaskFn): boolean {
  runMask = mask;
  if (value === undefined || value.trim() === '') return false;
  let tooShort = false;
  for (const form of deriveSecretForms(value)) {
    if ([...form].length < MIN_MASK_LENGTH) {
      tooShort = true;
      if (!short.includes(form)) short.push(form);
      continue;
    }
    if (known.has(form)) continue;
    known.add(form);
    mask(form);
  }
  ordered = [...known].sort((a, b) => b.length - a.length);
  short.sort((a, b) => b.length - a.length);
  return tooShort;
}

// scheme://user:password@ — the password stops at '@' and never spans white space or a path.
const URL_CREDENTIALS = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s:@/?#]+):([^\s@/?#]*)@/g;

/** The message with every known secret form and every URL password replaced. */
export function redact(message: string): string {
  let out = message;
  for (const form of ordered) out = out.split(form).join(REDACTED);
  for (const form of short) out = out.split(`:${form}@`).join(`:${REDACTED}@`);
  return out.replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
}

/**
 * Registers a secret the run learned after start (a password Neon handed out for a new branch)
 * with the run's mask function, before it can reach any message. Without a run's mask (a library
 * caller), it is still redacted from every message that passes through redact().
 */
export function registerRuntimeSecret(value: string | undefined): void {
  const mask = runMask ?? (() => undefined);
  registerSecret(value, mask);
  // A password travels URL-encoded inside a connection string: that form is masked too.
  if (value !== undefined && encodeURIComponent(value) !== value) registerSecret(encodeURIComponent(value), mask);
}

/** Forgets every registered secret (a new run in the same process, e.g. between tests). */
export function clearSecrets(): void {
  known.clear();
  ordered = [];
  runMask = undefined;
  short = [];
}
