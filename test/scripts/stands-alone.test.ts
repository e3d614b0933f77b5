/**
 * The repository stands alone: someone who clones it has every document it
 * cites. Nothing may point outside the repository (a sibling `shared/` folder,
 * an issue tracker's numbers) and every relative Markdown link must resolve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && !f.startsWith('docs/lab/') && !f.endsWith('package-lock.json') && !/\.(png|svg|html)$/.test(f));

// Built from pieces so this file does not match itself.
// A sibling folder named shared (the lookahead keeps names such as shared-state legal).
const OUTSIDE = [new RegExp(['\\.\\.', 'shared(?![\\w-])'].join('/')), new RegExp(['issue', ' #\\d'].join(''), 'i')];

test('no tracked file points outside the repository', () => {
  const hits: string[] = [];
  for (const f of tracked) {
    const text = readFileSync(path.join(root, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      if (OUTSIDE.some((re) => re.test(line))) hits.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, []);
});

test('every relative link in README.md and docs/*.md resolves to a file in the repository', () => {
  const broken: string[] = [];
  for (const f of tracked.filter((t) => t.endsWith('.md'))) {
    const text = readFileSync(path.join(root, f), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (!target || /^[a-z]+:/i.test(target)) continue;
      const resolved = path.resolve(path.dirname(path.join(root, f)), target);
      if (!resolved.startsWith(root + path.sep) || !existsSync(resolved)) broken.push(`${f}: ${m[1]}`);
    }
  }
  assert.deepEqual(broken, []);
});

test('docs/design.md exists and README links it', () => {
  assert.ok(existsSync(path.join(root, 'docs/design.md')));
  assert.match(readFileSync(path.join(root, 'README.md'), 'utf8'), /\]\(docs\/design\.md\)/);
});

test('every "design.md §N" (and "design §N") reference names a section docs/design.md has', () => {
  const design = readFileSync(path.join(root, 'docs/design.md'), 'utf8');
  const sections = new Map<string, string>();
  const parts = design.split(/^## /m).slice(1);
  for (const part of parts) {
    const n = /^(\d+)\. /.exec(part)?.[1];
    if (n) sections.set(n, part);
  }
  assert.ok(sections.size >= 10, `design.md has ${sections.size} numbered sections`);
  const bad: string[] = [];
  let refs = 0;
  for (const f of tracked) {
    const text = readFileSync(path.join(root, f), 'utf8').replace(/\n\s*(?:\*|\/\/|#)?\s*/g, ' ');
    // "design.md §3 and §4", "design §6", "docs/design.md §11, "Clients"".
    for (const m of text.matchAll(/design(?:\.md)? §(\d+)((?:(?:,| and| or) §\d+)*)(?:, "([^"]+)")?/g)) {
      for (const n of [m[1]!, ...[...m[2]!.matchAll(/§(\d+)/g)].map((x) => x[1]!)]) {
        refs++;
        const section = sections.get(n);
        if (!section) bad.push(`${f}: ${m[0]} (no section ${n})`);
        else if (m[3] && !section.includes(m[3])) bad.push(`${f}: ${m[0]} (§${n} never says "${m[3]}")`);
      }
    }
  }
  assert.ok(refs >= 10, `${refs} references found`);
  assert.deepEqual(bad, []);
});
