/**
 * Every runbook link an operator is handed points at a section that exists:
 * the alerts' `runbook_url` (the committed rules, their promtool test, and
 * what `bulwark slo rules` generates) and the `docs/runbook.md#...` links in
 * log lines. A renamed heading would otherwise turn the page's one link into
 * the top of a long document, found out during an incident.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_RULES_CONFIG, renderRules } from '../../src/slo/rules.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

/** GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors GitHub renders for a Markdown file: ATX headings outside code fences, repeats numbered -1, -2. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1]![0];
      else if (f[1]![0] === fence) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    const h = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1]!.replace(/`/g, ''));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const runbookUrls = (text: string) => [...text.matchAll(/runbook_url: "([^"]+)"/g)].map((m) => m[1]!);

test('the slug rules match GitHub: punctuation dropped, repeats numbered, code fences ignored', () => {
  const md = [
    '# Metastable cascade: order of intervention',
    '## Verification checklist (after any intervention)',
    '### db-pool-saturated',
    '```sh',
    '# not a heading',
    '```',
    '## Alerts',
    '## Alerts',
  ].join('\n');
  assert.deepEqual(
    [...anchors(md)],
    [
      'metastable-cascade-order-of-intervention',
      'verification-checklist-after-any-intervention',
      'db-pool-saturated',
      'alerts',
      'alerts-1',
    ],
  );
});

test('every runbook_url of the alerts, committed or generated, names a heading of docs/runbook.md', () => {
  const sections = anchors(read('docs/runbook.md'));
  const sources = {
    'deploy/prometheus/bulwark-rules.yml': read('deploy/prometheus/bulwark-rules.yml'),
    'deploy/prometheus/bulwark-rules.test.yml': read('deploy/prometheus/bulwark-rules.test.yml'),
    'bulwark slo rules (defaults)': renderRules(DEFAULT_RULES_CONFIG),
  };
  const alertNames = (text: string) => [...text.matchAll(/^\s*- alert: (\S+)/gm)].map((m) => m[1]!);
  for (const [where, text] of Object.entries(sources)) {
    const links = runbookUrls(text);
    assert.ok(links.length >= 9, `${where}: ${links.length} runbook links`);
    for (const link of links) {
      const hash = link.indexOf('#');
      assert.ok(hash > 0, `${where}: ${link} names no section`);
      assert.equal(link.slice(0, hash), DEFAULT_RULES_CONFIG.runbookUrl, `${where}: ${link} is the runbook`);
      const anchor = link.slice(hash + 1);
      assert.ok(sections.has(anchor), `${where}: ${link}: no heading "${anchor}" in docs/runbook.md`);
    }
  }
  // Every alert carries a link (a rule added without one fails here).
  const rules = sources['deploy/prometheus/bulwark-rules.yml'];
  assert.equal(runbookUrls(rules).length, alertNames(rules).length, 'one runbook_url per alert');
});

test('every docs/runbook.md#anchor written in the source names a heading of docs/runbook.md', () => {
  const sections = anchors(read('docs/runbook.md'));
  const files = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : [],
    );
  const links = files('src').flatMap((f) =>
    [...read(f).matchAll(/runbook\.md#([A-Za-z0-9_-]+)/g)].map((m) => ({ f, anchor: m[1]! })),
  );
  assert.ok(links.length >= 1, 'the reconciler links its runbook section');
  for (const { f, anchor } of links)
    assert.ok(sections.has(anchor), `${f}: docs/runbook.md#${anchor}: no such heading`);
});
