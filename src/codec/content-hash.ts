// The content hash: one digest of a set of documents that does not depend on their order, so a
// backup, a verification and a recover can each compute it as rows stream past and compare.

import { CodecError } from './bson-elements.js';

/**
 * Order-independent digest of a set of documents: the sum of their sha256 digests read as 256-bit
 * unsigned big-endian integers, modulo 2^256, as 64 lowercase hex digits. Kept as eight 32-bit
 * limbs so adding a digest is eight additions, not BigInt parsing.
 */
export class ContentHash {
  private readonly limbs = new Uint32Array(8); // limbs[0] most significant
  private count = 0;
  private byteCount = 0;

  add(hash: Buffer, bsonBytes: number): void {
    if (hash.length !== 32) throw new CodecError(`content hash needs a 32-byte sha256 digest, got ${hash.length} bytes`);
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const sum = this.limbs[i] + hash.readUInt32BE(i * 4) + carry;
      this.limbs[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.count++;
    this.byteCount += bsonBytes;
  }

  get documents(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  digest(): string {
    let out = '';
    for (const limb of this.limbs) out += limb.toString(16).padStart(8, '0');
    return out;
  }
}
