/**
 * The HTML report in a real headless Chromium, loaded from a file:// path the
 * way a reader opens it: it must make no request beyond the file itself, log
 * no error (a CSP violation would show here), and draw every chart with a
 * real size, its lines, shaded fault windows and event ticks. The screenshot
 * is for a human to look at: /tmp/bulwark-report.png.
 */
import { launchChromium } from '../support/browser.js';
import { chromiumTool } from '../support/system-tools.js';

const chromium = chromiumTool();
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { renderHtml } from '../../src/lab/report/render.js';
import { fixtureReport } from './fixtures/report-fixture.js';

const SCREENSHOT = '/tmp/bulwark-report.png';

/** The one SVG DOM member these checks use (the project compiles without the DOM lib). */
interface Graphic {
  getBBox(): { width: number; height: number };
}

let browser: Browser | undefined;
let page: Page;
let dir: string;
let fileUrl: string;
const requests: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (chromium.skip) return;
  dir = await mkdtemp(join(tmpdir(), 'bulwark-report-'));
  const file = join(dir, 'report.html');
  await writeFile(file, renderHtml(fixtureReport()));
  fileUrl = pathToFileURL(file).href;
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') pageErrors.push(m.text());
  });
  page.on('requestfailed', (r) => pageErrors.push(`request failed: ${r.url()}`));
  await page.goto(fileUrl, { waitUntil: 'load' });
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the HTML report in headless Chromium', { skip: chromium.skip }, () => {
  it('loads with no request beyond its own file and no error', () => {
    assert.deepEqual(requests, [fileUrl]);
    assert.deepEqual(pageErrors, []);
  });

  it('draws three charts per scenario, each with a real size, lines, fault bands and event ticks', async () => {
    const charts = await page.$$eval('svg.chart', (els) =>
      els.map((el) => {
        const box = el.getBoundingClientRect();
        const pathBoxes = [...el.querySelectorAll('g.series path')].map((p) => (p as unknown as Graphic).getBBox());
        return {
          width: box.width,
          height: box.height,
          // A flat line (no 503 at all) has zero height but still spans the time axis.
          paths: pathBoxes.filter((b) => b.width > 0).length,
          bands: [...el.querySelectorAll('rect.band')].filter((r) => (r as unknown as Graphic).getBBox().width > 0)
            .length,
          markers: el.querySelectorAll('g.marker').length,
        };
      }),
    );
    assert.equal(charts.length, 6);
    for (const c of charts) {
      assert.ok(c.width > 600 && c.height > 150, `chart box ${c.width}x${c.height}`);
      assert.equal(c.paths, 4, 'one drawn line per variant');
      assert.equal(c.bands, 1, 'the fault window is shaded');
      assert.ok(c.markers >= 4, 'event ticks are drawn');
    }
  });

  it('keeps chart text apart: no two labels in a chart overlap', async () => {
    const overlaps = await page.$$eval('svg.chart', (els) =>
      els.flatMap((el) => {
        const boxes = [...el.querySelectorAll('text')].map((t) => ({
          text: t.textContent ?? '',
          r: t.getBoundingClientRect(),
        }));
        const hits: string[] = [];
        for (let i = 0; i < boxes.length; i++) {
          for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i]!.r;
            const b = boxes[j]!.r;
            if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) {
              hits.push(`${el.id}: "${boxes[i]!.text}" / "${boxes[j]!.text}"`);
            }
          }
        }
        return hits;
      }),
    );
    assert.deepEqual(overlaps, []);
  });

  it('shows the failing check and the escaped finding as text', async () => {
    const text = await page.locator('body').innerText();
    assert.match(text, /1 of 6 checks failed/);
    assert.match(text, /key <k-1042> & 13 others/);
    assert.equal(await page.locator('.fail').count(), 2, 'summary row and scenario row');
  });

  it('saves a screenshot for a human to read', async () => {
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });
});
