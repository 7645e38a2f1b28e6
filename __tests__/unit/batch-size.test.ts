// Documents per MongoDB reply, chosen by bytes: a reply holds about the target whatever the
// documents' size, never more documents than the batch-size input, and never so few that round
// trips dominate; without statistics a small batch.
import fc from 'fast-check';
import { MIN_BATCH_DOCUMENTS, REPLY_TARGET_BYTES, UNKNOWN_SIZE_BATCH_DOCUMENTS, documentsPerReply } from '../../src/batch-size.js';

test('small documents fill the batch-size input; large ones get fewer per reply, about the target in bytes', () => {
  expect(documentsPerReply(200, 1000)).toBe(1000);
  expect(documentsPerReply(14_080, 1000)).toBe(Math.floor(REPLY_TARGET_BYTES / 14_080));
  expect(documentsPerReply(64 * 1024, 1000)).toBe(MIN_BATCH_DOCUMENTS);
  expect(documentsPerReply(16 * 1024 * 1024, 1000)).toBe(MIN_BATCH_DOCUMENTS);
});

test('an unknown or meaningless average size gets the small fallback batch, within the batch-size input', () => {
  for (const unknown of [undefined, 0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
    expect(documentsPerReply(unknown, 1000)).toBe(UNKNOWN_SIZE_BATCH_DOCUMENTS);
    expect(documentsPerReply(unknown, 10)).toBe(10);
  }
});

test('the batch-size input is the upper bound, even below the minimum', () => {
  expect(documentsPerReply(100, 5)).toBe(5);
  expect(documentsPerReply(1024 * 1024, 1)).toBe(1);
});

test('any size: between 1 and the input, and above the minimum only while the target in bytes holds', () => {
  fc.assert(
    fc.property(fc.double({ min: 1, max: 16 * 1024 * 1024, noNaN: true }), fc.integer({ min: 1, max: 100_000 }), (average, max) => {
      const n = documentsPerReply(average, max);
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(max);
      if (n > MIN_BATCH_DOCUMENTS) expect(n * average).toBeLessThanOrEqual(REPLY_TARGET_BYTES);
    }),
  );
});
