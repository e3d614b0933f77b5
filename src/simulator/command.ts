/**
 * `bulwark simulate`: options → simulator → one "listening" line → wait for a
 * signal → close. The listening line is a contract: parent processes (serve,
 * scenarios, tests) read it to learn ephemeral ports.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, int, parseOptions, renderHelp, str } from '../config/options.js';
import { parseFaults, type Faults, type ServiceName } from './faults.js';
import { DEFAULT_HOST, DEFAULT_SEED, startSimulator } from './index.js';

const SPECS = {
  host: str({
    flag: 'host',
    env: 'SIM_HOST',
    default: DEFAULT_HOST,
    pattern: /^\S+$/,
    allowed: 'a host name or IP address',
    doc: 'Interface both services listen on.',
  }),
  providerPort: int({
    flag: 'provider-port',
    env: 'SIM_PROVIDER_PORT',
    default: 8091,
    min: 0,
    max: 65535,
    doc: 'Payment provider port (0 picks a free port).',
  }),
  fxPort: int({
    flag: 'fx-port',
    env: 'SIM_FX_PORT',
    default: 8092,
    min: 0,
    max: 65535,
    doc: 'fx-rates port (0 picks a free port).',
  }),
  seed: int({
    flag: 'seed',
    env: 'SIM_SEED',
    default: DEFAULT_SEED,
    min: 0,
    max: 4_294_967_295,
    doc: 'Seed for fault dice, latency samples and rate drift; a seed and a request order replay exactly.',
  }),
  faults: str({
    flag: 'faults',
    default: '',
    doc: 'JSON file { "provider": {...}, "fx": {...} } with fault sets applied at start (empty: healthy).',
  }),
};

const SUMMARY =
  'Runs the fault-injectable downstream simulator: a payment provider (POST /v1/charges, GET /v1/charges/:key) ' +
  'and fx-rates (GET /v1/rates/:pair), each with a control API: GET/PUT/DELETE /_faults, GET/DELETE /_ledger.';

export async function simulateCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values, help } = parseOptions(SPECS, argv, env);
  if (help) {
    process.stdout.write(`${renderHelp('bulwark simulate [options]', SUMMARY, SPECS)}\n`);
    return;
  }
  const faults = values.faults === '' ? {} : await loadFaultFile(values.faults);
  // Listen for signals before listening on ports: a parent may signal as soon as it reads the line.
  let onSignal!: (signal: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const sim = await startSimulator({
      host: values.host,
      providerPort: values.providerPort,
      fxPort: values.fxPort,
      seed: values.seed,
      faults,
    }).catch((err: unknown) => {
      throw listenError(err, values);
    });
    log({
      level: 'info',
      msg: 'listening',
      service: 'simulator',
      providerUrl: sim.providerUrl,
      fxUrl: sim.fxUrl,
      providerPort: sim.providerPort,
      fxPort: sim.fxPort,
    });
    const signal = await signalled;
    await sim.close();
    log({ level: 'info', msg: 'stopped', service: 'simulator', signal });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

async function loadFaultFile(file: string): Promise<{ provider?: Faults; fx?: Faults }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `--faults cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--faults ${JSON.stringify(file)} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(
      `--faults ${JSON.stringify(file)} must hold a JSON object { "provider": {...}, "fx": {...} }`,
    );
  }
  const out: { provider?: Faults; fx?: Faults } = {};
  for (const [name, set] of Object.entries(json)) {
    if (name !== 'provider' && name !== 'fx') {
      throw new ConfigError(
        `--faults ${JSON.stringify(file)}: ${JSON.stringify(name)} is not a service (allowed: provider, fx)`,
      );
    }
    const parsed = parseFaults(set, name as ServiceName);
    if (!parsed.ok) throw new ConfigError(`--faults ${JSON.stringify(file)}, ${name}: ${parsed.message}`);
    out[name] = parsed.faults;
  }
  return out;
}

/** A taken port is a configuration problem the user fixes with a flag: say which. */
function listenError(err: unknown, values: { host: string; providerPort: number; fxPort: number }): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    const flag = e.port === values.fxPort && e.port !== values.providerPort ? '--fx-port' : '--provider-port';
    const detail =
      e.code === 'EADDRNOTAVAIL'
        ? `--host ${values.host} is not an address of this machine`
        : `${flag} ${e.port ?? ''} is not available (${e.code})`;
    return new ConfigError(detail);
  }
  return err;
}

function log(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
