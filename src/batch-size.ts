/**
 * How many documents a MongoDB cursor asks for per reply, chosen by bytes. A reply is held whole
 * while its documents are consumed (raw documents are views into it) and the next one is on its way
 * meanwhile, for every collection read at once; counted in documents alone, 1,000 documents of tens
 * of KB are tens of MB per reply. So the count is derived from the collection's average document
 * size, aiming at REPLY_TARGET_BYTES per reply, and the batch-size input stays the upper bound.
 */

/** Bytes a reply aims at: large enough to amortize a round trip, small enough to hold a few at once. */
export const REPLY_TARGET_BYTES = 1024 * 1024;
/** Fewest documents per reply whatever their size: round trips must not dominate for large documents. */
export const MIN_BATCH_DOCUMENTS = 16;
/**
 * Documents per reply when the collection's average size is unknown (no statistics from the server):
 * small, because nothing bounds the bytes otherwise; the server still caps a reply at 16 MiB.
 */
export const UNKNOWN_SIZE_BATCH_DOCUMENTS = 100;

/**
 * Documents per reply for documents of `averageBytes` on average, at most `maxDocuments` (the
 * batch-size input) and at least MIN_BATCH_DOCUMENTS (or `maxDocuments` when that is smaller).
 */
export function documentsPerReply(averageBytes: number | undefined, maxDocuments: number, targetBytes = REPLY_TARGET_BYTES): number {
  const max = Math.max(1, Math.floor(maxDocuments));
  if (averageBytes === undefined || !Number.isFinite(averageBytes) || averageBytes <= 0) return Math.min(max, UNKNOWN_SIZE_BATCH_DOCUMENTS);
  const fitting = Math.floor(targetBytes / averageBytes);
  return Math.min(max, Math.max(MIN_BATCH_DOCUMENTS, fitting));
}
