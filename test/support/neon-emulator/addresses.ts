// The loopback addresses branch endpoints listen on. Every cluster of every project shares one
// port, as Neon's endpoints share 5432, so each needs its own address: 127.0.X.Y with X in
// 0..LAST_SUBNET and Y in 2..254 (127.0.0.1 is left to the API and MongoDB; .255 is avoided as a
// broadcast-looking address). The stack's certificate names every one of them (certs.sh).
import { ApiError } from './errors.js';

/** The highest third octet used: 127.0.0.* .. 127.0.3.*, about a thousand endpoints. */
export const LAST_SUBNET = 3;
const FIRST_HOST = 2;
const LAST_HOST = 254;

/** The stack's default project has its default branch on 127.0.0.2, as before projects existed. */
export const DEFAULT_HOST_NUMBER = FIRST_HOST;
export const LAST_HOST_NUMBER = LAST_SUBNET * 256 + LAST_HOST;

export function hostOf(hostNumber: number): string {
  return `127.0.${Math.floor(hostNumber / 256)}.${hostNumber % 256}`;
}

/**
 * Addresses in use across every project. New endpoints take the next free address after the last
 * one handed out, cycling through the range, so a deleted branch's address is not reused soon: a
 * client still holding it reaches nothing rather than another project's database.
 */
export class AddressPool {
  readonly #used = new Set<number>();
  #last = DEFAULT_HOST_NUMBER;

  /** Marks an address as in use (a saved branch at start-up). */
  claim(hostNumber: number): void {
    this.#used.add(hostNumber);
    this.#last = Math.max(this.#last, hostNumber);
  }

  take(): number {
    const all = allAddresses();
    const start = all.indexOf(this.#last) + 1;
    for (let i = 0; i < all.length; i++) {
      const n = all[(start + i) % all.length];
      if (!this.#used.has(n)) {
        this.#used.add(n);
        this.#last = n;
        return n;
      }
    }
    throw new ApiError(
      422,
      'ENDPOINTS_LIMIT_EXCEEDED',
      `no free endpoint address left (${hostOf(DEFAULT_HOST_NUMBER)}..${hostOf(LAST_HOST_NUMBER)} are all in use); delete a branch with an endpoint, or a project, first`,
    );
  }

  release(hostNumber: number): void {
    this.#used.delete(hostNumber);
  }
}

let addresses: number[] | undefined;

/** Every endpoint address in order: 127.0.0.2 .. 127.0.0.254, 127.0.1.2 .. and so on. */
function allAddresses(): number[] {
  if (addresses === undefined) {
    addresses = [];
    for (let subnet = 0; subnet <= LAST_SUBNET; subnet++) {
      for (let host = FIRST_HOST; host <= LAST_HOST; host++) addresses.push(subnet * 256 + host);
    }
  }
  return addresses;
}
