/**
 * Option machinery shared by every subcommand: one spec per option (flag,
 * environment variable, default, unit, doc), precedence flag > environment >
 * default, validated once into a frozen object. A bad value throws a
 * ConfigError whose message names the option, the value and what is allowed,
 * on one line.
 */

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface OptionSpec<T> {
  /** Long flag without dashes, e.g. `port` for `--port`. */
  readonly flag: string;
  /** Environment variable, e.g. `PORT`; omit for flag-only options. */
  readonly env?: string;
  readonly default: T;
  /** One line for --help; say what it does. */
  readonly doc: string;
  /** Unit shown in --help, e.g. `ms`, `bytes`. */
  readonly unit?: string;
  /** Turns the raw text into a value or returns the "allowed" phrase. */
  readonly parse: (raw: string) => { ok: true; value: T } | { ok: false; allowed: string };
  /** True for boolean flags, which take no value (`--hardened`). */
  readonly isSwitch?: boolean;
  /**
   * How a bad raw value is shown after "got" in the error (default: quoted):
   * secrets never appear in errors or logs (a URL's password is masked, a
   * secret is not shown).
   */
  readonly redact?: (raw: string) => string;
}

export type Specs = Record<string, OptionSpec<unknown>>;
export type Values<S extends Specs> = { readonly [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

interface IntBounds {
  min?: number;
  max?: number;
}

function describeRange({ min, max }: IntBounds, what: string): string {
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} >= ${min}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

export function int(o: Omit<OptionSpec<number>, 'parse' | 'isSwitch'> & IntBounds): OptionSpec<number> {
  const allowed = describeRange(o, 'an integer');
  return {
    ...o,
    parse: (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) return { ok: false, allowed };
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
        return { ok: false, allowed };
      }
      return { ok: true, value: n };
    },
  };
}

export function num(o: Omit<OptionSpec<number>, 'parse' | 'isSwitch'> & IntBounds): OptionSpec<number> {
  const allowed = describeRange(o, 'a number');
  return {
    ...o,
    parse: (raw) => {
      const n = Number(raw);
      if (
        raw.trim() === '' ||
        !Number.isFinite(n) ||
        (o.min !== undefined && n < o.min) ||
        (o.max !== undefined && n > o.max)
      ) {
        return { ok: false, allowed };
      }
      return { ok: true, value: n };
    },
  };
}

export function bool(o: Omit<OptionSpec<boolean>, 'parse' | 'isSwitch'>): OptionSpec<boolean> {
  return {
    ...o,
    isSwitch: true,
    parse: (raw) => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return { ok: true, value: true };
      if (['0', 'false', 'no', 'off'].includes(v)) return { ok: true, value: false };
      return { ok: false, allowed: 'true or false' };
    },
  };
}

export function str(
  o: Omit<OptionSpec<string>, 'parse' | 'isSwitch'> & { pattern?: RegExp; allowed?: string },
): OptionSpec<string> {
  return {
    ...o,
    parse: (raw) =>
      o.pattern && !o.pattern.test(raw)
        ? { ok: false, allowed: o.allowed ?? `text matching ${o.pattern}` }
        : { ok: true, value: raw },
  };
}

export function oneOf<T extends string>(
  o: Omit<OptionSpec<T>, 'parse' | 'isSwitch'> & { values: readonly T[] },
): OptionSpec<T> {
  return {
    ...o,
    parse: (raw) =>
      (o.values as readonly string[]).includes(raw)
        ? { ok: true, value: raw as T }
        : { ok: false, allowed: `one of ${o.values.join(', ')}` },
  };
}

/**
 * A URL as text with its password masked, also when it does not parse
 * (`postgres://u:p@h/db` → `postgres://u:***@h/db`).
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password !== '') u.password = '***';
    // libpq-style URLs may carry the password as a parameter.
    for (const k of [...u.searchParams.keys()])
      if (/^(password|pass|pwd|secret|token)$/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    // Not a URL: mask everything from the user's ":" to the last "@".
    return raw
      .replace(/^((?:[^:/?#]*:\/\/)?[^:/?#@]*):.*@/, '$1:***@')
      .replace(/(password|pass|pwd|secret|token)=[^&#]*/gi, '$1=***');
  }
}

/** A secret (a key, a token): its value is never shown, in --help nor in errors. */
export function secret(
  o: Omit<OptionSpec<string | undefined>, 'parse' | 'isSwitch' | 'redact'> & { minLength: number },
): OptionSpec<string | undefined> {
  return {
    ...o,
    redact: (raw) => `a value of ${raw.length} characters`,
    parse: (raw) =>
      raw.length >= o.minLength
        ? { ok: true, value: raw }
        : { ok: false, allowed: `at least ${o.minLength} characters` },
  };
}

