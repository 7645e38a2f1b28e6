import {
  channelBindingOf,
  directHostOf,
  endpointIdOf,
  endpointIdOfHost,
  moveToEndpoint,
  roleAndDatabaseOf,
  withEndpointOption,
} from '../../src/connection-string.js';
import { retryAfterToMs } from '../../src/neon-call.js';

// Exactly as Neon's console formats a connection string (pooled, with channel binding and the endpoint option).
const CONSOLE_URL =
  'postgresql://neondb_owner:npg_S3cr3t@ep-misty-sea-a5833nbi-pooler.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require&options=endpoint%3Dep-misty-sea-a5833nbi';

describe('endpoint ids', () => {
  test('the host label without -pooler, or the endpoint option', () => {
    expect(endpointIdOf(new URL(CONSOLE_URL))).toBe('ep-misty-sea-a5833nbi');
    expect(endpointIdOf(new URL('postgresql://u:p@ep-cool-darkness-123456.eu-central-1.aws.neon.tech/db'))).toBe('ep-cool-darkness-123456');
    // An IP address or an alias names no endpoint: only the option can.
    expect(endpointIdOf(new URL('postgresql://u:p@127.0.0.2:5432/db?sslmode=require'))).toBeUndefined();
    expect(endpointIdOf(new URL('postgresql://u:p@127.0.0.2:5432/db?options=endpoint%3Dep-abc-1'))).toBe('ep-abc-1');
    expect(endpointIdOf(new URL('postgresql://u:p@db.example.com/db?options=project%3Dep-legacy-2'))).toBe('ep-legacy-2');
    expect(endpointIdOfHost('EP-Loud-Moon-77-POOLER.us-east-2.aws.neon.tech.')).toBe('ep-loud-moon-77');
  });

  test('direct host of a pooler host', () => {
    expect(directHostOf('ep-misty-sea-a5833nbi-pooler.us-east-2.aws.neon.tech')).toBe('ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech');
    expect(directHostOf('127.0.0.2')).toBe('127.0.0.2');
  });
});

describe('moving a connection string to another endpoint', () => {
  test('rewrites options=endpoint to the new endpoint, keeps other options, replaces the password', () => {
    const moved = new URL(
      moveToEndpoint(CONSOLE_URL, {
        host: 'ep-young-leaf-b1x2y3z4.us-east-2.aws.neon.tech',
        endpointId: 'ep-young-leaf-b1x2y3z4',
        password: 'n3w/p@ss',
      }),
    );
    expect(moved.hostname).toBe('ep-young-leaf-b1x2y3z4.us-east-2.aws.neon.tech');
    expect(moved.searchParams.get('options')).toBe('endpoint=ep-young-leaf-b1x2y3z4');
    expect(decodeURIComponent(moved.password)).toBe('n3w/p@ss');
    expect(moved.searchParams.get('channel_binding')).toBe('require');
    expect(roleAndDatabaseOf(moved.toString())).toEqual({ role: 'neondb_owner', database: 'neondb' });
  });

  test('the standby direct host keeps its own endpoint option', () => {
    const direct = new URL(moveToEndpoint(CONSOLE_URL, { host: directHostOf(new URL(CONSOLE_URL).hostname) }));
    expect(direct.hostname).toBe('ep-misty-sea-a5833nbi.us-east-2.aws.neon.tech');
    expect(direct.searchParams.get('options')).toBe('endpoint=ep-misty-sea-a5833nbi');
    expect(decodeURIComponent(direct.password)).toBe('npg_S3cr3t');
  });

  test('an endpoint option that cannot be rewritten is dropped, never left naming the old endpoint', () => {
    const moved = new URL(moveToEndpoint(CONSOLE_URL, { host: '127.0.0.7' }));
    expect(moved.searchParams.has('options')).toBe(false);
    expect(withEndpointOption('-c search_path=x endpoint=ep-a', undefined)).toBe('-c search_path=x');
    expect(withEndpointOption('-c search_path=x endpoint=ep-a', 'ep-b')).toBe('endpoint=ep-b -c search_path=x');
    // No endpoint option: none is added.
    expect(withEndpointOption('-c search_path=x', 'ep-b')).toBe('-c search_path=x');
  });
});

describe('channel_binding', () => {
  test('libpq values, prefer when absent, a clear error otherwise', () => {
    expect(channelBindingOf(new URL(CONSOLE_URL))).toBe('require');
    expect(channelBindingOf(new URL('postgresql://h/db'))).toBe('prefer');
    expect(channelBindingOf(new URL('postgresql://h/db?channel_binding=disable'))).toBe('disable');
    expect(() => channelBindingOf(new URL('postgresql://h/db?channel_binding=always'))).toThrow(
      /neon-database-url has channel_binding=always; use require/,
    );
  });
});

describe('Retry-After', () => {
  test('seconds or an HTTP date', () => {
    const now = Date.parse('2026-12-01T02:00:00Z');
    expect(retryAfterToMs('3', now)).toBe(3000);
    expect(retryAfterToMs('Tue, 01 Dec 2026 02:00:05 GMT', now)).toBe(5000);
    expect(retryAfterToMs('Tue, 01 Dec 2026 01:59:00 GMT', now)).toBe(0);
    expect(retryAfterToMs('soon', now)).toBeUndefined();
    expect(retryAfterToMs(null, now)).toBeUndefined();
  });
});
