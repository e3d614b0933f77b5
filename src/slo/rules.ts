/**
 * The Prometheus rules for the /charge SLO, generated from the SLO's three
 * settings (objective, latency threshold, window) so the numbers in the
 * recording rules, the alert thresholds and the annotations cannot drift
 * apart. `bulwark slo rules` prints them; deploy/prometheus/bulwark-rules.yml
 * is the output for the defaults, and a test fails when the two differ.
 *
 * Shape (Google SRE workbook, "Alerting on SLOs", multiwindow multi-burn-rate):
 * per job (replicas summed), the error ratio of /charge — answers that were
 * 5xx or slower than the threshold, over all answers — and its burn rate
 * (ratio / budget) over 5m, 30m, 1h, 6h, 3d and the SLO window; the budget
 * left in the window; and three alerts that need a long window (it has spent
 * real budget) and a short one (it is still burning, so the alert resets
 * minutes after a fix). Burn thresholds are the design's: 14.4× and 6× page,
 * 1× tickets.
 *
 * The SLI reads the request-duration histogram at the `le` bound equal to
 * the threshold, so the threshold must be one of the bounds every replica
 * exposes (LE_SECONDS); an interpolated threshold would be a guess.
 *
 * Cost: rate() over 3d and the SLO window reads every raw sample of the
 * /charge histogram series in the window at each evaluation. That is cheap
 * for a few replicas; a large fleet can move those two rules into a group
 * with `interval: 5m`.
 */
import { LE_SECONDS } from '../metrics/prometheus.js';
import { DEFAULT_SLO, errorBudget } from './burn.js';

export interface SloRulesConfig {
  /** Share of /charge requests that must be good. Default 0.999. */
  objective: number;
  /** A good answer is non-5xx within this, ms; must be a histogram bound. Default 300. */
  latencyThresholdMs: number;
  /** SLO window, days. Default 28. */
  windowDays: number;
  /** Scrape job of the gateway, for the scrape-failure alert. Default "bulwark". */
  job: string;
  /**
   * Absolute URL of the runbook the alerts link to (Alertmanager and its
   * receivers cannot resolve a path); each alert appends its section anchor.
   * The default is a placeholder: set it to where your copy of
   * docs/runbook.md is served.
   */
  runbookUrl: string;
}

export const DEFAULT_RULES_CONFIG: Readonly<SloRulesConfig> = Object.freeze({
  objective: DEFAULT_SLO.objective,
  latencyThresholdMs: DEFAULT_SLO.latencyThresholdMs,
  windowDays: DEFAULT_SLO.windowDays,
  job: 'bulwark',
  runbookUrl: 'https://runbooks.example.com/bulwark/runbook',
});

/** Windows the burn-rate alerts read. */
export const ALERT_WINDOWS = ['5m', '30m', '1h', '6h', '3d'] as const;

/** Names of the recorded series (stable: the dashboard and `slo gate` read them). */
export const RECORDS = {
  errorRatio: (window: string) => `job:bulwark_charge_slo_errors:ratio_rate${window}`,
  burnRate: (window: string) => `job:bulwark_charge_slo_burn:rate${window}`,
  /** 1 − burn rate over the SLO window: 1 untouched, 0 spent, negative overspent; NaN without /charge traffic. */
  budgetRemaining: 'job:bulwark_charge_slo_error_budget:remaining_ratio',
} as const;

export interface BurnAlert {
  alert: string;
  severity: 'page' | 'ticket';
  /** Burn rate both windows must exceed. */
  factor: number;
  long: (typeof ALERT_WINDOWS)[number];
  short: (typeof ALERT_WINDOWS)[number];
  /** Rides out one evaluation's spike; small next to the short window, so the alert still resets quickly. */
  for: string;
  anchor: string;
}

export const BURN_ALERTS: readonly BurnAlert[] = [
  {
    alert: 'BulwarkChargeErrorBudgetFastBurn',
    severity: 'page',
    factor: 14.4,
    long: '1h',
    short: '5m',
    for: '2m',
    anchor: 'charge-slo-fast-burn',
  },
  {
    alert: 'BulwarkChargeErrorBudgetSlowBurn',
    severity: 'page',
    factor: 6,
    long: '6h',
    short: '30m',
    for: '15m',
    anchor: 'charge-slo-slow-burn',
  },
  {
    alert: 'BulwarkChargeErrorBudgetBurn',
    severity: 'ticket',
    factor: 1,
    long: '3d',
    short: '6h',
    for: '1h',
    anchor: 'charge-slo-budget-burn',
  },
];

