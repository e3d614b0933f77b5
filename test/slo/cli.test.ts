/**
 * `bulwark slo` as CI runs it: the compiled CLI as a child process. The
 * gate's exit codes are its contract (0 pass, 1 budget below the threshold,
 * 2 could not decide), checked against result files and against a stand-in
 * Prometheus HTTP API whose answers the test chooses (the real server is in
 * integration.test.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RULES_FILE, runCli, type Run } from './tools.js';

let tmp: string;
const file = (name: string) => path.join(tmp, name);
const show = (r: Run) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'bulwark-slo-cli-'));
  // 10 bad in 100 000: burn 0.1, a window like this run keeps 90 % of its budget.
  await writeFile(
    file('good.json'),
    JSON.stringify({
      scenario: 'steady',
      slo: { route: '/charge', total: 100_000, good: 99_990, duration_seconds: 600 },
    }),
  );
  // 100 bad in 100 000: burn 1, a window like this run spends all of it.
  await writeFile(
    file('bad.json'),
    JSON.stringify({
      scenario: 'provider-slow',
      slo: { route: '/charge', total: 100_000, good: 99_900, duration_seconds: 600, latency_threshold_ms: 300 },
    }),
  );
  await writeFile(
    file('malformed.json'),
    JSON.stringify({ slo: { route: '/charge', total: 100, good: 101, duration_seconds: 60 } }),
  );
  await writeFile(file('no-slo.json'), JSON.stringify({ scenario: 'steady' }));
  await writeFile(file('not-json.json'), '{"slo": ');
  await writeFile(
    file('threshold-250.json'),
    JSON.stringify({
      slo: { route: '/charge', total: 100, good: 100, duration_seconds: 60, latency_threshold_ms: 250 },
    }),
  );
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('bulwark slo gate --result', () => {
  it('exits 0 for a result that leaves the budget above the threshold, and says why on one line', async () => {
    const r = await runCli(['slo', 'gate', '--result', file('good.json'), '--min-remaining', '0.25']);
    assert.equal(r.code, 0, show(r));
    assert.equal(
      r.stdout,
      `slo gate: pass: error budget remaining 0.9 (90 %) is at or above the threshold 0.25; source: result file ${file('good.json')} (/charge, 100000 requests over 600 s, burn rate 0.1x, projected over a 28-day window burning like the run)\n`,
    );
  });

  it('exits 1 for a result whose burn leaves less than the threshold', async () => {
    const r = await runCli(['slo', 'gate', '--result', file('bad.json'), '--min-remaining', '0.25']);
    assert.equal(r.code, 1, show(r));
    assert.match(
      r.stdout,
      /^slo gate: fail: error budget remaining 0 \(0 %\) is below the threshold 0\.25; source: result file .*bad\.json \(\/charge, 100000 requests over 600 s, burn rate 1x/,
    );
    assert.equal(r.stdout.trim().split('\n').length, 1);
  });

  it('reads the threshold from SLO_MIN_REMAINING, and a stricter objective turns a pass into a fail', async () => {
    assert.equal((await runCli(['slo', 'gate', '--result', file('good.json')], { SLO_MIN_REMAINING: '0.95' })).code, 1);
    // At 99.99 % the good run's 0.01 % errors are a burn of 1.
    assert.equal(
      (await runCli(['slo', 'gate', '--result', file('good.json'), '--objective', '0.9999', '--min-remaining', '0.25']))
        .code,
      1,
    );
  });

  it('--basis run judges the spend of this run alone: ten minutes at burn 1 leave almost all of 28 days', async () => {
    const r = await runCli(['slo', 'gate', '--result', file('bad.json'), '--min-remaining', '0.25', '--basis', 'run']);
    assert.equal(r.code, 0, show(r));
    // 1 − 600 / 2 419 200
    assert.match(r.stdout, /remaining 0\.999752 /);
  });

  it('exits 2, with one line naming the problem, when it cannot decide', async () => {
    const cases: [string[], RegExp][] = [
      [['slo', 'gate'], /give exactly one of --result FILE or --prometheus URL/],
      [['slo', 'gate', '--result', file('good.json'), '--prometheus', 'http://127.0.0.1:1'], /give exactly one of/],
      [['slo', 'gate', '--result', file('missing.json')], /--result cannot read .*missing\.json.*ENOENT/],
      [['slo', 'gate', '--result', file('not-json.json')], /is not valid JSON/],
      [
        ['slo', 'gate', '--result', file('malformed.json')],
        /slo\.good must be an integer from 0 to slo\.total \(100\); got 101/,
      ],
      [['slo', 'gate', '--result', file('no-slo.json')], /has no "slo" block/],
      [
        ['slo', 'gate', '--result', file('threshold-250.json')],
        /slo\.latency_threshold_ms is 250 ms but the SLO is judged at 300 ms/,
      ],
      [
        ['slo', 'gate', '--result', file('good.json'), '--min-remaining', '2'],
        /--min-remaining must be a number from 0 to 1; got "2"/,
      ],
      [
        ['slo', 'gate', '--result', file('good.json'), '--objective', '1'],
        /--objective must be a number greater than 0 and less than 1; got "1"/,
      ],
      [['slo', 'gate', file('good.json')], /unexpected argument/],
      [['slo', 'gate', '--prometheus', 'http://127.0.0.1:1'], /cannot reach Prometheus at http:\/\/127\.0\.0\.1:1/],
      [['slo', 'gate', '--prometheus', 'postgres://127.0.0.1:5432/x'], /--prometheus must be an http\(s\) URL/],
      [['slo'], /needs a subcommand: burn, gate or rules/],
      [['slo', 'ship-it'], /unknown subcommand "ship-it"/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
    }
  });
});

describe('bulwark slo gate --prometheus (stand-in API)', () => {
  let server: Server;
  let base: string;
  let answer: { status: number; body: unknown };
  const queries: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/prom/api/v1/query') queries.push(u.searchParams.get('query') ?? '');
      res
        .writeHead(answer.status, { 'content-type': 'application/json' })
        .end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prom`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const vector = (...values: string[]) => ({
    status: 200,
    body: {
      status: 'success',
      data: {
        resultType: 'vector',
        result: values.map((v) => ({ metric: { job: 'bulwark' }, value: [1700000000, v] })),
      },
    },
  });

  it('asks for the recorded remaining budget of --job, under the server path prefix', async () => {
    answer = vector('0.6');
    const r = await runCli(['slo', 'gate', '--prometheus', base, '--job', 'payments', '--min-remaining', '0.25']);
    assert.equal(r.code, 0, show(r));
    assert.equal(queries.at(-1), 'job:bulwark_charge_slo_error_budget:remaining_ratio{job="payments"}');
    assert.equal(
      r.stdout,
      `slo gate: pass: error budget remaining 0.6 (60 %) is at or above the threshold 0.25; source: prometheus ${base}, job:bulwark_charge_slo_error_budget:remaining_ratio{job="payments"}\n`,
    );
  });

  it('exits 1 when Prometheus says the budget is below the threshold (or overspent)', async () => {
    answer = vector('0.1');
    assert.equal((await runCli(['slo', 'gate', '--prometheus', base, '--min-remaining', '0.25'])).code, 1);
    answer = vector('-3.5');
    const r = await runCli(['slo', 'gate', '--prometheus', base]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /fail: error budget remaining -3\.5 \(-350 %\) is below the threshold 0;/);
  });

  it('no /charge traffic in the window (NaN) spends nothing: pass, and says so', async () => {
    answer = vector('NaN');
    const r = await runCli(['slo', 'gate', '--prometheus', base, '--min-remaining', '0.25']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /remaining 1 .*no \/charge requests in the window: nothing spent/);
  });

  it('exits 2 when Prometheus cannot answer the question: no series, a PromQL error, not Prometheus', async () => {
    const cases: [typeof answer, RegExp][] = [
      [
        vector(),
        /has no job:bulwark_charge_slo_error_budget:remaining_ratio\{job="bulwark"\}: load deploy\/prometheus\/bulwark-rules\.yml/,
      ],
      [vector('0.5', '0.7'), /has 2 series/],
      [
        { status: 400, body: { status: 'error', errorType: 'bad_data', error: 'parse error' } },
        /refused the query .* \(HTTP 400; bad_data: parse error\)/,
      ],
      [{ status: 200, body: '<html>gateway</html>' }, /something other than JSON; is .* a Prometheus server\?/],
    ];
    for (const [a, message] of cases) {
      answer = a;
      const r = await runCli(['slo', 'gate', '--prometheus', base]);
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, message);
    }
  });
});

describe('bulwark slo burn, rules, --help', () => {
  it('burn prints the arithmetic of a result file', async () => {
    const r = await runCli(['slo', 'burn', '--result', file('good.json')]);
    assert.equal(r.code, 0, show(r));
    assert.equal(
      r.stdout,
      [
        `/charge (${file('good.json')}): 100000 requests over 600 s, 99990 good (non-5xx within 300 ms), 10 bad`,
        'error ratio 0.0001 against a budget of 0.001 (objective 99.9 %): burn rate 0.1x',
        // 0.1 × 600 / 2 419 200 = 2.48016e-5 of the budget
        'this run spent 0.00248016 % of the 28-day error budget; left after it: 0.999975',
        'at this burn rate a full budget lasts 280 days; a 28-day window burning like this run would end with 0.9 of its budget left',
        '',
      ].join('\n'),
    );
  });

  it('burn --format json gives the lab every number', async () => {
    const r = await runCli(['slo', 'burn', '--result', file('bad.json'), '--format', 'json']);
    assert.equal(r.code, 0, show(r));
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(j.route, '/charge');
    assert.equal(j.bad, 100);
    assert.ok(Math.abs((j.burnRate as number) - 1) < 1e-12);
    assert.ok(Math.abs((j.projectedRemaining as number) - 0) < 1e-12);
    assert.equal(j.windowDays, 28);
  });

  it('rules prints the committed rules file; a threshold off the bucket ladder is refused', async () => {
    const r = await runCli(['slo', 'rules']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, await readFile(RULES_FILE, 'utf8'));
    const bad = await runCli(['slo', 'rules', '--latency-threshold-ms', '200']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--latency-threshold-ms must be a histogram bucket bound \(one of 1, 2\.5, .*300.*\); got 200/,
    );
  });

  it('every subcommand has --help; `bulwark --help` lists slo', async () => {
    const top = await runCli(['slo', '--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: bulwark slo <burn\|gate\|rules>/);
    for (const sub of ['burn', 'gate', 'rules']) {
      const r = await runCli(['slo', sub, '--help']);
      assert.equal(r.code, 0, sub);
      assert.match(r.stdout, new RegExp(`^Usage: bulwark slo ${sub}`), sub);
      assert.match(r.stdout, /--objective <value> {2}\[env SLO_OBJECTIVE\]/, sub);
    }
    assert.match(
      (await runCli(['slo', 'gate', '--help'])).stdout,
      /--min-remaining <value> {2}\[env SLO_MIN_REMAINING\]/,
    );
    assert.match((await runCli(['--help'])).stdout, /^ {2}slo {8}The \/charge SLO/m);
  });
});
