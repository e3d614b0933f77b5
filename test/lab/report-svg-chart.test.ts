/**
 * The SVG line chart is pure: scales, ticks, paths with gaps, label layout
 * and escaping are checked with plain arithmetic and string matching. The
 * browser test checks that the result draws.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  escapeXml,
  extent,
  formatTick,
  lineChart,
  linearScale,
  linePath,
  logDomain,
  logScale,
  logTicks,
  niceLinearDomain,
  niceStep,
  niceTicks,
  placeLabels,
  prefersLog,
  type ChartSeries,
} from '../../src/lab/report/svg-chart.js';

const near = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) < eps, `${a} ≈ ${b}`);

describe('escapeXml', () => {
  it('escapes the five XML specials and nothing else', () => {
    assert.equal(
      escapeXml(`<a href="x">Tom & 'Jerry'</a>`),
      '&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;',
    );
    assert.equal(escapeXml('p99 — 4 s ×2'), 'p99 — 4 s ×2');
    assert.equal(escapeXml('&amp;'), '&amp;amp;', 'already-escaped text is escaped again, not trusted');
  });
});

describe('scales', () => {
  it('linear maps the domain onto the range, inverted ranges included', () => {
    const s = linearScale(0, 100, 50, 250);
    assert.equal(s(0), 50);
    assert.equal(s(100), 250);
    assert.equal(s(25), 100);
    assert.equal(s(150), 350, 'extrapolates; callers clamp');
    const y = linearScale(0, 400, 200, 20);
    assert.equal(y(0), 200);
    assert.equal(y(400), 20);
    assert.equal(y(200), 110);
  });

  it('linear with a degenerate domain maps everything to the middle instead of dividing by zero', () => {
    const s = linearScale(5, 5, 0, 100);
    assert.equal(s(5), 50);
    assert.equal(s(1e9), 50);
  });

  it('log maps decades evenly and clamps zero and negatives to the bottom', () => {
    const s = logScale(1, 1000, 300, 0);
    assert.equal(s(1), 300);
    near(s(10), 200);
    near(s(100), 100);
    near(s(1000), 0);
    assert.equal(s(0), 300);
    assert.equal(s(-5), 300);
    assert.throws(() => logScale(0, 10, 0, 1), /positive/);
  });
});

describe('ticks and domains', () => {
  it('niceStep picks 1, 2 or 5 times a power of ten', () => {
    assert.equal(niceStep(100, 5), 20);
    assert.equal(niceStep(60, 12), 5);
    assert.equal(niceStep(1, 4), 0.5);
    assert.equal(niceStep(3_000_000, 4), 1_000_000);
    assert.equal(niceStep(0, 5), 1);
  });

  it('niceTicks are round multiples inside the range, without float drift', () => {
    assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
    assert.deepEqual(niceTicks(0, 0.3, 3), [0, 0.1, 0.2, 0.3]);
    assert.deepEqual(niceTicks(0, 60, 12), [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]);
    assert.deepEqual(niceTicks(3, 17, 3), [5, 10, 15]);
    assert.deepEqual(niceTicks(100, 0, 5), [0, 20, 40, 60, 80, 100], 'a reversed range is the same range');
    assert.deepEqual(niceTicks(3, 3), [3]);
    assert.deepEqual(niceTicks(0, Infinity), []);
  });

  it('a linear domain starts at 0 and ends on the next nice tick', () => {
    assert.deepEqual(niceLinearDomain(397), [0, 400]);
    assert.deepEqual(niceLinearDomain(400), [0, 400]);
    assert.deepEqual(niceLinearDomain(2_500_000), [0, 3_000_000]);
    assert.deepEqual(niceLinearDomain(0.3), [0, 0.3]);
    assert.deepEqual(niceLinearDomain(0), [0, 1], 'all zeros still has an axis');
    assert.deepEqual(niceLinearDomain(NaN), [0, 1]);
  });

  it('a log domain covers whole decades, and ticks add 2s and 5s only when there are few decades', () => {
    assert.deepEqual(logDomain(3.2, 120_000), [1, 1_000_000]);
    assert.deepEqual(logDomain(10, 10), [10, 100]);
    assert.deepEqual(logDomain(0.4, 2000), [0.1, 10_000]);
    assert.deepEqual(logTicks(1, 1000), [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
    assert.deepEqual(logTicks(1, 1_000_000), [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]);
    assert.deepEqual(logTicks(0.1, 10), [0.1, 0.2, 0.5, 1, 2, 5, 10]);
  });

  it('auto prefers log when positive values span two decades', () => {
    assert.equal(prefersLog([10, 2000]), true);
    assert.equal(prefersLog([10, 999]), false);
    assert.equal(prefersLog([0, 0, 5000]), false, 'zeros do not count');
    assert.equal(prefersLog([]), false);
  });

  it('extent handles runs too long to spread into Math.max', () => {
    const long = Array.from({ length: 300_000 }, (_, i) => i % 1000);
    assert.deepEqual(extent(long), [0, 999]);
  });

  it('formatTick is compact for very large values and exact for small ones', () => {
    assert.equal(formatTick(0), '0');
    assert.equal(formatTick(950), '950');
    assert.equal(formatTick(1000), '1k');
    assert.equal(formatTick(1500), '1.5k');
    assert.equal(formatTick(12_000), '12k');
    assert.equal(formatTick(3_000_000), '3M');
    assert.equal(formatTick(2.5e12), '2.5T');
    assert.equal(formatTick(0.25), '0.25');
    assert.equal(formatTick(0.1), '0.1');
    assert.equal(formatTick(-500), '-500');
  });
});

describe('linePath', () => {
  const id = (v: number): number => v;

  it('breaks the line at every null or non-finite value and keeps lone points as dots', () => {
    const points = [
      { x: 0, y: 1 },
      { x: 1, y: 2 },
      { x: 2, y: null },
      { x: 3, y: 4 },
      { x: 4, y: 5 },
      { x: 5, y: NaN },
      { x: 6, y: 7 },
      { x: 7, y: Infinity },
    ];
    const p = linePath(points, id, id);
    assert.equal(p.d, 'M0 1L1 2M3 4L4 5');
    assert.deepEqual(p.isolated, [[6, 7]]);
  });

  it('applies the scales and rounds to a tenth of a pixel', () => {
    const p = linePath(
      [
        { x: 0, y: 0 },
        { x: 1, y: 1 / 3 },
      ],
      (x) => x * 100,
      (y) => 200 - y * 100,
    );
    assert.equal(p.d, 'M0 200L100 166.7');
  });

  it('draws nothing for no points or only nulls', () => {
    assert.deepEqual(linePath([], id, id), { d: '', isolated: [] });
    assert.deepEqual(
      linePath(
        [
          { x: 0, y: null },
          { x: 1, y: null },
        ],
        id,
        id,
      ),
      { d: '', isolated: [] },
    );
  });
});

describe('placeLabels', () => {
  it('keeps labels on the first row while they do not overlap, then stacks them', () => {
    const placed = placeLabels(
      [
        { x: 100, width: 50 },
        { x: 300, width: 50 },
        { x: 120, width: 50 },
        { x: 130, width: 50 },
        { x: 140, width: 50 },
      ],
      3,
      1000,
    );
    assert.deepEqual(
      placed.map((p) => p.row),
      [0, 0, 1, 2, -1],
      'the fourth crowded label finds no row: its tick is drawn without text',
    );
    assert.equal(placed[0]!.left, 103);
    assert.equal(placed[0]!.anchor, 'start');
  });

  it('ends a label at its tick when it would run past the right edge', () => {
    const [p] = placeLabels([{ x: 980, width: 60 }], 3, 1000);
    assert.equal(p!.anchor, 'end');
    assert.equal(p!.left, 980 - 3 - 60);
  });
});

describe('lineChart', () => {
  const series: ChartSeries[] = [
    { label: 'on <fast>', color: '#0072B2', points: [0, 1, 2, 3, 4].map((x) => ({ x, y: 100 + x })) },
    {
      label: 'off & slow',
      color: '#E69F00',
      dash: '7 4',
      points: [0, 1, 2, 3, 4].map((x) => ({ x, y: x === 2 ? null : 50 })),
    },
  ];

  it('draws one path per series, the band, the marker, axes and a legend, all escaped', () => {
    const svg = lineChart({
      id: 'c<1>',
      title: 'Goodput <per> second & more',
      yLabel: 'goodput/s',
      series,
      bands: [{ from: 1, to: 3, label: 'fault', title: 'provider <hang> & reset' }],
      markers: [{ x: 2, label: 'breaker <open>', title: 'breaker provider open' }],
    });
    assert.match(svg, /^<svg [^>]*class="chart"[^>]*id="c_1_"/);
    assert.ok(svg.endsWith('</svg>'));
    assert.equal(
      (svg.match(/<path /g) ?? []).length,
      2,
      'one <path> per series (a gap is a second subpath, not a second path)',
    );
    assert.equal((svg.match(/<rect class="band"/g) ?? []).length, 1);
    assert.equal((svg.match(/<g class="marker">/g) ?? []).length, 1);
    assert.match(svg, /Goodput &lt;per&gt; second &amp; more/);
    assert.match(svg, /on &lt;fast&gt;/);
    assert.match(svg, /off &amp; slow/);
    assert.match(svg, /breaker &lt;open&gt;/);
    assert.match(svg, /provider &lt;hang&gt; &amp; reset/);
    assert.match(svg, /stroke-dasharray="7 4"/);
    assert.match(svg, />time \(s\)</);
    assert.match(svg, />fault window</, 'the band has a legend entry');
    assert.doesNotMatch(
      svg,
      /<(?!\/?(svg|title|text|rect|line|path|circle|g|clipPath)[ >/])/,
      'only the elements the chart draws',
    );
    assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  });

  it('gaps: a series with a null in the middle is one path with two subpaths', () => {
    const svg = lineChart({ id: 'g', title: 't', yLabel: 'y', series: [series[1]!] });
    const d = /<path d="([^"]+)"/.exec(svg)?.[1] ?? '';
    assert.equal((d.match(/M/g) ?? []).length, 2);
  });

  it('switches to a log axis on auto when the values span decades, and says so', () => {
    const wide: ChartSeries = {
      label: 'p99',
      color: '#000',
      points: [
        { x: 0, y: 5 },
        { x: 1, y: 4000 },
      ],
    };
    const svg = lineChart({ id: 'p', title: 'p99', yLabel: 'p99 (ms)', yScale: 'auto', series: [wide] });
    assert.match(svg, /p99 \(ms\), log scale/);
    assert.match(svg, />1k</);
    assert.match(svg, />10k</);
    const lin = lineChart({ id: 'p', title: 'p99', yLabel: 'p99 (ms)', yScale: 'linear', series: [wide] });
    assert.doesNotMatch(lin, /log scale/);
  });

  it('labels very large values compactly', () => {
    const big: ChartSeries = {
      label: 'rps',
      color: '#000',
      points: [
        { x: 0, y: 2_500_000 },
        { x: 1, y: 40_000 },
      ],
    };
    const svg = lineChart({ id: 'b', title: 'big', yLabel: 'goodput/s', series: [big] });
    assert.match(svg, />3M</);
    assert.match(svg, />1M</);
  });

  it('shows "no data" with no invented y scale when nothing was measured', () => {
    const svg = lineChart({
      id: 'e',
      title: 'empty',
      yLabel: 'y',
      series: [{ label: 'a', color: '#000', points: [] }],
    });
    assert.match(svg, />no data</);
    assert.doesNotMatch(svg, /<path /);
    assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  });

  it('draws a lone point between gaps as a dot', () => {
    const lone: ChartSeries = {
      label: 'a',
      color: '#000',
      points: [
        { x: 0, y: null },
        { x: 1, y: 3 },
        { x: 2, y: null },
      ],
    };
    const svg = lineChart({ id: 'l', title: 'lone', yLabel: 'y', series: [lone] });
    assert.equal((svg.match(/<circle /g) ?? []).length, 1);
  });

  it('honours a given x range and clamps bands and markers into it', () => {
    const svg = lineChart({
      id: 'x',
      title: 'x',
      yLabel: 'y',
      xDomain: [0, 10],
      series,
      bands: [{ from: 8, to: 30 }],
      markers: [{ x: 50, label: 'late' }],
      width: 500,
    });
    assert.match(svg, />10</, 'the last x tick is the domain end');
    const band = /<rect class="band" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/.exec(svg);
    assert.ok(band);
    assert.ok(Number(band[1]) + Number(band[2]) <= 500 - 14 + 0.1, 'the band stops at the plot edge');
  });
});