/** An optional http(s) URL; empty means "not set". */
export function url(o: Omit<OptionSpec<string | undefined>, 'parse' | 'isSwitch'>): OptionSpec<string | undefined> {
  return {
    ...o,
    redact: (raw) => JSON.stringify(redactUrl(raw)),
    parse: (raw) => {
      if (raw === '') return { ok: true, value: undefined };
      try {
        const u = new URL(raw);
        if (!/^(https?|postgres(ql)?):$/.test(u.protocol)) return { ok: false, allowed: 'an http(s) or postgres URL' };
        return { ok: true, value: raw };
      } catch {
        return { ok: false, allowed: 'an absolute URL' };
      }
    },
  };
}

export interface Parsed<S extends Specs> {
  values: Values<S>;
  help: boolean;
  positionals: string[];
}

/**
 * Parse argv (without the node and script entries) and env against specs.
 * Throws ConfigError on an unknown flag or a bad value.
 */
export function parseOptions<S extends Specs>(specs: S, argv: readonly string[], env: NodeJS.ProcessEnv): Parsed<S> {
  // --help works whatever the environment or the other flags say: the text
  // lists the defaults, and nothing is validated.
  if (argv.some((a) => a === '--help' || a === '-h')) {
    const defaults = Object.fromEntries(Object.entries(specs).map(([key, spec]) => [key, spec.default]));
    return {
      values: Object.freeze(defaults) as Values<S>,
      help: true,
      positionals: argv.filter((a) => !a.startsWith('-')),
    };
  }
  const byFlag = new Map<string, [string, OptionSpec<unknown>]>();
  for (const [key, spec] of Object.entries(specs)) byFlag.set(spec.flag, [key, spec]);
  const fromFlags = new Map<string, string>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const entry = byFlag.get(name);
    if (!entry) throw new ConfigError(`unknown option --${name} (see --help)`);
    const [key, spec] = entry;
    let raw: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (raw === undefined) {
      if (
        spec.isSwitch &&
        (argv[i + 1] === undefined ||
          argv[i + 1]!.startsWith('--') ||
          !/^(true|false|1|0|yes|no|on|off)$/i.test(argv[i + 1]!))
      ) {
        raw = 'true';
      } else {
        raw = argv[++i];
        if (raw === undefined) throw new ConfigError(`option --${name} needs a value`);
      }
    }
    fromFlags.set(key, raw);
  }
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const flagRaw = fromFlags.get(key);
    const envRaw = spec.env !== undefined ? env[spec.env] : undefined;
    const raw = flagRaw ?? envRaw;
    if (raw === undefined) {
      values[key] = spec.default;
      continue;
    }
    const r = spec.parse(raw);
    if (!r.ok) {
      const source = flagRaw !== undefined ? `--${spec.flag}` : `${spec.env}`;
      throw new ConfigError(
        `${source} must be ${r.allowed}; got ${spec.redact ? spec.redact(raw) : JSON.stringify(raw)}`,
      );
    }
    values[key] = r.value;
  }
  return { values: Object.freeze(values) as Values<S>, help, positionals };
}

/** A heading of --help and the option keys it holds (the first group that claims a key gets it). */
export type HelpGroup = readonly [title: string, holds: (key: string) => boolean];

/**
 * --help text: every option with flag, env, unit and default, under the
 * headings of `groups` when given (options no group claims come last, under
 * "Other").
 */
export function renderHelp(usage: string, summary: string, specs: Specs, groups: readonly HelpGroup[] = []): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options (flag > environment > default):'];
  const sections = new Map<string, OptionSpec<unknown>[]>();
  for (const [key, spec] of Object.entries(specs)) {
    const title = groups.find(([, holds]) => holds(key))?.[0] ?? (groups.length > 0 ? 'Other' : '');
    const list = sections.get(title) ?? [];
    list.push(spec);
    sections.set(title, list);
  }
  const order = [...groups.map(([t]) => t), 'Other', ''];
  for (const title of order) {
    const list = sections.get(title);
    if (!list) continue;
    if (title) lines.push('', `${title}:`);
    for (const spec of list) {
      const head = `  --${spec.flag}${spec.isSwitch ? '' : ' <value>'}${spec.env ? `  [env ${spec.env}]` : ''}`;
      const def = spec.default === undefined ? 'unset' : JSON.stringify(spec.default);
      lines.push(head);
      lines.push(`      ${spec.doc}${spec.unit ? ` Unit: ${spec.unit}.` : ''} Default: ${def}.`);
    }
  }
  lines.push('', '  --help, -h');
  lines.push('      Show this text.');
  return lines.join('\n');
}
