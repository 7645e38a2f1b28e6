// The document codec: one raw BSON document as MongoDB sent it <-> the row stored in Postgres.
// This module is its public face; each concern lives in a module of its own under codec/:
//
// | module               | concern                                                              |
// |----------------------|----------------------------------------------------------------------|
// | bson-elements.ts     | reading element bounds (one reader, `Elements`), validity, UTF-8     |
// | json-forms.ts        | the query form (`doc` column) and canonical EJSON (`_id` column)     |
// | stored-row.ts        | the stored row and how a document becomes one                        |
// | exact-decode.ts      | JS values the driver writes back to exactly the stored bytes         |
// | jsonb-text.ts        | the text PostgreSQL prints for a jsonb value made from JSON text     |
// | jsonb-bytes.ts       | the `doc` column's jsonb text as bytes, compared without strings     |
// | content-hash.ts      | the order-independent digest of a set of documents                   |
// | copy-binary.ts       | PostgreSQL's binary COPY framing, in and out                         |
export { assertUtf8Text, CodecError } from './codec/bson-elements.js';
export { canonicalJson, idKey, queryJson, queryJsonbText } from './codec/json-forms.js';
export { COPY_COLUMNS, encodeDocument, encodeDocumentView, ROW_COLUMNS, rowTableColumns, type StoredRow } from './codec/stored-row.js';
export { assertReencodes, decodeExact, OrderedDocument, OutOfRangeDate } from './codec/exact-decode.js';
export { ContentHash } from './codec/content-hash.js';
export { jsonbText } from './codec/jsonb-text.js';
export { queryJsonbBytes, queryJsonbTextMatches } from './codec/jsonb-bytes.js';
export {
  copyBinaryHeader,
  copyBinaryRows,
  copyBinaryTrailer,
  copyBinaryTuple,
  copyBinaryTupleLength,
  writeCopyBinaryTuple,
} from './codec/copy-binary.js';