/** The `le` label value of the bound equal to the threshold, as the gateway writes it; throws RangeError when there is none. */
export function leLabelFor(latencyThresholdMs: number): string {
  const seconds = LE_SECONDS.find((le) => Math.abs(le * 1000 - latencyThresholdMs) < 1e-9);
  if (seconds === undefined) {
    throw new RangeError(
      `the latency threshold must be a histogram bucket bound, one of ${LE_SECONDS.map((s) => s * 1000).join(', ')} ms; got ${latencyThresholdMs}`,
    );
  }
  return String(seconds);
}

const q = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
const percent = (ratio: number): string => `${Number((ratio * 100).toPrecision(10))} %`;
const hoursText = (h: number): string =>
  h >= 48 ? `${Number((h / 24).toFixed(1))} days` : `${Number(h.toFixed(1))} hours`;

function block(indent: number, text: string): string {
  const pad = ' '.repeat(indent);
  return `|\n${text
    .split('\n')
    .map((l) => `${pad}${l}`)
    .join('\n')}`;
}

export function renderRules(c: SloRulesConfig): string {
  const le = leLabelFor(c.latencyThresholdMs);
  const budget = errorBudget(c.objective);
  if (!(Number.isInteger(c.windowDays) && c.windowDays >= 1))
    throw new RangeError(`windowDays must be an integer >= 1; got ${c.windowDays}`);
  const sloWindow = `${c.windowDays}d`;
  const windows = [...new Set<string>([...ALERT_WINDOWS, sloWindow])];
  const total = (w: string) =>
    `sum by (job) (rate(bulwark_http_request_duration_seconds_count{route="/charge"}[${w}]))`;
  const good = (w: string) =>
    `sum by (job) (rate(bulwark_http_request_duration_seconds_bucket{route="/charge",status_class!="5xx",le="${le}"}[${w}]))`;
  const what = `${percent(c.objective)} of POST /charge answered with a non-5xx status within ${c.latencyThresholdMs} ms, over ${c.windowDays} days`;
  const out: string[] = [
    '# Generated by `bulwark slo rules` (src/slo/rules.ts): do not edit. Regenerate with',
    `#   node dist/src/cli/main.js slo rules${c.objective !== DEFAULT_RULES_CONFIG.objective ? ` --objective ${c.objective}` : ''}${c.latencyThresholdMs !== DEFAULT_RULES_CONFIG.latencyThresholdMs ? ` --latency-threshold-ms ${c.latencyThresholdMs}` : ''}${c.windowDays !== DEFAULT_RULES_CONFIG.windowDays ? ` --window-days ${c.windowDays}` : ''}${c.job !== DEFAULT_RULES_CONFIG.job ? ` --job ${c.job}` : ''}${c.runbookUrl !== DEFAULT_RULES_CONFIG.runbookUrl ? ` --runbook-url ${c.runbookUrl}` : ''} > deploy/prometheus/bulwark-rules.yml`,
    `# SLO: ${what}. Error budget: ${percent(budget)} of requests.`,
    '# Check with `promtool check rules`; unit tests in bulwark-rules.test.yml (`promtool test rules`).',
    'groups:',
    '  - name: bulwark-charge-slo',
    '    rules:',
  ];
  for (const w of windows) {
    out.push(
      `      # Share of /charge answers over ${w} that were 5xx or slower than ${c.latencyThresholdMs} ms, all replicas of a job together.`,
      `      - record: ${RECORDS.errorRatio(w)}`,
      `        expr: ${block(10, `(\n  ${total(w)}\n  -\n  ${good(w)}\n)\n/\n${total(w)}`)}`,
      `      - record: ${RECORDS.burnRate(w)}`,
      `        expr: ${RECORDS.errorRatio(w)} / ${budget}`,
    );
  }
  out.push(
    `      # Share of the ${c.windowDays}-day error budget left (negative: overspent; NaN: no /charge traffic in the window).`,
    `      - record: ${RECORDS.budgetRemaining}`,
    `        expr: 1 - ${RECORDS.burnRate(sloWindow)}`,
    '',
    '  - name: bulwark-charge-slo-alerts',
    '    rules:',
  );
  const windowHours = c.windowDays * 24;
  for (const a of BURN_ALERTS) {
    const faster = a.factor === 1 ? 'faster than it lasts' : `${a.factor}x too fast`;
    out.push(
      `      - alert: ${a.alert}`,
      `        expr: ${RECORDS.burnRate(a.long)} > ${a.factor} and ${RECORDS.burnRate(a.short)} > ${a.factor}`,
      `        for: ${a.for}`,
      '        labels:',
      `          severity: ${a.severity}`,
      '          slo: charge',
      '        annotations:',
      `          summary: ${q(`/charge is spending its error budget ${faster} (${a.long} and ${a.short} windows)`)}`,
      `          description: ${q(
        `Job {{ $labels.job }}: /charge burn rate {{ printf "%.1f" $value }}x over ${a.long}, and above ${a.factor}x over ${a.short} too. ` +
          `At ${a.factor}x the ${c.windowDays}-day budget (${percent(budget)} of requests may be 5xx or slower than ${c.latencyThresholdMs} ms) lasts ${hoursText(windowHours / a.factor)}.`,
      )}`,
      `          runbook_url: ${q(`${c.runbookUrl}#${a.anchor}`)}`,
    );
  }
  out.push(
    '',
    '  # Causes, not symptoms: tickets that say where to look. The burn-rate alerts page when these spend the SLO.',
    '  - name: bulwark-saturation',
    '    rules:',
    '      # Not closed at any scrape for a minute: open, probing half-open, or forced open (a breaker cycling open/half-open must not reset the clock).',
    '      - alert: BulwarkBreakerOpen',
    '        expr: max by (job, instance, downstream) (max_over_time(bulwark_breaker_state{state="closed"}[1m])) == 0',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('The {{ $labels.downstream }} breaker of {{ $labels.instance }} has not closed for over a minute')}`,
    `          description: ${q('Calls to {{ $labels.downstream }} are refused with 503 breaker_open (provider) or served stale (fx). Check the downstream; bulwark_breaker_state shows open, half_open or forced_open.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#breaker-open`)}`,
    '      - alert: BulwarkDbPoolSaturated',
    '        expr: avg_over_time(bulwark_db_pool_in_use[5m]) / bulwark_db_pool_limit >= 0.9',
    '        for: 5m',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('The DB pool of {{ $labels.instance }} has been at least 90 % busy for 10 minutes')}`,
    `          description: ${q('{{ $value | humanizePercentage }} of DB slots in use on average over 5m. Charges queue for a slot (bulwark_db_pool_waiting) and get 503 db_unavailable past DB_ACQUIRE_TIMEOUT_MS.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#db-pool-saturated`)}`,
    '      - alert: BulwarkSheddingSustained',
    `        expr: ${block(10, 'sum by (job, instance) (rate(bulwark_shed_total[5m]))\n/\nsum by (job, instance) (rate(bulwark_http_requests_total{route=~"/charge|/charges/:key|/quote"}[5m]))\n> 0.01')}`,
    '        for: 10m',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('{{ $labels.instance }} has shed over 1 % of requests for 15 minutes')}`,
    `          description: ${q('{{ $value | humanizePercentage }} of requests refused with 503 overloaded over 5m (bulwark_shed_total by reason says why). The gateway is short of capacity for its load.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#shedding`)}`,
    '      # Every alert above is blind while scrapes fail.',
    '      - alert: BulwarkScrapeFailing',
    `        expr: up{job=${q(c.job)}} == 0`,
    '        for: 5m',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('Prometheus cannot scrape {{ $labels.instance }}')}`,
    `          description: ${q('/metrics of {{ $labels.instance }} has failed for 5 minutes; the SLO and saturation alerts cannot see it.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#scrape-failing`)}`,
    '',
    '  # Charges whose outcome is not known. The gauges are Postgres-wide (every replica reports the same rows), hence max by job.',
    '  - name: bulwark-charge-integrity',
    '    rules:',
    '      # Started rows normally live for a request (under a second) or a few reconciler tries; 15 minutes means the provider cannot say.',
    '      - alert: BulwarkChargeOutcomeUnknown',
    '        expr: max by (job) (bulwark_oldest_started_charge_age_seconds) > 900',
    '        for: 10m',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('A charge of {{ $labels.job }} has waited over 15 minutes for its outcome')}`,
    `          description: ${q('The oldest started charge is {{ $value | humanizeDuration }} old. The reconciler asks the provider again with growing gaps and hands the charge to an operator (needs_attention) after RECONCILE_MAX_ATTEMPTS tries.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#charge-outcome-unknown`)}`,
    '      # A ticket, not a page: the row is safe (never charged again automatically) and waiting hours changes nothing, but only a person can close it.',
    '      - alert: BulwarkChargesNeedAttention',
    '        expr: max by (job) (bulwark_charges_needing_attention) > 0',
    '        for: 1m',
    '        labels:',
    '          severity: ticket',
    '        annotations:',
    `          summary: ${q('{{ $value }} charge(s) of {{ $labels.job }} need an operator')}`,
    `          description: ${q('The reconciler gave up on these charges: the provider never told their outcome. They are not retried; a client retry gets 409 charge_needs_attention until an operator resolves them.')}`,
    `          runbook_url: ${q(`${c.runbookUrl}#charges-need-attention`)}`,
  );
  return `${out.join('\n')}\n`;
}
