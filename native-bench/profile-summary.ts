/**
 * Reading a V8 .cpuprofile (what `node --cpu-prof` writes) as "where a
 * charge's CPU goes": the self time of every sample inside a time window,
 * grouped into the stages of the charge path by the function's file and name.
 *
 * Self time, not total: each sampled microsecond is counted once, in the
 * function that was running, so the stages add up to the thread's measured
 * CPU. A sample's duration is the gap to the next sample (how DevTools counts
 * it). Node's own plumbing and unmapped code are charged to their nearest
 * mapped caller. `(idle)` is the thread waiting in epoll; it is reported apart and not
 * counted as CPU. `(program)` is native code outside any JS function: uWS's
 * C++ (socket reads, HTTP parsing, writes), libuv, syscalls, V8's runtime and
 * structured clone; a profile cannot split it further.
 */

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** µs, V8's monotonic clock (CLOCK_MONOTONIC on Linux, as process.hrtime). */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const STAGES = [
  'uWS request handling + parsing (our handler, uWS JS)',
  'Fastify + node:http request handling (the baseline)',
  'native: uWS C++, libuv, syscalls, V8 runtime ((program))',
  'validation + fingerprint (incl. SHA-256)',
  'admission, breakers, bulkheads',
  'thread hop (piscina, MessagePort, structured clone)',
  'charge service (lifecycle, store)',
  'group commit',
  'postgres.js driver',
  'undici provider call',
  'JSON serialisation (JSON.parse/stringify)',
  'deadlines (AbortSignal, timers)',
  'metrics / histograms',
  'logging (pino)',
  'Node net/streams/timers/promises (no mapped caller)',
  'GC',
  'other',
] as const;
export type Stage = (typeof STAGES)[number] | 'idle';

