/**
 * The GitHub Actions run this process belongs to, from `@actions/github`'s context (which reads
 * GITHUB_REPOSITORY, GITHUB_RUN_ID, GITHUB_SHA, GITHUB_SERVER_URL and GITHUB_API_URL, so GitHub
 * Enterprise Server works as github.com does). Outside a workflow (the CLI in a terminal) there is
 * none.
 */
import { context } from '@actions/github';

type Context = typeof context;

export interface GithubRunInfo {
  owner: string;
  repo: string;
  /** `owner/repo` */
  repository: string;
  runId: string;
  sha: string;
  /** The web UI, e.g. https://github.com or https://ghes.example.com */
  serverUrl: string;
  /** The REST API, e.g. https://api.github.com or https://ghes.example.com/api/v3 */
  apiUrl: string;
  /** The run's page: `<server>/<owner>/<repo>/actions/runs/<id>` */
  runUrl: string;
}

/** This run, or undefined when the repository or run id is not known (not inside a workflow). */
export function currentGithubRun(
  ctx: Pick<Context, 'repo' | 'runId' | 'sha' | 'serverUrl' | 'apiUrl'> = context,
): GithubRunInfo | undefined {
  let repo: { owner: string; repo: string };
  try {
    repo = ctx.repo;
  } catch {
    return undefined; // context.repo throws without GITHUB_REPOSITORY or an event payload
  }
  if (!Number.isSafeInteger(ctx.runId) || ctx.runId <= 0) return undefined;
  const serverUrl = ctx.serverUrl.replace(/\/+$/, '');
  return {
    owner: repo.owner,
    repo: repo.repo,
    repository: `${repo.owner}/${repo.repo}`,
    runId: String(ctx.runId),
    sha: ctx.sha ?? '',
    serverUrl,
    apiUrl: ctx.apiUrl.replace(/\/+$/, ''),
    runUrl: `${serverUrl}/${repo.owner}/${repo.repo}/actions/runs/${ctx.runId}`,
  };
}
