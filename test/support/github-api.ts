// A stand-in for the part of GitHub's REST API that alerts use, over real HTTP on 127.0.0.1:
// listing a repository's open issues by label, opening an issue, commenting, and closing. It
// checks the token like GitHub does (`authorization: token <t>`) and records every request, so a
// test sees exactly what the product sent. `failWith` makes every call answer that HTTP status.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInIssue {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  stateReason: string | null;
  labels: string[];
  comments: string[];
  /** Listed like GitHub lists pull requests among issues. */
  pullRequest?: boolean;
}

export interface GithubStandIn {
  /** What GITHUB_API_URL is set to. */
  apiUrl: string;
  issues: StandInIssue[];
  requests: { method: string; path: string; authorization: string | undefined; body: unknown }[];
  failWith: number | undefined;
  close(): Promise<void>;
}

export async function startGithubStandIn(opts: { repository: string; token: string }): Promise<GithubStandIn> {
  const state: GithubStandIn = { apiUrl: '', issues: [], requests: [], failWith: undefined, close: async () => undefined };
  const htmlUrl = (n: number) => `https://github.example/${opts.repository}/issues/${n}`;
  const view = (i: StandInIssue) => ({
    id: i.number * 1000,
    number: i.number,
    title: i.title,
    body: i.body,
    state: i.state,
    html_url: htmlUrl(i.number),
    labels: i.labels.map((name) => ({ name })),
    ...(i.pullRequest ? { pull_request: { url: `${state.apiUrl}/repos/${opts.repository}/pulls/${i.number}` } } : {}),
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    const url = new URL(req.url ?? '/', 'http://stand-in');
    state.requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, authorization: req.headers.authorization, body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(payload));
    };
    if (state.failWith !== undefined)
      return send(state.failWith, { message: 'Resource not accessible by integration', status: String(state.failWith) });
    if (req.headers.authorization !== `token ${opts.token}`) return send(401, { message: 'Bad credentials', status: '401' });

    const base = `/repos/${opts.repository}/issues`;
    const find = (n: string) => state.issues.find((i) => i.number === Number(n));
    const m = new RegExp(`^${base}(?:/(\\d+)(/comments)?)?$`).exec(url.pathname);
    if (!m) return send(404, { message: 'Not Found', status: '404' });
    const [, number, comments] = m;
    if (req.method === 'GET' && !number) {
      const wantState = url.searchParams.get('state') ?? 'open';
      const label = url.searchParams.get('labels');
      const list = state.issues.filter((i) => (wantState === 'all' || i.state === wantState) && (!label || i.labels.includes(label)));
      return send(200, list.map(view));
    }
    if (req.method === 'POST' && !number) {
      const issue: StandInIssue = {
        number: state.issues.length + 1,
        title: String(body?.title),
        body: String(body?.body ?? ''),
        state: 'open',
        stateReason: null,
        labels: ((body?.labels as string[] | undefined) ?? []).map(String),
        comments: [],
      };
      state.issues.push(issue);
      return send(201, view(issue));
    }
    const issue = number ? find(number) : undefined;
    if (!issue) return send(404, { message: 'Not Found', status: '404' });
    if (req.method === 'POST' && comments) {
      issue.comments.push(String(body?.body));
      return send(201, { id: issue.comments.length, body: body?.body, html_url: `${htmlUrl(issue.number)}#comment` });
    }
    if (req.method === 'PATCH' && !comments) {
      if (body?.state === 'open' || body?.state === 'closed') issue.state = body.state;
      if (typeof body?.state_reason === 'string') issue.stateReason = body.state_reason;
      return send(200, view(issue));
    }
    return send(404, { message: 'Not Found', status: '404' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
