/**
 * Alerts through GitHub itself: a failing backup, restore or validate opens one tracking issue per
 * mode in the workflow's repository, a further failure comments on it, and the next success
 * comments and closes it. A scheduled run that breaks at night is then visible to everyone who
 * watches the repository, with no service beyond GitHub.
 *
 * Sending an alert never changes the run's result: any problem (no permission, API down) becomes a
 * warning that says how to fix it, and the original failure is reported as it was.
 */
import { getOctokit } from '@actions/github';
import type { Mode } from './config.js';
import type { GithubRunInfo } from './github-run.js';
import type { Logger } from './io.js';

/** Modes that run unattended on a schedule; recover is run by a person who watches it. */
export const ALERT_MODES: readonly Mode[] = ['backup', 'restore', 'validate'];
/** Label of the tracking issues, which the lookup filters by. */
export const ALERT_LABEL = 'supaneon-sync';
/** Each request is bounded: an alert must never hold the job until its timeout. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Lines of the failure's log quoted in the issue; the run's page has the rest. */
const MAX_DETAIL_LINES = 20;

export interface AlertRequest {
  token: string;
  mode: Mode;
  run: GithubRunInfo;
  outcome: { ok: true } | { ok: false; failure: string; details: readonly string[] };
  log: Logger;
  now?: Date;
}

/** The hidden line that marks an issue as this mode's tracking issue (titles can be edited). */
export function alertMarker(mode: Mode): string {
  return `<!-- supaneon-sync alert: ${mode} -->`;
}

function alertTitle(mode: Mode): string {
  return `supaneon-sync ${mode} is failing`;
}

function fenced(lines: readonly string[]): string {
  // A fence longer than any run of backticks inside, so the text cannot close it early.
  const longest = Math.max(2, ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((m) => m.length))));
  const fence = '`'.repeat(longest + 1);
  return [`${fence}text`, ...lines, fence].join('\n');
}

function failureBody(req: AlertRequest & { outcome: { ok: false } }): string {
  const { mode, run, outcome } = req;
  const when = (req.now ?? new Date()).toISOString();
  const details = outcome.details.slice(0, MAX_DETAIL_LINES);
  const cut = outcome.details.length - details.length;
  return [
    alertMarker(mode),
    `**supaneon-sync ${mode} failed** in [run ${run.runId}](${run.runUrl}) at ${when} (commit \`${run.sha.slice(0, 12) || 'unknown'}\`).`,
    '',
    fenced([outcome.failure]),
    ...(details.length > 0
      ? ['', 'Errors reported by the run:', '', fenced(details), ...(cut > 0 ? [`(${cut} more in the run's log)`] : [])]
      : []),
    '',
    `This issue stays open while ${mode} keeps failing: each further failure adds a comment, and the next successful ${mode} comments and closes it.`,
  ].join('\n');
}

function recoveryBody(req: AlertRequest): string {
  return `supaneon-sync ${req.mode} succeeded again in [run ${req.run.runId}](${req.run.runUrl}) at ${(req.now ?? new Date()).toISOString()}; closing.`;
}

/** Opens, comments on or closes this mode's tracking issue. Never throws: problems are warnings. */
export async function sendAlert(req: AlertRequest): Promise<void> {
  const { owner, repo } = req.run;
  const octokit = getOctokit(req.token, { baseUrl: req.run.apiUrl });
  const request = () => ({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  let step = 'look for the open tracking issue';
  try {
    const open = await octokit.rest.issues.listForRepo({
      owner,
      repo,
      state: 'open',
      labels: ALERT_LABEL,
      per_page: 100,
      request: request(),
    });
    const marker = alertMarker(req.mode);
    const tracking = open.data.find((i) => !i.pull_request && (i.body ?? '').includes(marker));

    if (!req.outcome.ok) {
      const body = failureBody({ ...req, outcome: req.outcome });
      if (tracking) {
        step = `comment on tracking issue #${tracking.number}`;
        await octokit.rest.issues.createComment({ owner, repo, issue_number: tracking.number, body, request: request() });
        req.log.info(`alert: added the failure to tracking issue #${tracking.number} (${tracking.html_url})`);
      } else {
        step = 'open a tracking issue';
        const created = await octokit.rest.issues.create({
          owner,
          repo,
          title: alertTitle(req.mode),
          body,
          labels: [ALERT_LABEL],
          request: request(),
        });
        req.log.info(`alert: opened tracking issue #${created.data.number} (${created.data.html_url})`);
      }
      return;
    }
    if (!tracking) return; // nothing was failing: a success says nothing
    step = `close tracking issue #${tracking.number}`;
    await octokit.rest.issues.createComment({ owner, repo, issue_number: tracking.number, body: recoveryBody(req), request: request() });
    await octokit.rest.issues.update({
      owner,
      repo,
      issue_number: tracking.number,
      state: 'closed',
      state_reason: 'completed',
      request: request(),
    });
    req.log.info(`alert: ${req.mode} succeeded again; closed tracking issue #${tracking.number}`);
  } catch (error) {
    req.log.warn(
      `alert: could not ${step} in ${owner}/${repo} at ${req.run.apiUrl}: ${describeFailure(error)}; the run's own result stands`,
    );
  }
}

function describeFailure(error: unknown): string {
  const { status, response } = error as { status?: unknown; response?: unknown };
  const message = error instanceof Error ? error.message.split('\n', 1)[0] : String(error);
  // Octokit reports a request that got no answer at all (refused, reset, timed out) as status 500
  // without a response: that is the network, not GitHub.
  if (response === undefined) return `${message}: check that this runner can reach GITHUB_API_URL`;
  if (status === 401) return `the token was refused (HTTP 401): pass github-token: \${{ github.token }} or a valid token from a secret`;
  if (status === 403 || status === 404) {
    return `HTTP ${status} (${message}): give the job 'permissions: issues: write' and pass github-token: \${{ github.token }}; issues must be enabled in the repository`;
  }
  return `HTTP ${String(status)} (${message})`;
}
