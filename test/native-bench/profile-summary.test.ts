import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addTimes, stageOf, stageTimes, type CpuProfile } from '../../native-bench/profile-summary.js';

// (root) → uWS handler → [writeBuffer (native)], postgres.js → [writev (native)], (idle), (garbage collector)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '' }, children: [2, 4, 6, 7] },
    { id: 2, callFrame: { functionName: 'onCharge', url: 'file:///app/dist/src/gateway/server.js' }, children: [3] },
    { id: 3, callFrame: { functionName: 'writeBuffer', url: '' } },
    {
      id: 4,
      callFrame: { functionName: 'execute', url: 'file:///app/node_modules/postgres/src/connection.js' },
      children: [5],
    },
    { id: 5, callFrame: { functionName: 'writev', url: '' } },
    { id: 6, callFrame: { functionName: '(idle)', url: '' } },
    { id: 7, callFrame: { functionName: '(garbage collector)', url: '' } },
  ],
  startTime: 1000,
  endTime: 2000,
  // Sample i at startTime + sum(deltas[0..i]); it lasts until the next one.
  samples: [2, 3, 4, 5, 6, 7, 2, 2],
  timeDeltas: [0, 10, 20, 30, 40, 50, 60, 70],
};

test('self time by stage: native leaves go to their mapped caller, idle is apart, each sample lasts until the next', () => {
  const t = stageTimes(profile);
  const uws = 'uWS request handling + parsing (our handler, uWS JS)';
  // onCharge 10 (to the next sample) + writeBuffer 20 + onCharge 70; the last sample has no successor.
  assert.equal(t.byStage.get(uws), 100);
  assert.equal(t.byStage.get('postgres.js driver'), 30 + 40);
  assert.equal(t.idleUs, 50);
  assert.equal(t.byStage.get('GC'), 60);
  assert.equal(t.cpuUs, 100 + 70 + 60, 'the stages add up to the CPU, idle excluded');
});

test('the window keeps only the samples taken inside it', () => {
  // Sample times: 1000, 1010, 1030, 1060, 1100, 1150, 1210, 1280.
  const t = stageTimes(profile, 1030, 1150);
  assert.equal(t.byStage.get('postgres.js driver'), 70);
  assert.equal(t.idleUs, 50);
  assert.equal(t.byStage.get('GC'), undefined);
  assert.equal(t.cpuUs, 70);
});

test('threads add up; unknown code is "other", never dropped', () => {
  const both = addTimes([stageTimes(profile), stageTimes(profile)]);
  assert.equal(both.cpuUs, 2 * 230);
  assert.equal(stageOf('file:///app/dist/src/somewhere/new.js', 'f'), 'other');
  assert.equal(stageOf('', 'stringify'), 'JSON serialisation (JSON.parse/stringify)');
  assert.equal(stageOf('file:///app/node_modules/undici/lib/dispatcher/client.js', 'write'), 'undici provider call');
});

test("the baseline's stages: Fastify and node:http are its request handling, opossum and under-pressure its guards", () => {
  const fastify = 'Fastify + node:http request handling (the baseline)';
  assert.equal(stageOf('file:///app/node_modules/fastify/lib/route.js', 'routeHandler'), fastify);
  assert.equal(stageOf('file:///app/node_modules/find-my-way/index.js', 'lookup'), fastify);
  assert.equal(stageOf('node:_http_server', 'parserOnIncoming'), fastify);
  assert.equal(stageOf('file:///app/dist/src/baseline/app.js', 'charge'), fastify);
  assert.equal(stageOf('file:///app/node_modules/opossum/lib/circuit.js', 'fire'), 'admission, breakers, bulkheads');
  assert.equal(
    stageOf('file:///app/node_modules/@fastify/under-pressure/index.js', 'onRequest'),
    'admission, breakers, bulkheads',
  );
  // The clients both services share keep their own stages.
  assert.equal(stageOf('file:///app/node_modules/postgres/src/connection.js', 'execute'), 'postgres.js driver');
  assert.equal(stageOf('file:///app/dist/src/charge/service.js', 'charge'), 'charge service (lifecycle, store)');
});
