// The error every route answers with: Neon's `{code, message}` body and its HTTP status.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type Log = (message: string) => void;
