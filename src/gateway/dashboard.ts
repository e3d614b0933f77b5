/**
 * GET /admin/dashboard: one self-contained page an on-call engineer opens
 * during an incident. It polls /admin/state once a second and keeps the last
 * two minutes of samples in the page itself, so the gateway holds no
 * dashboard state and a reload only loses the sparklines (the long view is
 * Prometheus and the Grafana dashboard).
 *
 * No build step and no external asset: the admin port is often reached over
 * an SSH tunnel from a laptop with no route to a CDN, and a page that waits
 * on a font during an outage is worse than no page. The CSP pins the inline
 * style and script by hash and allows requests to the admin origin only, so
 * the page cannot fetch anything else even if someone edits it carelessly.
 *
 * Values from the gateway are written with textContent, never innerHTML.
 * The script is a String.raw literal: it must contain no backtick and no
 * dollar-brace, and backslashes stay as written.
 */
import { createHash } from 'node:crypto';

const STYLE = String.raw`
:root{--bg:#f5f6f8;--card:#fff;--fg:#1c232b;--muted:#66717e;--line:#dde1e6;--ok:#1a7f37;--ok-bg:#e6f4ea;--warn:#8a5a00;--warn-bg:#fff3d1;--bad:#b42318;--bad-bg:#fde8e7;--spark:#5b7fa6;--spark2:#b07d2b;--frame:#f7f8fa;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1a1f25;--fg:#e4e8ec;--muted:#8d98a5;--line:#2c333b;--ok:#4cc06a;--ok-bg:#16301f;--warn:#e0a93a;--warn-bg:#372a10;--bad:#ff6b5e;--bad-bg:#3d1715;--spark:#7ea6d3;--spark2:#d9a552;--frame:#161a1f}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-variant-numeric:tabular-nums}
header{display:flex;flex-wrap:wrap;align-items:center;gap:10px 14px;padding:12px 20px;background:var(--card);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:1}
h1{font-size:17px;margin:0 8px 0 0;font-weight:600}h1 span{color:var(--muted);font-weight:400}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 10px;font-weight:600}
h2 small{text-transform:none;letter-spacing:0;font-weight:400}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(560px,100%),1fr));gap:16px;padding:16px 20px;max-width:1800px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;min-width:0;overflow-x:auto}
section.wide{grid-column:1/-1}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;border:1px solid var(--line);font-size:12px;white-space:nowrap}
.pill.ok{color:var(--ok);background:var(--ok-bg);border-color:transparent}
.pill.warn{color:var(--warn);background:var(--warn-bg);border-color:transparent}
.pill.bad{color:var(--bad);background:var(--bad-bg);border-color:transparent;font-weight:600}
.pill.off{color:var(--muted)}
#mechs{display:flex;flex-wrap:wrap;gap:6px}#mechs .pill b{font-weight:600}
#alerts{display:flex;flex-wrap:wrap;gap:6px}#status{margin-left:auto}
#token{font:inherit;font-size:12px;padding:2px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);width:11em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px 6px 0;vertical-align:top;border-top:1px solid var(--line)}
thead th{border-top:0;color:var(--muted);font-weight:500;font-size:12px}
tbody th{font-weight:500;white-space:nowrap}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.v{font-size:18px;font-weight:600;white-space:nowrap}.v .u{font-size:12px;font-weight:400;color:var(--muted);margin-left:2px}
td .v{font-size:16px}
.warn .v b,.v b.warn{color:var(--warn)}.bad .v b,.v b.bad{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px 16px}
.m{min-width:0}.k{font-size:12px;color:var(--muted);white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
svg.spark{display:block;width:100%;max-width:180px;height:26px;margin-top:3px;background:var(--frame);border-bottom:1px solid var(--line)}
.m.inline{display:flex;align-items:center;gap:12px}.m.inline .v{flex:none;min-width:8.5em}.m.inline svg.spark{flex:1 1 auto;width:auto;min-width:60px;max-width:200px;margin:0}
@media (max-width:900px){.m.inline{display:block}.m.inline .v{min-width:0}.m.inline svg.spark{width:100%;max-width:180px;margin-top:3px}}
svg.spark path{fill:none;stroke:var(--spark);stroke-width:1.5;vector-effect:non-scaling-stroke}
svg.spark path.l1{stroke:var(--spark2);stroke-dasharray:3 2}
svg.spark path.area{fill:var(--spark);opacity:.12;stroke:none}
.bar{height:6px;background:var(--line);border-radius:3px;margin-top:4px;max-width:180px;overflow:hidden}
.bar i{display:block;height:100%;width:0;background:var(--spark)}
.bar.warn i{background:var(--warn)}.bar.bad i{background:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(260px,100%),1fr));gap:12px}
.card{border:1px solid var(--line);border-left:5px solid var(--ok);border-radius:6px;padding:10px 12px}
.card.half_open{border-left-color:var(--warn)}.card.open,.card.forced_open{border-left-color:var(--bad)}
.card .top{display:flex;align-items:center;justify-content:space-between;gap:8px;margin-bottom:8px}
.card .name{font-size:16px;font-weight:600}
.card .grid{grid-template-columns:repeat(3,minmax(0,1fr));gap:8px}
.card .v{font-size:15px}
.state{font-size:13px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;padding:3px 10px;border-radius:4px;color:var(--ok);background:var(--ok-bg)}
.state.half_open{color:var(--warn);background:var(--warn-bg)}.state.open,.state.forced_open{color:#fff;background:var(--bad)}
.actions{display:flex;gap:8px;margin-top:10px;align-items:center;flex-wrap:wrap}
button{font:inherit;font-size:13px;padding:4px 12px;border-radius:5px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button:hover{border-color:var(--muted)}button:disabled{opacity:.5;cursor:wait}
button.danger{color:var(--bad)}
.msg{font-size:12px;color:var(--muted);min-height:1.4em;margin-top:6px}
.note,.empty{color:var(--muted);font-size:12px}
.sub{margin-top:14px}
.events{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px 16px}
.events dl{margin:0}.events dt{font-size:12px;color:var(--muted);font-weight:600;margin-bottom:2px}
.events dd{margin:0;display:flex;justify-content:space-between;gap:8px;font-size:13px}
.events dd span:first-child{color:var(--muted)}.events dd b{font-weight:500}.events dd b.zero{color:var(--muted);font-weight:400}
body.stale main{opacity:.55}
`;