/** Rules in order, first match wins: [test on "url functionName", stage]. */
const RULES: readonly [RegExp, Stage][] = [
  [/^ \(idle\)$/, 'idle'],
  [/^ \(garbage collector\)$/, 'GC'],
  [/^ \(program\)$/, 'native: uWS C++, libuv, syscalls, V8 runtime ((program))'],
  [/^ (stringify|parse)$|\/src\/errors\/catalogue\.js/, 'JSON serialisation (JSON.parse/stringify)'],
  [/node:internal\/(abort_controller|per_context\/domexception)/, 'deadlines (AbortSignal, timers)'],
  [
    /^ (writeBuffer|writev|writeUtf8String|writeLatin1String|writeAsciiString|readStart|onStreamRead|runMicrotasks)$/,
    'Node net/streams/timers/promises (no mapped caller)',
  ],
  [/node:internal\/histogram|node:internal\/perf\//, 'metrics / histograms'],
  [/node_modules\/postgres\//, 'postgres.js driver'],
  [/node_modules\/undici\/|\/src\/downstream\//, 'undici provider call'],
  [
    /node_modules\/piscina\/|node:internal\/worker|messageport|^ (postMessage|receiveMessageOnPort|emitMessage)$/i,
    'thread hop (piscina, MessagePort, structured clone)',
  ],
  [/\/src\/gateway\/tasks\.js|\/src\/gateway\/worker\.js/, 'thread hop (piscina, MessagePort, structured clone)'],
  [/node_modules\/(pino|thread-stream|sonic-boom)|\/src\/runtime\/logger\.js/, 'logging (pino)'],
  [/node_modules\/(prom-client|hdr-histogram)|\/src\/metrics\//, 'metrics / histograms'],
  [/\/src\/charge\/(group-commit|batch-store)\.js/, 'group commit'],
  [
    /\/src\/charge\/(validate|fingerprint|key-hash)\.js|node:(internal\/)?crypto/,
    'validation + fingerprint (incl. SHA-256)',
  ],
  [/\/src\/charge\//, 'charge service (lifecycle, store)'],
  [
    /\/src\/gateway\/(admission|loop-monitor)\.js|\/src\/resilience\/|node_modules\/(opossum|@fastify\/under-pressure)\//,
    'admission, breakers, bulkheads',
  ],
  [
    /node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|secure-json-parse|toad-cache|rfdc|process-warning|abstract-logging)\/|\/src\/baseline\/|node:_http_|node:internal\/http|node:http\b/,
    'Fastify + node:http request handling (the baseline)',
  ],
  [/uWebSockets|uws|\/src\/gateway\/(server|http|native)\.js/i, 'uWS request handling + parsing (our handler, uWS JS)'],
  [
    /node:(net|stream|events|timers|buffer|internal\/(stream|net|timers|process\/task_queues|event_target|streams|buffer))/,
    'Node net/streams/timers/promises (no mapped caller)',
  ],
];

const GENERIC: Stage = 'Node net/streams/timers/promises (no mapped caller)';

export function stageOf(url: string, functionName: string): Stage {
  const key = `${url} ${functionName}`;
  for (const [re, stage] of RULES) if (re.test(key)) return stage;
  return 'other';
}

export interface StageTimes {
  /** µs of CPU (self time) per stage, idle excluded. */
  byStage: Map<Stage, number>;
  /** µs the thread sat idle in the window. */
  idleUs: number;
  /** µs of CPU in the window, all stages. */
  cpuUs: number;
  /** The heaviest `other` functions, so the mapping can be improved. */
  topOther: { name: string; us: number }[];
}

/** Self time by stage of the samples taken in [fromUs, toUs) (V8 monotonic µs). */
export function stageTimes(p: CpuProfile, fromUs = -Infinity, toUs = Infinity): StageTimes {
  const stageById = new Map<number, Stage>();
  const nameById = new Map<number, string>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const own = new Map<number, Stage>(p.nodes.map((n) => [n.id, stageOf(n.callFrame.url, n.callFrame.functionName)]));
  for (const n of p.nodes) {
    // Node's own plumbing (a socket write, a stream, a validator) is charged
    // to the nearest caller that belongs to a stage: postgres.js's writes to
    // the driver, undici's to the provider call.
    let stage = own.get(n.id)!;
    if (stage === GENERIC || stage === 'other') {
      for (let up = parent.get(n.id); up !== undefined; up = parent.get(up)) {
        const s = own.get(up)!;
        if (s !== GENERIC && s !== 'other') {
          stage = s;
          break;
        }
      }
    }
    stageById.set(n.id, stage);
    nameById.set(
      n.id,
      `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}`,
    );
  }
  const byStage = new Map<Stage, number>();
  const other = new Map<string, number>();
  let idleUs = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dur = p.timeDeltas[i + 1] ?? 0;
    if (t < fromUs || t >= toUs || dur <= 0) continue;
    const id = p.samples[i]!;
    const stage = stageById.get(id) ?? 'other';
    if (stage === 'idle') {
      idleUs += dur;
      continue;
    }
    byStage.set(stage, (byStage.get(stage) ?? 0) + dur);
    if (stage === 'other') {
      const name = nameById.get(id) ?? '?';
      other.set(name, (other.get(name) ?? 0) + dur);
    }
  }
  const cpuUs = [...byStage.values()].reduce((a, b) => a + b, 0);
  const topOther = [...other.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([name, us]) => ({ name, us }));
  return { byStage, idleUs, cpuUs, topOther };
}

/** Several threads' times added (the workers). */
export function addTimes(all: readonly StageTimes[]): StageTimes {
  const byStage = new Map<Stage, number>();
  const other = new Map<string, number>();
  for (const s of all) {
    for (const [k, v] of s.byStage) byStage.set(k, (byStage.get(k) ?? 0) + v);
    for (const o of s.topOther) other.set(o.name, (other.get(o.name) ?? 0) + o.us);
  }
  return {
    byStage,
    idleUs: all.reduce((a, s) => a + s.idleUs, 0),
    cpuUs: all.reduce((a, s) => a + s.cpuUs, 0),
    topOther: [...other.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, us]) => ({ name, us })),
  };
}
