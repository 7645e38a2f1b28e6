// The MongoDB driver quotes option values in its errors; what supaneon-sync reports names the
// option only. Real driver errors, from the driver's own URI parser (no server involved).
import { describe, expect, test } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { connectMongo, describeDriverError, uriOptions } from '../../src/mongo.js';

const VALUE = 'Zq7SecretOptionValue';

async function driverError(uri: string): Promise<unknown> {
  try {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 200 });
    await client.connect();
    await client.close();
  } catch (err) {
    return err;
  }
  throw new Error('the driver accepted the URI');
}

describe('driver errors that echo URI option values', () => {
  test.each([
    ['readPreference', `mongodb://127.0.0.1:1/?readPreference=${VALUE}`],
    ['authMechanism', `mongodb://u:p@127.0.0.1:1/?authMechanism=${VALUE}`],
    ['compressors', `mongodb://127.0.0.1:1/?compressors=${VALUE}`],
  ])('%s: the option is named, its value never shown', async (option, uri) => {
    const err = await driverError(uri);
    expect(String((err as Error).message)).toContain(VALUE); // the driver does echo it
    const message = describeDriverError(err, uri, 'mongodb-uri');
    expect(message).not.toContain(VALUE);
    expect(message).toContain(`option ${option} (value not shown)`);
    expect(message).toMatch(/^mongodb-uri: /);
  });

  test('connectMongo reports the input it was given and the option, never the value', async () => {
    const uri = `mongodb://127.0.0.1:1/?readPreference=${VALUE}`;
    const error = await connectMongo(uri, { connectTimeoutMs: 200, input: 'target-mongodb-uri' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(
      /^target-mongodb-uri is not a usable MongoDB connection string|target-mongodb-uri: the MongoDB driver refuses option readPreference/,
    );
    expect(error?.message).not.toContain(VALUE);
    expect(error?.cause).toBeUndefined();
  });

  test('other errors have every option value cut out', () => {
    const uri = `mongodb://h/?replicaSet=${VALUE}&tls=true`;
    expect(describeDriverError(new Error(`no primary in set ${VALUE} (tls true)`), uri, 'mongodb-uri')).toBe(
      'no primary in set <replicaSet> (tls true)',
    );
    expect(uriOptions(uri)).toEqual([
      { name: 'replicaSet', value: VALUE },
      { name: 'tls', value: 'true' },
    ]);
  });
});