const BODY = String.raw`
<header>
  <h1>bulwark <span>admin</span></h1>
  <span id="draining" class="pill ok" data-testid="draining" data-draining="false">serving</span>
  <div id="alerts" data-testid="alerts" aria-label="alerts"></div>
  <div id="mechs" aria-label="mechanisms"></div>
  <span id="status" class="pill" data-testid="poll-status">connecting…</span>
  <input id="token" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token, sent with breaker changes when ADMIN_TOKEN is set" data-testid="admin-token">
</header>
<main>
  <section class="wide" aria-labelledby="h-red">
    <h2 id="h-red">Traffic (RED) <small>· last 10 s per route · sparklines: last 2 min · latency amber above 300 ms, errors amber above 1 %</small></h2>
    <table><thead><tr><th>Route</th><th>Requests</th><th>Errors (5xx, incl. shed and breaker)</th><th>Latency p50 / p99 <small>(dashed: p50)</small></th></tr></thead><tbody id="red"></tbody></table>
  </section>
  <section aria-labelledby="h-br">
    <h2 id="h-br">Circuit breakers <small>· sparkline: failure %, dashed: slow-call %</small></h2>
    <div id="breakers" class="cards"></div>
  </section>
  <section aria-labelledby="h-bh">
    <h2 id="h-bh">Bulkheads and DB pool</h2>
    <table><thead><tr><th>Downstream</th><th>In use / limit</th><th>Waiting</th><th>Acquired</th><th>Rejected full</th><th>Rejected timeout</th></tr></thead><tbody id="bulkheads"></tbody></table>
    <p id="bulkheads-empty" class="empty" hidden>Bulkheads are off.</p>
  </section>
  <section aria-labelledby="h-adm">
    <h2 id="h-adm">Admission and event loop</h2>
    <div id="admission" class="grid"></div>
    <h2 class="sub">Worker threads</h2>
    <div id="workers" class="grid"></div>
  </section>
  <section aria-labelledby="h-rt">
    <h2 id="h-rt">Retries, timeouts, reconciler</h2>
    <div id="retries" class="grid"></div>
    <div id="events" class="events sub"></div>
  </section>
</main>
`;

