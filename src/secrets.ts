/**
 * Secrets: derive every form a credential can take in a message, register each with the mask
 * function (core.setSecret in the action) before anything is logged, and redact every message.
 *
 * The runner masks only the exact values it is told about, never a password parsed out of a
 * connection string or its URL-decoded form, so each derived form is registered explicitly.
 * Driver errors echo connection strings, so redact() also blanks the password of any
 * `scheme://user:password@` it finds, known or not.
 */
export type MaskFn = (value: string) => void;

const REDACTED = '***';
const known = new Set<string>();
/** The mask function of the run, kept so a secret learned mid-run (a branch's password) is masked the same way. */
let runMask: MaskFn | undefined;
// Longest first, so a URL is replaced whole rather than leaving pieces around a replaced password.
let ordered: string[] = [];

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

/** Registers a secret and all its derived forms: masked from now on and redacted by redact(). */
export function registerSecret(value: string | undefined, mask: MaskFn): void {
  runMask = mask;
  if (value === undefined || value.trim() === '') return;
  for (const form of deriveSecretForms(value)) {
    if (known.has(form)) continue;
    known.add(form);
    mask(form);
  }
  ordered = [...known].sort((a, b) => b.length - a.length);
}

// scheme://user:password@ — the password stops at '@' and never spans white space or a path.
const URL_CREDENTIALS = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s:@/?#]+):([^\s@/?#]*)@/g;

/** The message with every known secret form and every URL password replaced. */
export function redact(message: string): string {
  let out = message;
  for (const form of ordered) out = out.split(form).join(REDACTED);
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
}
