/**
 * Neon connection strings as Neon's console hands them out, e.g.
 * `postgresql://role:pw@ep-misty-sea-a5833nbi-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require&options=endpoint%3Dep-misty-sea-a5833nbi`
 *
 * - The endpoint id is the host's first label without `-pooler` (`ep-misty-sea-a5833nbi`), or the
 *   `endpoint=` word of `options` (for clients without SNI, and for hosts that are not Neon's own
 *   names). It identifies the branch more robustly than the full host: legacy and alias hosts of
 *   the same endpoint share it.
 * - Neon's proxy refuses a connection whose `options=endpoint=<id>` names another endpoint than the
 *   host it reached ("Inconsistent project name inferred from SNI and project option"), so moving
 *   a URL to another branch's host must rewrite that word (or drop it when the new id is unknown).
 * - `-pooler` hosts are PgBouncer in transaction mode: session features (advisory locks held
 *   across statements, temporary tables, one transaction around COPY) need the direct host, which
 *   is the same name without `-pooler`.
 * - `channel_binding` (`disable` | `prefer` | `require`) is libpq's; node-postgres does not read it
 *   from the URL, so it is taken out here and enforced in postgres.ts.
 */

export type ChannelBinding = 'disable' | 'prefer' | 'require';

const CHANNEL_BINDING_VALUES: readonly ChannelBinding[] = ['disable', 'prefer', 'require'];
const POOLER_SUFFIX = '-pooler';
/** Neon endpoint ids: `ep-` then lower-case words, digits and hyphens. */
const ENDPOINT_ID = /^ep-[a-z0-9-]+$/;

/** The endpoint id a Neon URL names: `options=endpoint=…` first, else a host label shaped like one. */
export function endpointIdOf(url: URL): string | undefined {
  const fromOptions = endpointOption(url.searchParams.get('options'));
  if (fromOptions !== undefined) return fromOptions.toLowerCase();
  return endpointIdOfHost(url.hostname);
}

/** `ep-x-pooler.region.aws.neon.tech` → `ep-x`; undefined for hosts that are not Neon endpoint names (IP addresses, aliases). */
export function endpointIdOfHost(host: string): string | undefined {
  const label = directHostOf(host).split('.')[0] ?? '';
  return ENDPOINT_ID.test(label) ? label : undefined;
}

/** `ep-cool-1234-pooler.eu.aws.neon.tech` → `ep-cool-1234.eu.aws.neon.tech`, lower-cased, no trailing dot. */
export function directHostOf(host: string): string {
  const lower = host.trim().toLowerCase().replace(/\.$/, '');
  const [first = '', ...rest] = lower.split('.');
  const label = first.endsWith(POOLER_SUFFIX) ? first.slice(0, -POOLER_SUFFIX.length) : first;
  return [label, ...rest].join('.');
}

/** The `endpoint=` (or legacy `project=`) word of a libpq `options` value. */
function endpointOption(options: string | null | undefined): string | undefined {
  if (!options) return undefined;
  for (const word of splitOptions(options)) {
    const m = /^(?:endpoint|project)=(.+)$/i.exec(word);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The `options` value with its `endpoint=`/`project=` word replaced by `endpoint=<endpointId>`, or
 * removed when `endpointId` is undefined; undefined when nothing else is left.
 */
export function withEndpointOption(options: string | null | undefined, endpointId: string | undefined): string | undefined {
  const words = options ? splitOptions(options) : [];
  const had = words.some((w) => /^(?:endpoint|project)=/i.test(w));
  const kept = words.filter((w) => !/^(?:endpoint|project)=/i.test(w));
  if (had && endpointId !== undefined) kept.unshift(`endpoint=${endpointId}`);
  return kept.length > 0 ? kept.join(' ') : undefined;
}

/** libpq splits `options` on unescaped white space. */
function splitOptions(options: string): string[] {
  return options.split(/\s+/).filter((w) => w !== '');
}

/** `channel_binding` of the URL (libpq's default, `prefer`, when absent); throws naming the input on a value libpq would refuse. */
export function channelBindingOf(url: URL, input = 'neon-database-url'): ChannelBinding {
  const value = url.searchParams.get('channel_binding');
  if (value === null || value === '') return 'prefer';
  if (!(CHANNEL_BINDING_VALUES as readonly string[]).includes(value)) {
    throw new Error(`${input} has channel_binding=${value}; use require, prefer or disable (or leave it out)`);
  }
  return value as ChannelBinding;
}

/**
 * The same connection string pointed at another endpoint of the project (a branch made from the
 * standby, or the standby's direct host): host replaced, `options=endpoint` rewritten to the new
 * endpoint's id (or dropped when it is unknown), and the role's password replaced when that
 * branch has its own.
 */
export function moveToEndpoint(url: string, target: { host: string; endpointId?: string; password?: string }): string {
  const u = new URL(url);
  const wasHost = u.hostname;
  u.hostname = target.host;
  if (target.password !== undefined) u.password = encodeURIComponent(target.password);
  const options = u.searchParams.get('options');
  if (options !== null) {
    const sameEndpoint = directHostOf(wasHost) === directHostOf(target.host);
    const id = target.endpointId ?? (sameEndpoint ? endpointOption(options) : endpointIdOfHost(target.host));
    const rewritten = withEndpointOption(options, id);
    if (rewritten === undefined) u.searchParams.delete('options');
    else u.searchParams.set('options', rewritten);
  }
  return u.toString();
}

/** The role and database a connection string logs in as (URL-decoded). */
export function roleAndDatabaseOf(url: string): { role: string; database: string } {
  const u = new URL(url);
  return { role: decodeURIComponent(u.username), database: decodeURIComponent(u.pathname.replace(/^\//, '')) };
}
