/**
 * The one seam between the product's parts and the outside world (the GitHub Actions toolkit or a
 * terminal). Parts and modes take an `Io` and never import `@actions/core` themselves, so the CLI,
 * the action and the tests drive exactly the same code.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Runs `fn` inside a collapsible log group (a plain heading in a terminal). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

export interface Io {
  log: Logger;
  /** A step output (`GITHUB_OUTPUT` in the action; printed as `name=value` by the CLI). */
  setOutput(name: string, value: string | number | boolean): void;
  /** Appends Markdown to the job summary (`GITHUB_STEP_SUMMARY`; rendered as text by the CLI). */
  appendSummary(markdown: string): Promise<void>;
  /** Saves a value the `post:` step reads back (`GITHUB_STATE`; ignored by the CLI). */
  saveState(name: string, value: string): void;
}
