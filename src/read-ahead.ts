/**
 * The read-ahead buffer between one collection's reader and the one Postgres connection of a
 * backup: COPY tuples gathered into chunks, held up to a byte bound. The reader adds tuples and
 * waits while the buffer is full; the writer takes whatever is held and COPYs it. So several
 * collections can be read at once while memory holds at most `limitBytes` (plus one tuple) per
 * collection being read, never a collection.
 */
export class ReadAhead {
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  private failure: Error | undefined;
  private room: { resolve: () => void; reject: (e: Error) => void } | undefined;
  /** The most bytes this buffer ever held at once (for tests and diagnostics). */
  peakBytes = 0;

  /**
   * @param limitBytes the reader waits while the buffer holds this much or more
   * @param chunkBytes tuples are gathered into chunks of about this size (a few large writes, not one per row)
   * @param onChange called whenever the writer may have something new to do (a chunk, the end, a failure)
   */
  constructor(
    readonly limitBytes: number,
    private readonly chunkSize: number,
    private readonly onChange: () => void,
  ) {
    if (!(chunkSize > 0 && limitBytes >= chunkSize))
      throw new Error(`read-ahead: need 0 < chunk size (${chunkSize}) <= limit (${limitBytes})`);
  }

  /** Bytes held: chunks ready for the writer and the chunk being gathered. */
  get heldBytes(): number {
    return this.chunkBytes + this.pendingBytes;
  }

  /** Whether the reader finished and everything it added has been taken. */
  get drained(): boolean {
    return this.ended && this.chunks.length === 0 && this.pending.length === 0;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Whether the writer has a chunk to take (a full one, or the last one after the end). */
  get ready(): boolean {
    return this.chunks.length > 0 || (this.ended && this.pending.length > 0);
  }

  /**
   * Whether a COPY of what is held is worth its round trip: half the bound is held, or the reader
   * finished. Each COPY costs the writer a round trip to Postgres; over a network, many small ones
   * (a chunk each, as a slow source fills them) add up to seconds that large ones avoid. The reader
   * never waits for this: it goes on until the bound.
   */
  get worthWriting(): boolean {
    return this.ready && (this.ended || this.heldBytes >= this.limitBytes / 2);
  }

  /**
   * Adds one tuple. Answers a promise only when the buffer is full: the reader must await it
   * before adding more (it rejects if the run is aborted meanwhile).
   */
  add(tuple: Buffer): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('read-ahead: tuple added after the end');
    this.pending.push(tuple);
    this.pendingBytes += tuple.length;
    if (this.heldBytes > this.peakBytes) this.peakBytes = this.heldBytes;
    if (this.pendingBytes >= this.chunkSize) {
      this.seal();
      this.onChange();
    }
    if (this.heldBytes < this.limitBytes) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.room = { resolve, reject };
    });
  }

  /** The reader read everything: what is gathered becomes the last chunk. */
  end(): void {
    if (this.failure || this.ended) return;
    this.ended = true;
    this.onChange();
  }

  /** Everything held, in order, emptying the buffer (and letting a waiting reader go on). */
  take(): Buffer[] {
    if (this.ended) this.seal();
    const out = this.chunks;
    this.chunks = [];
    this.chunkBytes = 0;
    if (this.heldBytes < this.limitBytes) {
      const room = this.room;
      this.room = undefined;
      room?.resolve();
    }
    return out;
  }

  /** Stops the reader: a waiting or later add() fails with `err`; held data is dropped. */
  abort(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.chunks = [];
    this.pending = [];
    this.chunkBytes = this.pendingBytes = 0;
    const room = this.room;
    this.room = undefined;
    room?.reject(err);
  }

  private seal(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes));
    this.chunkBytes += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
