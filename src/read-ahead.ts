/**
 * The read-ahead buffer between one collection's reader and the one Postgres connection of a
 * backup: COPY tuples gathered into chunks, held up to a byte bound. The reader adds tuples and
 * waits while the buffer is full; the writer takes whatever is held and COPYs it. So several
 * collections can be read at once while memory holds at most `limitBytes` (plus one tuple) per
 * collection being read, never a collection.
 *
 * Tuples are written straight into chunk buffers that the writer hands back once Postgres took them
 * (recycle): every byte of a backup passes through these chunks, and fresh ones for each COPY (a
 * tuple per row, then their concatenation) live long enough while they wait to be promoted, then
 * pile up as garbage until a full collection, and their mid-sized allocations fragment the process's
 * heap. The buffers kept for reuse are bounded too (about `limitBytes` more). A tuple larger than a
 * quarter chunk gets a buffer of its own, so a pooled buffer is never larger than a chunk and a quarter.
 */
export class ReadAhead {
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** The chunk being gathered (a pooled buffer) and how much of it is filled. */
  private current: Buffer | undefined;
  private currentBytes = 0;
  /** Pooled buffers free for the next chunks, and every pooled buffer this instance made. */
  private readonly free: Buffer[] = [];
  private readonly pooled = new WeakSet<ArrayBufferLike>();
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

  /** Tuples up to this size are gathered into pooled chunks; larger ones are chunks of their own. */
  private get largestPooledTuple(): number {
    return Math.floor(this.chunkSize / 4);
  }

  /** A pooled buffer's size: a chunk, plus room for one more pooled tuple started just below it. */
  private get pooledBytes(): number {
    return this.chunkSize + this.largestPooledTuple;
  }

  /** Pooled buffers kept for reuse: enough for everything held and one COPY's worth being written. */
  private get poolLimit(): number {
    return Math.ceil(this.limitBytes / this.chunkSize) + 1;
  }

  /** Bytes held: chunks ready for the writer and the chunk being gathered. */
  get heldBytes(): number {
    return this.chunkBytes + this.currentBytes;
  }

  /** Whether the reader finished and everything it added has been taken. */
  get drained(): boolean {
    return this.ended && this.chunks.length === 0 && this.currentBytes === 0;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Whether the writer has a chunk to take (a full one, or the last one after the end). */
  get ready(): boolean {
    return this.chunks.length > 0 || (this.ended && this.currentBytes > 0);
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
    return this.write(tuple.length, (out, at) => void tuple.copy(out, at));
  }

  /**
   * Adds one tuple of `length` bytes, which `fill` writes into `out` from `at` (so it is written once,
   * straight into its chunk). Answers like add().
   */
  write(length: number, fill: (out: Buffer, at: number) => void): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('read-ahead: tuple added after the end');
    if (length > this.largestPooledTuple) {
      // Order is kept: what was gathered before it becomes a chunk first.
      this.seal();
      const own = Buffer.allocUnsafe(length);
      fill(own, 0);
      this.chunks.push(own);
      this.chunkBytes += length;
      this.onChange();
    } else {
      this.current ??= this.free.pop() ?? this.newPooledBuffer();
      fill(this.current, this.currentBytes);
      this.currentBytes += length;
      if (this.currentBytes >= this.chunkSize) {
        this.seal();
        this.onChange();
      }
    }
    if (this.heldBytes > this.peakBytes) this.peakBytes = this.heldBytes;
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

  /**
   * Chunks taken earlier that Postgres has fully received: their pooled buffers are reused for the
   * next chunks. Only after the COPY succeeded, when nothing else refers to them any more.
   */
  recycle(chunks: readonly Buffer[]): void {
    for (const chunk of chunks) {
      if (this.free.length >= this.poolLimit || this.failure) return;
      if (this.pooled.has(chunk.buffer)) this.free.push(Buffer.from(chunk.buffer, 0, this.pooledBytes));
    }
  }

  /** Stops the reader: a waiting or later add() fails with `err`; held data is dropped. */
  abort(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.chunks = [];
    this.current = undefined;
    this.free.length = 0;
    this.chunkBytes = this.currentBytes = 0;
    const room = this.room;
    this.room = undefined;
    room?.reject(err);
  }

  private newPooledBuffer(): Buffer {
    // Not from Node's shared pool: its memory must be this buffer's alone to be handed out again.
    const buffer = Buffer.allocUnsafeSlow(this.pooledBytes);
    this.pooled.add(buffer.buffer);
    return buffer;
  }

  private seal(): void {
    if (this.current === undefined || this.currentBytes === 0) return;
    this.chunks.push(this.current.subarray(0, this.currentBytes));
    this.chunkBytes += this.currentBytes;
    this.current = undefined;
    this.currentBytes = 0;
  }
}