const SCRIPT = String.raw`
(function () {
'use strict';
var POLL_MS = 1000, HISTORY = 120, STALE_MS = 3500, SVGNS = 'http://www.w3.org/2000/svg';
var series = Object.create(null), cells = Object.create(null), rows = Object.create(null);
var prev = null, lastOk = 0, lastError = '';
var STATE_TEXT = { closed: 'closed', open: 'open', half_open: 'half-open', forced_open: 'forced open' };
var EVENT_GROUPS = [['retry_provider_', 'Provider retries'], ['retry_suppressed_', 'Suppressed retries'], ['timeout_', 'Timeouts by stage'], ['reconcile_', 'Reconciler'], ['', 'Other']];

function $(id) { return document.getElementById(id); }
function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, ''); }
function isNum(v) { return typeof v === 'number' && isFinite(v); }
function fmt(v) { if (!isNum(v)) return '–'; var a = Math.abs(v); return a === 0 ? '0' : a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(1) : v.toFixed(2); }
function int(v) { return isNum(v) ? Math.round(v).toLocaleString('en-US') : '–'; }
function pct(r) { return isNum(r) ? fmt(r * 100) : '–'; }
function level(v, warn, bad) { return !isNum(v) ? '' : v >= bad ? 'bad' : v >= warn ? 'warn' : ''; }
function push(key, v) { var s = series[key] || (series[key] = []); s.push(isNum(v) ? v : null); if (s.length > HISTORY) s.shift(); return s; }

function spark(lines) {
  var svg = document.createElementNS(SVGNS, 'svg');
  svg.setAttribute('class', 'spark'); svg.setAttribute('viewBox', '0 0 120 24'); svg.setAttribute('preserveAspectRatio', 'none');
  var title = document.createElementNS(SVGNS, 'title'); svg.appendChild(title);
  var area = document.createElementNS(SVGNS, 'path'); area.setAttribute('class', 'area'); svg.appendChild(area);
  for (var i = 0; i < lines; i++) { var p = document.createElementNS(SVGNS, 'path'); p.setAttribute('class', 'l' + i); svg.appendChild(p); }
  return svg;
}
// Draw one or more series on a shared scale from 0; a null sample (a missed poll) breaks the line.
function draw(svg, list, floor, unit) {
  var max = floor || 0, W = 120, H = 24, step = W / (HISTORY - 1);
  list.forEach(function (s) { s.forEach(function (v) { if (v != null && v > max) max = v; }); });
  if (max <= 0) max = 1;
  var paths = svg.querySelectorAll('path');
  list.forEach(function (s, li) {
    var d = '', a = '', open = false, lastX = 0, off = HISTORY - s.length;
    for (var i = 0; i <= s.length; i++) {
      var v = i < s.length ? s[i] : null;
      if (v == null) { if (open) { a += 'L' + lastX + ' ' + H + 'Z'; open = false; } continue; }
      var x = +((off + i) * step).toFixed(2), y = +(H - 1 - (v / max) * (H - 2)).toFixed(2);
      d += (open ? 'L' : 'M') + x + ' ' + y;
      a += (open ? '' : 'M' + x + ' ' + H) + 'L' + x + ' ' + y;
      open = true; lastX = x;
    }
    paths[li + 1].setAttribute('d', d);
    if (li === 0) paths[0].setAttribute('d', a);
  });
  svg.firstChild.textContent = 'last 2 min, peak ' + fmt(max) + (unit ? ' ' + unit : '');
}

// A labelled number with optional unit, bar and sparkline; data-testid on the number itself.
function metric(parent, id, label, unit, opts) {
  opts = opts || {};
  var box = el('div', opts.inline ? 'm inline' : 'm'), v = el('div', 'v'), b = el('b', '', '–');
  b.setAttribute('data-testid', id);
  if (label) { var k = el('div', 'k', label); k.title = label; box.appendChild(k); }
  v.appendChild(b);
  var extra = null;
  if (opts.of) { v.appendChild(el('span', 'u', ' / ')); extra = el('b', '', '–'); extra.setAttribute('data-testid', opts.of); v.appendChild(extra); }
  if (unit) v.appendChild(el('span', 'u', unit));
  box.appendChild(v);
  var bar = null; if (opts.bar) { bar = el('div', 'bar'); bar.appendChild(el('i')); box.appendChild(bar); }
  var sp = opts.spark ? spark(opts.spark) : null; if (sp) box.appendChild(sp);
  parent.appendChild(box);
  return (cells[id] = { box: box, b: b, extra: extra, bar: bar, spark: sp, unit: unit });
}
function set(id, text, lvl, extraText) {
  var c = cells[id]; if (!c) return;
  c.b.textContent = text; c.b.className = lvl || '';
  if (c.extra && extraText != null) c.extra.textContent = extraText;
}
function fill(id, ratio) {
  var c = cells[id]; if (!c || !c.bar) return;
  var r = isNum(ratio) ? Math.max(0, Math.min(1, ratio)) : 0;
  c.bar.firstChild.style.width = (r * 100).toFixed(1) + '%';
  c.bar.className = 'bar ' + level(r, 0.8, 0.95);
}
function plot(id, keys, floor) { var c = cells[id]; if (c && c.spark) draw(c.spark, keys.map(function (k) { return series[k] || []; }), floor, c.unit); }
function rate(now, key, total) { if (!prev || !isNum(total) || !isNum(prev[key])) return null; var dt = (now - prev.t) / 1000; return dt > 0 ? Math.max(0, (total - prev[key]) / dt) : null; }
function sum(o, prefix) { var n = 0; for (var k in o) if (k.indexOf(prefix) === 0 && isNum(o[k])) n += o[k]; return n; }

function renderHeader(s) {
  var d = $('draining'), dr = s.draining === true;
  d.textContent = dr ? 'DRAINING' : 'serving'; d.className = 'pill ' + (dr ? 'bad' : 'ok'); d.setAttribute('data-draining', String(dr));
  var m = $('mechs'), mech = s.mechanisms || {};
  Object.keys(mech).forEach(function (k) {
    var id = 'mechanism-' + slug(k), chip = m.querySelector('[data-key="' + k + '"]');
    if (!chip) { chip = el('span', 'pill'); chip.setAttribute('data-key', k); chip.appendChild(document.createTextNode(k.replace(/_/g, ' ') + ' ')); var b = el('b'); b.setAttribute('data-testid', id); chip.appendChild(b); m.appendChild(chip); }
    var v = mech[k], on = v !== false && v !== 'off';
    chip.lastChild.textContent = typeof v === 'string' ? v : on ? 'on' : 'off';
    chip.className = 'pill ' + (on ? '' : 'off');
  });
}

function renderRed(red) {
  var body = $('red');
  Object.keys(red).forEach(function (route) {
    var r = red[route], id = 'red-' + slug(route);
    if (!rows[id]) {
      var tr = el('tr'), th = el('th'); th.appendChild(el('code', '', route)); tr.appendChild(th);
      var td1 = el('td'), td2 = el('td'), td3 = el('td'); tr.appendChild(td1); tr.appendChild(td2); tr.appendChild(td3);
      metric(td1, id + '-rate', '', '/s', { spark: 1, inline: 1 });
      metric(td2, id + '-errors', '', '%', { spark: 1, inline: 1 });
      metric(td3, id + '-p50', '', 'ms', { of: id + '-p99', spark: 2, inline: 1 });
      body.appendChild(tr); rows[id] = tr;
    }
    var p50 = r.p50_seconds * 1000, p99 = r.p99_seconds * 1000, busy = r.rate_per_second > 0;
    push(id + '-rate', r.rate_per_second); push(id + '-errors', r.error_ratio * 100); push(id + '-p50', p50); push(id + '-p99', p99);
    set(id + '-rate', fmt(r.rate_per_second));
    set(id + '-errors', pct(r.error_ratio), busy ? level(r.error_ratio, 0.01, 0.05) : '');
    set(id + '-p50', fmt(p50), busy ? level(p50, 300, 1000) : '', fmt(p99));
    cells[id + '-p50'].extra.className = busy ? level(p99, 300, 1000) : '';
    plot(id + '-rate', [id + '-rate'], 1); plot(id + '-errors', [id + '-errors'], 5); plot(id + '-p50', [id + '-p99', id + '-p50'], 10);
  });
}

function breakerAction(name, action) {
  var verb = action === 'reset' ? 'Reset the ' + name + ' breaker to CLOSED?\n\nCalls to ' + name + ' resume at once, even if it is still failing.'
    : 'Force the ' + name + ' breaker OPEN?\n\nEvery call to ' + name + ' is refused until someone resets it.';
  if (!window.confirm(verb)) return;
  var msg = cells['breaker-' + slug(name) + '-message'].b, buttons = rows['breaker-' + slug(name)].querySelectorAll('button');
  buttons.forEach(function (b) { b.disabled = true; });
  msg.textContent = action + ': sending…';
  // The custom header is what a cross-origin page cannot send; the token (kept in the field only, never stored) is needed when ADMIN_TOKEN is set.
  var headers = { 'X-Bulwark-Admin': '1' }, token = $('token').value.trim();
  if (token) headers.Authorization = 'Bearer ' + token;
  fetch('/admin/breakers/' + encodeURIComponent(name) + '/' + action, { method: 'POST', cache: 'no-store', headers: headers })
    .then(function (res) { return res.text().then(function (t) { var j = {}; try { j = JSON.parse(t); } catch (e) { /* not JSON */ } if (!res.ok) throw new Error(j.detail || res.status + ' ' + res.statusText); return j; }); })
    .then(function (j) { msg.textContent = action + ' at ' + new Date().toLocaleTimeString() + ': now ' + (STATE_TEXT[j.state] || j.state); })
    .catch(function (e) { msg.textContent = action + ' failed: ' + e.message; })
    .then(function () { buttons.forEach(function (b) { b.disabled = false; }); poll(); });
}

function renderBreakers(br, now) {
  var box = $('breakers'), names = Object.keys(br);
  if (names.length === 0 && !box.firstChild) box.appendChild(el('p', 'empty', 'Breakers are off.'));
  names.forEach(function (name) {
    var s = br[name], id = 'breaker-' + slug(name);
    if (!rows[id]) {
      var card = el('div', 'card'), top = el('div', 'top'), st = el('span', 'state');
      top.appendChild(el('span', 'name', name)); st.setAttribute('data-testid', id + '-state'); top.appendChild(st); card.appendChild(top);
      var g = el('div', 'grid'); card.appendChild(g);
      metric(g, id + '-failure-rate', 'failures', '%', { spark: 2 });
      metric(g, id + '-slow-rate', 'slow calls', '%');
      metric(g, id + '-calls', 'calls', '');
      metric(g, id + '-transitions', 'transitions', '');
      metric(g, id + '-rejections', 'rejections', '');
      metric(g, id + '-rejection-rate', 'rejected', '/s', { spark: 1 });
      var act = el('div', 'actions');
      var reset = el('button', '', 'Reset (close)'); reset.setAttribute('data-testid', id + '-reset');
      var open = el('button', 'danger', 'Force open'); open.setAttribute('data-testid', id + '-open');
      reset.addEventListener('click', function () { breakerAction(name, 'reset'); });
      open.addEventListener('click', function () { breakerAction(name, 'open'); });
      act.appendChild(reset); act.appendChild(open); card.appendChild(act);
      var msg = el('div', 'msg'); msg.setAttribute('data-testid', id + '-message'); card.appendChild(msg);
      cells[id + '-message'] = { b: msg }; cells[id + '-state'] = { b: st };
      box.appendChild(card); rows[id] = card; rows[id].stateEl = st;
    }
    var card2 = rows[id];
    card2.className = 'card ' + s.state;
    card2.stateEl.textContent = STATE_TEXT[s.state] || s.state; card2.stateEl.className = 'state ' + s.state; card2.stateEl.setAttribute('data-state', s.state);
    push(id + '-failure-rate', s.failureRate * 100); push(id + '-slow-rate', s.slowCallRate * 100);
    var rr = rate(now, id + '-rejections', s.rejections); push(id + '-rejection-rate', rr);
    set(id + '-failure-rate', pct(s.failureRate), level(s.failureRate, 0.2, 0.5));
    set(id + '-slow-rate', pct(s.slowCallRate), level(s.slowCallRate, 0.2, 0.5));
    set(id + '-calls', int(s.calls)); set(id + '-transitions', int(s.transitions));
    set(id + '-rejections', int(s.rejections), s.rejections > 0 ? 'warn' : ''); set(id + '-rejection-rate', fmt(rr), rr > 0 ? 'warn' : '');
    plot(id + '-failure-rate', [id + '-failure-rate', id + '-slow-rate'], 10); plot(id + '-rejection-rate', [id + '-rejection-rate'], 1);
  });
}

function renderAdmission(a, inFlightAll, now) {
  var g = $('admission');
  if (!g.firstChild) {
    metric(g, 'admission-inflight', 'charges in flight / limit', '', { of: 'admission-limit', bar: 1, spark: 1 });
    metric(g, 'requests-inflight', 'requests in flight (all)', '');
    metric(g, 'admission-shed-rate', 'shed', '/s', { spark: 1 });
    metric(g, 'admission-shed-concurrency', 'shed: concurrency', '');
    metric(g, 'admission-shed-event-loop', 'shed: event loop', '');
    metric(g, 'admission-shed-deadline', 'shed: deadline', '');
    metric(g, 'admission-loop-delay', 'event-loop delay', 'ms', { spark: 1 });
    metric(g, 'admission-loop-utilization', 'event-loop utilization', '%', { spark: 1 });
    metric(g, 'admission-queue-wait', 'expected queue wait', 'ms', { spark: 1 });
  }
  var limit = a.limit, shed = a.shed || {}, shedTotal = sum(shed, ''), sr = rate(now, 'shed', shedTotal);
  push('admission-inflight', a.inFlight); push('admission-limit', limit); push('admission-shed-rate', sr);
  push('admission-loop-delay', a.loopDelayMs); push('admission-loop-utilization', a.loopUtilization * 100); push('admission-queue-wait', a.expectedQueueWaitMs);
  set('admission-inflight', int(a.inFlight), isNum(limit) ? level(a.inFlight / limit, 0.8, 0.95) : '', limit == null ? 'off' : int(limit));
  fill('admission-inflight', isNum(limit) && limit > 0 ? a.inFlight / limit : 0);
  set('requests-inflight', int(inFlightAll));
  set('admission-shed-rate', fmt(sr), sr > 0 ? 'bad' : '');
  set('admission-shed-concurrency', int(shed.concurrency)); set('admission-shed-event-loop', int(shed.event_loop)); set('admission-shed-deadline', int(shed.deadline));
  set('admission-loop-delay', fmt(a.loopDelayMs), level(a.loopDelayMs, 50, 200));
  set('admission-loop-utilization', pct(a.loopUtilization), level(a.loopUtilization, 0.8, 0.95));
  set('admission-queue-wait', fmt(a.expectedQueueWaitMs), level(a.expectedQueueWaitMs, 100, 500));
  plot('admission-inflight', ['admission-inflight'], 4); plot('admission-shed-rate', ['admission-shed-rate'], 1);
  plot('admission-loop-delay', ['admission-loop-delay'], 20); plot('admission-loop-utilization', ['admission-loop-utilization'], 100); plot('admission-queue-wait', ['admission-queue-wait'], 10);
  return shedTotal;
}

function renderWorkers(w) {
  var g = $('workers');
  if (!g.firstChild) {
    metric(g, 'workers-threads', 'threads', '');
    metric(g, 'workers-queue', 'task queue', '', { spark: 1 });
    metric(g, 'workers-utilization', 'utilization', '%', { spark: 1 });
  }
  push('workers-queue', w.queue_size); push('workers-utilization', w.utilization * 100);
  set('workers-threads', int(w.threads), w.threads === 0 ? 'bad' : '');
  set('workers-queue', int(w.queue_size), w.queue_size > 0 ? 'warn' : '');
  set('workers-utilization', pct(w.utilization), level(w.utilization, 0.8, 0.95));
  plot('workers-queue', ['workers-queue'], 4); plot('workers-utilization', ['workers-utilization'], 100);
}

function renderBulkheads(bh) {
  var body = $('bulkheads'), names = Object.keys(bh);
  $('bulkheads-empty').hidden = names.length > 0;
  names.forEach(function (name) {
    var b = bh[name], id = 'bulkhead-' + slug(name);
    if (!rows[id]) {
      var tr = el('tr'), th = el('th'); th.appendChild(el('code', '', name)); if (name === 'db') th.appendChild(el('div', 'note', 'connection pool')); tr.appendChild(th);
      var tds = [0, 1, 2, 3, 4].map(function () { var td = el('td'); tr.appendChild(td); return td; });
      metric(tds[0], id + '-inuse', '', '', { of: id + '-limit', bar: 1, spark: 1 });
      metric(tds[1], id + '-waiting', '', ''); metric(tds[2], id + '-acquired', '', '');
      metric(tds[3], id + '-rejected-full', '', ''); metric(tds[4], id + '-rejected-timeout', '', '');
      body.appendChild(tr); rows[id] = tr;
    }
    push(id + '-inuse', b.inUse);
    set(id + '-inuse', int(b.inUse), b.limit > 0 ? level(b.inUse / b.limit, 0.8, 0.95) : '', int(b.limit));
    fill(id + '-inuse', b.limit > 0 ? b.inUse / b.limit : 0);
    set(id + '-waiting', int(b.waiting), b.waiting > 0 ? 'warn' : ''); set(id + '-acquired', int(b.acquired));
    set(id + '-rejected-full', int(b.rejectedFull), b.rejectedFull > 0 ? 'warn' : ''); set(id + '-rejected-timeout', int(b.rejectedTimeout), b.rejectedTimeout > 0 ? 'warn' : '');
    plot(id + '-inuse', [id + '-inuse'], Math.max(1, b.limit || 0));
  });
}

function renderRetries(budget, ev, now) {
  var g = $('retries');
  if (!g.firstChild) {
    metric(g, 'retry-rate', 'retries', '/s', { spark: 1 });
    metric(g, 'retry-suppressed-rate', 'suppressed retries', '/s', { spark: 1 });
    metric(g, 'retry-budget-tokens', 'budget tokens', '', { spark: 1 });
    metric(g, 'retry-budget-retries', 'budget: retries taken', '');
    metric(g, 'retry-budget-refused', 'budget: refused', '');
    metric(g, 'retry-budget-deposits', 'budget: deposits', '');
  }
  var retries = sum(ev, 'retry_provider_'), suppressed = sum(ev, 'retry_suppressed_');
  var r1 = rate(now, 'retries', retries), r2 = rate(now, 'suppressed', suppressed);
  push('retry-rate', r1); push('retry-suppressed-rate', r2); push('retry-budget-tokens', budget ? budget.tokens : null);
  set('retry-rate', fmt(r1)); set('retry-suppressed-rate', fmt(r2), r2 > 0 ? 'warn' : '');
  set('retry-budget-tokens', budget ? fmt(budget.tokens) : 'off', budget && budget.tokens < 1 ? 'bad' : '');
  set('retry-budget-retries', budget ? int(budget.retries) : 'off'); set('retry-budget-refused', budget ? int(budget.refused) : 'off', budget && budget.refused > 0 ? 'warn' : '');
  set('retry-budget-deposits', budget ? int(budget.deposits) : 'off');
  plot('retry-rate', ['retry-rate'], 1); plot('retry-suppressed-rate', ['retry-suppressed-rate'], 1); plot('retry-budget-tokens', ['retry-budget-tokens'], 1);
  var box = $('events');
  Object.keys(ev).forEach(function (k) {
    var id = 'event-' + slug(k);
    if (!cells[id]) {
      var gi = 0; while (EVENT_GROUPS[gi][0] && k.indexOf(EVENT_GROUPS[gi][0]) !== 0) gi++;
      var dl = box.querySelector('[data-group="' + gi + '"]');
      if (!dl) { dl = el('dl'); dl.setAttribute('data-group', String(gi)); dl.appendChild(el('dt', '', EVENT_GROUPS[gi][1])); box.appendChild(dl); Array.prototype.slice.call(box.children).sort(function (x, y) { return x.getAttribute('data-group') - y.getAttribute('data-group'); }).forEach(function (c) { box.appendChild(c); }); }
      var dd = el('dd'), b = el('b'); b.setAttribute('data-testid', id);
      dd.appendChild(el('span', '', k.slice(EVENT_GROUPS[gi][0].length).replace(/_/g, ' '))); dd.appendChild(b); dl.appendChild(dd);
      cells[id] = { b: b };
    }
    cells[id].b.textContent = int(ev[k]); cells[id].b.className = ev[k] ? '' : 'zero';
  });
  return { retries: retries, suppressed: suppressed };
}

function render(s, now) {
  renderHeader(s);
  renderRed(s.red || {});
  var shed = renderAdmission(s.admission || {}, s.in_flight_requests, now);
  renderBreakers(s.breakers || {}, now);
  renderWorkers(s.workers || {});
  renderBulkheads(s.bulkheads || {});
  var rt = renderRetries(s.retry_budget, s.events || {}, now);
  var next = { t: now, shed: shed, retries: rt.retries, suppressed: rt.suppressed };
  Object.keys(s.breakers || {}).forEach(function (n) { next['breaker-' + slug(n) + '-rejections'] = s.breakers[n].rejections; });
  prev = next;
  renderAlerts(s);
}

// The few facts worth a glance from anywhere on the page (the header is sticky).
function renderAlerts(s) {
  var list = [], br = s.breakers || {}, a = s.admission || {};
  Object.keys(br).forEach(function (n) { if (br[n].state !== 'closed') list.push([br[n].state === 'half_open' ? 'warn' : 'bad', n + ' breaker ' + (STATE_TEXT[br[n].state] || br[n].state)]); });
  var shed = series['admission-shed-rate'], sr = shed && shed[shed.length - 1];
  if (sr > 0) list.push(['bad', 'shedding ' + fmt(sr) + '/s']);
  Object.keys(s.bulkheads || {}).forEach(function (n) { var b = s.bulkheads[n]; if (b.waiting > 0) list.push(['warn', n + ': ' + b.waiting + ' waiting']); });
  if (s.workers && s.workers.queue_size > 0) list.push(['warn', 'worker queue ' + s.workers.queue_size]);
  if (isNum(a.limit) && a.limit > 0 && a.inFlight / a.limit >= 0.8) list.push(['warn', 'in flight near limit']);
  var box = $('alerts'); box.textContent = '';
  list.forEach(function (x) { box.appendChild(el('span', 'pill ' + x[0], x[1])); });
}

function status() {
  var st = $('status'), age = lastOk ? Date.now() - lastOk : Infinity;
  if (age < STALE_MS) { st.textContent = 'live · ' + new Date(lastOk).toLocaleTimeString(); st.className = 'pill ok'; document.body.classList.remove('stale'); }
  else { st.textContent = (lastOk ? 'STALE · no update for ' + Math.round(age / 1000) + ' s' : 'no data yet') + (lastError ? ' · ' + lastError : ''); st.className = 'pill bad'; document.body.classList.add('stale'); }
}

var timer = 0, inFlight = false;
function poll() {
  if (inFlight) return;
  clearTimeout(timer); inFlight = true;
  var ctl = new AbortController(), t = setTimeout(function () { ctl.abort(); }, 2500);
  fetch('/admin/state', { cache: 'no-store', signal: ctl.signal })
    .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
    .then(function (s) { lastOk = Date.now(); lastError = ''; render(s, performance.now()); })
    .catch(function (e) {
      lastError = e.name === 'AbortError' ? 'timed out' : e.message;
      // A gap in every sparkline marks the missed second instead of joining across it.
      Object.keys(series).forEach(function (k) { push(k, null); });
    })
    .then(function () { clearTimeout(t); inFlight = false; status(); timer = setTimeout(poll, POLL_MS); });
}
setInterval(status, 1000);
poll();
})();
`;

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The whole page; the style and script are pinned by hash in DASHBOARD_HEADERS. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bulwark admin</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

/** Headers for the page: no caching (it is live), and a CSP that forbids every origin but this one. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': [
    "default-src 'none'",
    `script-src ${hash(SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
});
