/**
 * The request parser's property, over the wire: generated POST /charge
 * requests (repeated and odd headers, deadlines around the floor, bodies that
 * are not UTF-8, carry prototype keys or sit around the size limit) sent as
 * raw bytes to a live gateway and a live Fastify baseline. Each answer must
 * be what the shared parser decides for the same request (the servers add no
 * rule of their own and drop none), as an RFC 9457 problem for a refusal, and
 * a refused request must leave no row in Postgres and no charge at the
 * provider. Shedding is off so that an answer depends on the request alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseChargeRequest } from '../../src/charge/request.js';
import { catalogue, isErrorCode } from '../../src/errors/catalogue.js';
import { startSimulator, type Simulator } from '../../src/simulator/index.js';
import { chargeRequestArb, wireBytes, type GeneratedRequest } from '../support/charge-requests.js';
import { rawExchange, type RawResponse } from '../support/http.js';
import { startTestDb, type TestDb } from '../support/postgres.js';
import { ledger } from '../support/simulator.js';
import { startTarget, type Target, type TargetKind } from '../support/target.js';

const SETTINGS = { maxBodyBytes: 16_384, requestTimeoutMs: 1000, minRequestTimeoutMs: 50, maxRequestTimeoutMs: 30_000 };
const RUNS = 300;

/** A byte HTTP forbids in a header value (a control other than tab): the server may refuse the framing instead. */
// eslint-disable-next-line no-control-regex -- the control character is what this matches
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

for (const kind of ['gateway', 'baseline'] as TargetKind[]) {
  void describe(`generated requests against a live ${kind}`, () => {
    let db: TestDb;
    let sim: Simulator;
    let target: Target;

    before(async () => {
      db = await startTestDb();
      sim = await startSimulator({ providerPort: 0, fxPort: 0 });
      target = await startTarget(kind, {
        databaseUrl: db.url,
        providerUrl: sim.providerUrl,
        fxUrl: sim.fxUrl,
        env: {
          SHEDDING: 'false',
          MAX_REQUEST_TIMEOUT_MS: String(SETTINGS.maxRequestTimeoutMs),
          LEASE_MS: '40000',
          PROVIDER_TIMEOUT_MS: '4000',
        },
      });
    });

    after(async () => {
      await target?.stop('SIGTERM', 10_000);
      await sim?.close();
      await db?.close();
    });

    const stored = async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM charges`;
      return { rows: row!.n, providerKeys: (await ledger(sim.providerUrl)).keys };
    };

    function assertProblemBody(r: RawResponse, status: number, code: string, what: string): void {
      assert.equal(r.status, status, what);
      assert.match(r.headers['content-type'] ?? '', /^application\/problem\+json/, what);
      const b = r.body as Record<string, unknown>;
      assert.ok(b && typeof b.type === 'string' && typeof b.title === 'string' && typeof b.detail === 'string', what);
      assert.equal(b.status, status, what);
      assert.equal(b.code, code, what);
    }

    void it(
      `${RUNS} generated requests: each answered as the parser decides, refusals store nothing`,
      { timeout: 200_000 },
      async () => {
        const seen: Record<string, number> = {};
        await fc.assert(
          fc.asyncProperty(chargeRequestArb('live'), async (req: GeneratedRequest) => {
            // What the server's parser sees: values without the blanks a server trims.
            const trimmed = req.headers.map(([n, v]) => [n, v.replace(/^[ \t]+|[ \t]+$/g, '')] as [string, string]);
            const expected = parseChargeRequest(
              [...trimmed, ['Content-Length', String(req.body.length)]],
              req.body,
              SETTINGS,
              0,
            );
            const hasCtl = req.headers.some(([, v]) => CTL.test(v));
            const before = await stored();
            // uWS v20.30 neither answers nor closes some requests with a control byte in a header (until its idle timeout): wait less for those.
            const { response, conn } = await rawExchange(target.port, wireBytes(req), hasCtl ? 2000 : 15_000);
            conn.destroy();
            const what = `${kind}: ${JSON.stringify(req.headers)} ${JSON.stringify(req.body.toString('latin1').slice(0, 200))} -> expected ${expected.ok ? 'ok' : expected.code}, got ${response ? `${response.status} ${response.text.slice(0, 300)}` : 'no answer'}`;
            seen[response ? String(response.status) : 'closed'] =
              (seen[response ? String(response.status) : 'closed'] ?? 0) + 1;
            if (
              hasCtl &&
              (!response ||
                (response.status === 400 &&
                  (response.body as { code?: string } | undefined)?.code === 'invalid_header'))
            ) {
              // Refused as malformed HTTP before the parser ran (Node), or closed (uWS on a NUL): also a refusal.
              if (response) assertProblemBody(response, 400, 'invalid_header', what);
            } else if (expected.ok) {
              assert.ok(response, `an answer; ${what}`);
              // A deadline near the 50 ms floor may pass on a loaded machine: 504, and the charge completes later.
              if (response.status === 504) assertProblemBody(response, 504, 'deadline_exceeded', what);
              else assert.equal(response.status, 201, what);
              return;
            } else {
              assert.ok(response, `an answer; ${what}`);
              assert.ok(isErrorCode(expected.code));
              assertProblemBody(response, catalogue[expected.code].status, expected.code, what);
            }
            const after = await stored();
            assert.deepEqual(after, before, `a refused request stores nothing and charges nothing; ${what}`);
          }),
          { numRuns: RUNS, seed: 4242, endOnFailure: true },
        );
        console.log(`request-property ${kind} answers: ${JSON.stringify(seen)}`);
        assert.ok(
          (seen['201'] ?? 0) > 0 && Object.keys(seen).length >= 4,
          `the population reaches both successes and several refusals: ${JSON.stringify(seen)}`,
        );
      },
    );
  });
}
