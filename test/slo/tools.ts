/**
 * Shared by the SLO tests: paths of the deploy files, the compiled CLI run as
 * a child process (asynchronously, so a fake server in the test process can
 * answer it), and the Prometheus binaries (found through
 * test/support/system-tools.ts: the suites skip without them, and
 * BULWARK_REQUIRE_SYSTEM_TOOLS=1 makes a missing one fail).
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prometheusTool, promtoolTool } from '../support/system-tools.js';

// Compiled layout: dist/test/slo/tools.js → the repository root is three levels up.
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const RULES_FILE = path.join(ROOT, 'deploy', 'prometheus', 'bulwark-rules.yml');
export const RULES_TEST_FILE = path.join(ROOT, 'deploy', 'prometheus', 'bulwark-rules.test.yml');
export const PROMETHEUS_CONFIG = path.join(ROOT, 'deploy', 'prometheus', 'prometheus.yml');
export const DASHBOARD_FILE = path.join(ROOT, 'deploy', 'grafana', 'bulwark-dashboard.json');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node dist/src/cli/main.js …args` without blocking the event loop. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Absolute path of a Prometheus binary, found as every suite finds a system
 * tool (test/support/system-tools.ts); throws a how-to-install message when
 * absent, so call it only from a test that skips on `promtoolTool().skip` /
 * `prometheusTool().skip`.
 */
export function prometheusBinary(name: 'promtool' | 'prometheus'): string {
  const tool = name === 'promtool' ? promtoolTool() : prometheusTool();
  if (!tool.path) throw new Error(String(tool.skip));
  return tool.path;
}

export function promtool(args: string[], cwd = ROOT): Run {
  const r = spawnSync(prometheusBinary('promtool'), args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`promtool ${args.join(' ')} could not run: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Metric names in a Prometheus text exposition: sample names (histogram suffixes included) and declared families. */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const declared = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) /.exec(line);
    if (declared) names.add(declared[1]!);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

/** Identifiers in PromQL (or any text) that name a bulwark metric or recorded series. */
export function bulwarkNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) if (m[0].includes('bulwark_')) out.add(m[0]);
  return out;
}

/** Names the rules file records. */
export function recordedNames(rulesText: string): Set<string> {
  return new Set([...rulesText.matchAll(/^\s*- record: (\S+)$/gm)].map((m) => m[1]!));
}

export interface DashboardQuery {
  panel: string;
  expr: string;
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows' nested panels too) and query variables. */
export function dashboardQueries(dashboard: unknown): DashboardQuery[] {
  const d = dashboard as {
    panels?: Panel[];
    templating?: { list?: { name: string; query?: { query?: string } | string }[] };
  };
  interface Panel {
    title?: string;
    panels?: Panel[];
    targets?: { expr?: string }[];
  }
  const out: DashboardQuery[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title ?? '?', expr: t.expr });
      walk(p.panels);
    }
  };
  walk(d.panels);
  for (const v of d.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q) out.push({ panel: `variable ${v.name}`, expr: q });
  }
  return out;
}
