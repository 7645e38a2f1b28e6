// The branch endpoints of the local stack behave like Neon's: TLS only, with a certificate that
// verifies against the stack's CA (and not against any other), and scram-sha-256 passwords.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { describeWithStack } from '../../test/support/describe-with-stack.js';
import { createTestProject, type TestProject } from '../../test/support/test-project.js';

interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

function endpointOf(url: string): Endpoint {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: parsed.pathname.slice(1),
  };
}

// Connects and records which SASL mechanisms the server offered (none = it did not ask for SCRAM).
async function connect(endpoint: Endpoint, ssl: pg.ClientConfig['ssl']): Promise<{ client: pg.Client; saslMechanisms: string[] }> {
  const client = new pg.Client({ ...endpoint, ssl, connectionTimeoutMillis: 10000 });
  const saslMechanisms: string[] = [];
  client.connection.once('authenticationSASL', (message: { mechanisms: string[] }) => {
    saslMechanisms.push(...message.mechanisms);
  });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return { client, saslMechanisms };
}

describeWithStack(
  'branch endpoint TLS and authentication',
  ['NEON_API_HOST', 'NEON_API_KEY', 'SUPANEON_STACK_CA', 'SUPANEON_STACK_WRONG_CA'],
  (env) => {
    // The default branch of a project of this file's own, made where Neon's are (a 127.0.X.Y endpoint).
    let project: TestProject;
    let endpoint: ReturnType<typeof endpointOf>;
    beforeAll(async () => {
      project = await createTestProject('stack-tls.test.ts');
      endpoint = endpointOf(project.databaseUrl);
    });
    afterAll(async () => {
      await project?.dispose();
    });
    const stackCa = readFileSync(env.SUPANEON_STACK_CA, 'utf8');
    const wrongCa = readFileSync(env.SUPANEON_STACK_WRONG_CA, 'utf8');

    test('a connection verified against the stack CA succeeds over TLS with SCRAM', async () => {
      const { client, saslMechanisms } = await connect(endpoint, { ca: stackCa, rejectUnauthorized: true });
      try {
        const result = await client.query<{ one: number; ssl: boolean }>(
          'SELECT 1 AS one, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        );
        expect(result.rows).toEqual([{ one: 1, ssl: true }]);
        expect(saslMechanisms).toContain('SCRAM-SHA-256');
      } finally {
        await client.end();
      }
    });

    test('the certificate is checked against the host name: another name fails', async () => {
      // The first test shows the endpoint's address passes the default check; this shows the
      // check is really made (TLS verifies the name it is given, here deliberately a wrong one).
      await expect(
        connect(endpoint, { ca: stackCa, rejectUnauthorized: true, servername: 'not-this-endpoint.invalid' }),
      ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });

    test('a plain (non-TLS) connection is refused', async () => {
      await expect(connect(endpoint, false)).rejects.toMatchObject({
        code: '28000',
        message: expect.stringMatching(/no encryption/),
      });
    });

    test('verifying against an unrelated CA fails', async () => {
      await expect(connect(endpoint, { ca: wrongCa, rejectUnauthorized: true })).rejects.toMatchObject({
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      });
    });

    test('a wrong password is refused by SCRAM authentication', async () => {
      const wrong = { ...endpoint, password: `${endpoint.password}-wrong` };
      await expect(connect(wrong, { ca: stackCa, rejectUnauthorized: true })).rejects.toMatchObject({
        code: '28P01',
      });
    });
  },
);
