// Farol dashboard: polls the JSON API every few seconds and redraws each
// panel in place. Data only ever enters the page as text (textContent,
// option values) or as numeric SVG attributes: never through innerHTML.
'use strict';

// ---- helpers -------------------------------------------------------------
const $ = (id) => document.getElementById(id);
const SVGNS = 'http://www.w3.org/2000/svg';
const MIN = 60000;
const HOUR_MINUTES = 60;
const TOP_N = 50; // rows rendered per panel, whatever the number of keys
const POLL_MS = 3000;
const PALETTE = ['#d97706', '#2563eb', '#16a34a', '#dc2626', '#9333ea', '#0891b2', '#ca8a04', '#db2777', '#65a30d', '#64748b'];
const CLASS_COLOURS = { FATAL: '#7f1d1d', ERROR: '#dc2626', WARN: '#f59e0b', INFO: '#2563eb', DEBUG: '#16a34a', TRACE: '#64748b', UNKNOWN: '#94a3b8', '1xx': '#0891b2', '2xx': '#16a34a', '3xx': '#2563eb', '4xx': '#f59e0b', '5xx': '#dc2626' };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}
const numFmt = new Intl.NumberFormat();
const num = (n) => numFmt.format(n);
function duration(s) {
  if (s < 90) return `${Math.max(0, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
}
const hhmm = (ms) => new Date(ms).toTimeString().slice(0, 5);
// Time of day, with the date too when it is not today (replayed history).
function when(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? hhmm(ms) : `${d.toLocaleDateString()} ${hhmm(ms)}`;
}
const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

// ---- fetching: conditional GETs (a 304 answers with the cached body) -----
const etags = new Map();
async function getJSON(url, okStatuses = []) {
  const c = etags.get(url);
  const r = await fetch(url, { headers: c ? { 'If-None-Match': c.etag } : {} });
  if (r.status === 304 && c) return c.body;
  const body = await r.json().catch(() => ({}));
  if (!r.ok && !okStatuses.includes(r.status)) throw new Error(body.error || `HTTP ${r.status}`);
  const etag = r.headers.get('ETag');
  if (etag) etags.set(url, { etag, body });
  return body;
}

// ---- state ---------------------------------------------------------------
const KINDS = ['hashtag', 'log_class'];
const state = {
  window: '1h',
  top: { hashtag: [], log_class: [] },          // items of the latest closed window
  end: { hashtag: Date.now(), log_class: Date.now() }, // end of the hour shown
  hist: { hashtag: new Map(), log_class: new Map() },  // minute start -> Map(key -> count)
  selected: { hashtag: null, log_class: null },       // null: follow the top keys
  prevSources: null,
  search: null, // the active search: { q, kind, source, cls }
};

// ---- top keys of the chosen window ---------------------------------------
async function loadTop(kind) {
  const t = await getJSON(`/trends?kind=${kind}&window=${state.window}&limit=${TOP_N}`);
  state.top[kind] = Array.isArray(t.items) ? t.items.slice(0, TOP_N) : [];
  $(`span-${kind}`).textContent = t.from ? `${t.window || state.window} window ${when(Date.parse(t.from))}–${hhmm(Date.parse(t.to))} (latest closed)` : 'no closed window yet';
  // Live data: show the hour up to now. Replayed history: the hour up to its latest window.
  const to = t.to ? Date.parse(t.to) : Date.now();
  state.end[kind] = Date.now() - to < 3600000 ? Date.now() : to;
}

// ---- per-minute history of the last hour (bounded requests per poll) -----
function minuteStarts(kind) {
  const end = Math.ceil(state.end[kind] / MIN) * MIN;
  const starts = [];
  for (let i = HOUR_MINUTES; i >= 1; i--) starts.push(end - i * MIN);
  return starts;
}
async function loadHistory(kind) {
  const starts = minuteStarts(kind);
  const m = state.hist[kind];
  for (const k of m.keys()) if (k < starts[0] || k > starts[starts.length - 1]) m.delete(k);
  const now = Date.now();
  // Recent minutes may still grow; older ones are fetched once. At most 30
  // requests per poll, 5 at a time.
  const todo = starts.filter((s) => !m.has(s) || s + 3 * MIN > now).reverse().slice(0, 30);
  for (let i = 0; i < todo.length; i += 5) {
    await Promise.all(todo.slice(i, i + 5).map(async (s) => {
      const t = await getJSON(`/trends?kind=${kind}&from=${iso(s)}&to=${iso(s + MIN)}&limit=200`);
      m.set(s, new Map((t.items || []).map((it) => [it.key, it.count])));
    }));
  }
}
function series(kind, key) {
  const m = state.hist[kind];
  return minuteStarts(kind).map((s) => (m.get(s) && m.get(s).get(key)) || 0);
}

// ---- top tables with sparklines ------------------------------------------
function selectedKeys(kind) {
  if (state.selected[kind]) return [...state.selected[kind]];
  return state.top[kind].slice(0, kind === 'log_class' ? 8 : 5).map((i) => i.key);
}
function colour(kind, key, index) {
  return (kind === 'log_class' && CLASS_COLOURS[key]) || PALETTE[index % PALETTE.length];
}
function sparkline(values) {
  const w = 100, h = 20, max = Math.max(1, ...values);
  const s = svgEl('svg', { class: 'spark', viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  const pts = values.map((v, i) => `${(i * w / Math.max(1, values.length - 1)).toFixed(1)},${(h - 1 - v * (h - 2) / max).toFixed(1)}`);
  s.append(svgEl('polyline', { points: pts.join(' ') }));
  return s;
}
function renderTop(kind) {
  const body = $(`rows-${kind}`);
  const focused = body.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const items = state.top[kind];
  const sel = selectedKeys(kind);
  body.closest('table').classList.toggle('has-score', items.some((i) => typeof i.score === 'number'));
  const rows = items.map((it) => {
    const tr = el('tr');
    const b = el('button', 'key');
    b.type = 'button';
    b.dataset.key = it.key;
    b.dataset.kind = kind;
    const on = sel.indexOf(it.key);
    b.setAttribute('aria-pressed', String(on >= 0));
    b.title = on >= 0 ? 'shown in the chart (press to hide)' : 'press to show in the chart';
    const dot = el('span', 'dot');
    if (on >= 0) dot.style.background = colour(kind, it.key, on);
    b.append(dot, el('span', '', kind === 'hashtag' ? `#${it.key}` : it.key));
    const key = el('td'); key.append(b);
    const spark = el('td'); spark.append(sparkline(series(kind, it.key)));
    tr.append(key, el('td', 'n', num(it.count)), el('td', 'n score', typeof it.score === 'number' ? it.score.toFixed(2) : ''), spark);
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr'); const td = el('td', 'muted', 'nothing counted yet'); td.colSpan = 4; tr.append(td); rows.push(tr);
  }
  body.replaceChildren(...rows);
  if (focused) { const again = [...body.querySelectorAll('button')].find((x) => x.dataset.key === focused); if (again) again.focus(); }
}
function toggleKey(ev) {
  const b = ev.target.closest('button.key');
  if (!b) return;
  const kind = b.dataset.kind;
  const set = new Set(selectedKeys(kind));
  if (set.has(b.dataset.key)) set.delete(b.dataset.key); else set.add(b.dataset.key);
  state.selected[kind] = set;
  renderTop(kind); renderChart(kind);
}

// ---- stacked per-minute chart of the selected keys -----------------------
function renderChart(kind) {
  const svg = $(`chart-${kind}`), legend = $(`legend-${kind}`);
  const keys = selectedKeys(kind);
  const starts = minuteStarts(kind);
  const W = 600, H = 160, L = 40, B = 18, T = 6;
  const data = keys.map((k) => series(kind, k));
  const totals = starts.map((_, i) => data.reduce((a, d) => a + d[i], 0));
  const max = Math.max(1, ...totals);
  const bw = (W - L) / starts.length;
  const parts = [svgEl('line', { class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B })];
  const label = (x, y, text, anchor) => { const t = svgEl('text', { x, y, 'text-anchor': anchor }); t.textContent = text; return t; };
  parts.push(label(L - 4, T + 8, num(max), 'end'), label(L - 4, H - B, '0', 'end'));
  parts.push(label(L, H - 4, when(starts[0]), 'start'), label(W, H - 4, hhmm(starts[starts.length - 1] + MIN), 'end'));
  starts.forEach((_, i) => {
    let y = H - B;
    data.forEach((d, k) => {
      if (!d[i]) return;
      const h = d[i] * (H - B - T) / max;
      y -= h;
      const r = svgEl('rect', { x: (L + i * bw + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: h.toFixed(1), fill: colour(kind, keys[k], k) });
      const tip = svgEl('title', {}); tip.textContent = `${keys[k]}: ${d[i]} at ${hhmm(starts[i])}`; r.append(tip);
      parts.push(r);
    });
  });
  svg.replaceChildren(...parts);
  legend.replaceChildren(...keys.map((k, i) => {
    const li = el('li'); const sw = el('span'); sw.style.background = colour(kind, k, i);
    li.append(sw, document.createTextNode(kind === 'hashtag' ? `#${k}` : k)); return li;
  }));
}

// ---- sources: rates, lag, pauses, late/future/dead-lettered --------------
function fillSelect(select, values) {
  const have = new Set([...select.options].map((o) => o.value));
  for (const v of values) if (!have.has(v)) { const o = el('option', '', v); o.value = v; select.append(o); }
}
async function loadSources() {
  const o = await getJSON('/api/overview');
  const now = Date.now();
  const prev = state.prevSources;
  const names = Object.keys(o.sources || {});
  let late = 0, future = 0, dead = 0, paused = 0;
  const rows = names.map((name) => {
    const s = o.sources[name];
    late += s.late; future += s.future; dead += s.dead_letters; if (s.paused) paused += 1;
    const p = prev && prev.sources[name];
    const rate = p ? Math.max(0, (s.records - p.records) * 1000 / Math.max(1, now - prev.at)) : 0;
    return { name, s, rate };
  });
  state.prevSources = { at: now, sources: o.sources || {} };
  rows.sort((a, b) => b.rate - a.rate || a.name.localeCompare(b.name));
  $('t-late').textContent = num(late); $('t-future').textContent = num(future);
  $('t-dead').textContent = num(dead); $('t-paused').textContent = num(paused);
  $('rows-sources').replaceChildren(...rows.slice(0, 200).map(({ name, s, rate }) => {
    const tr = el('tr');
    const lag = s.watermark ? duration(now / 1000 - s.watermark) : '–';
    const st = s.paused ? el('td', 'paused', s.paused_since ? `paused ${duration(now / 1000 - s.paused_since)}` : 'paused') : el('td', 'muted', s.errors ? `${num(s.errors)} errors` : 'flowing');
    tr.append(el('td', '', name), el('td', 'n', rate.toFixed(1)), el('td', 'n', num(s.records)), el('td', 'n', lag), st,
      el('td', 'n', num(s.late)), el('td', 'n', num(s.future)), el('td', 'n', num(s.dead_letters)));
    return tr;
  }));
  fillSelect($('source'), names);
}

// ---- component health (/healthz answers 503 with the failing ones) -------
async function loadHealth() {
  const h = await getJSON('/healthz', [503]);
  const failing = h.failing || {};
  const badge = $('health-badge');
  badge.textContent = h.status === 'ok' ? 'healthy' : 'degraded';
  badge.className = `badge ${h.status === 'ok' ? 'ok' : 'bad'}`;
  $('health').replaceChildren(...(h.components || []).map((c) => {
    const bad = Object.prototype.hasOwnProperty.call(failing, c);
    return el('li', bad ? 'bad' : 'ok', bad ? `${c}: ${failing[c]}` : c);
  }));
}

// ---- search (deep link: #q=…&kind=…&source=…&class=…) ---------------------
function hitTime(h) {
  const t = h.ts !== undefined ? h.ts : h.created_at;
  return typeof t === 'number' ? t : Date.parse(t) || 0;
}
// The page's state lives in the fragment, so a view can be bookmarked or shared.
const HASH_FIELDS = ['window', 'q', 'kind', 'source', 'class'];
function saveHash() {
  const params = new URLSearchParams();
  for (const id of HASH_FIELDS) { const v = $(id).value.trim(); if (v && !(id === 'window' && v === '1h')) params.set(id, v); }
  history.replaceState(null, '', params.toString() ? `#${params}` : location.pathname);
}
// Submitting (or a deep link) sets the active search; each poll runs it again
// so that new matches show up by themselves.
function submitSearch() {
  state.search = { q: $('q').value.trim(), kind: $('kind').value, source: $('source').value, cls: $('class').value };
  saveHash();
  $('search-info').textContent = state.search.q ? 'searching…' : '';
  return runSearch();
}
async function runSearch() {
  const { q, kind, source, cls } = state.search || {};
  const info = $('search-info'), list = $('results');
  if (!q) { info.textContent = ''; list.replaceChildren(); return; }
  const api = new URLSearchParams({ q, limit: '200' });
  if (kind) api.set('kind', kind);
  let r;
  try { r = await getJSON(`/search?${api}`); } catch (e) { info.textContent = `search failed: ${e.message}`; return; }
  const hits = (r.hits || []).filter((h) => (!source || h.source === source) && (!cls || h.class === cls));
  hits.sort((a, b) => hitTime(b) - hitTime(a));
  info.textContent = `${num(hits.length)} shown of ${num(r.total || 0)} matching${source || cls ? ' (before the source/class filters)' : ''}, newest first`;
  list.replaceChildren(...hits.slice(0, 100).map((h) => {
    const li = el('li');
    const isPost = h.type ? h.type === 'post' : h.message === undefined;
    const meta = el('span', 'meta', `${new Date(hitTime(h)).toLocaleString()} · ${h.source || '?'}${h.class ? ` · ${h.class}` : ''}${h.author ? ` · @${h.author}` : ''}`);
    li.append(meta, el('span', 'tag', isPost ? 'post' : (h.class || 'log')), document.createTextNode(String(h.text ?? h.message ?? h.line ?? JSON.stringify(h))));
    return li;
  }));
}
function restoreSearch() {
  const p = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  for (const id of HASH_FIELDS) {
    const v = p.get(id);
    if (!v) continue;
    const input = $(id);
    if (input.tagName === 'SELECT' && id !== 'window') fillSelect(input, [v]);
    input.value = v;
  }
  state.window = $('window').value || '1h';
  return Boolean(p.get('q'));
}

// ---- top log templates (text only; no history, to keep requests bounded) ---
async function loadTemplates() {
  const t = await getJSON(`/trends?kind=log_template&window=${state.window}&limit=${TOP_N}`);
  const items = Array.isArray(t.items) ? t.items.slice(0, TOP_N) : [];
  $('span-log_template').textContent = t.from ? `${t.window || state.window} window ${when(Date.parse(t.from))}–${hhmm(Date.parse(t.to))} (latest closed)` : 'no closed window yet';
  const body = $('rows-log_template');
  body.closest('table').classList.toggle('has-score', items.some((i) => typeof i.score === 'number'));
  const rows = items.map((it) => {
    const tr = el('tr');
    const text = el('td', 'template', it.template || it.key);
    text.title = `template ${it.key}`;
    tr.append(text, el('td', 'n', num(it.count)), el('td', 'n score', typeof it.score === 'number' ? it.score.toFixed(2) : ''));
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr'); const td = el('td', 'muted', 'nothing counted yet'); td.colSpan = 3; tr.append(td); rows.push(tr);
  }
  body.replaceChildren(...rows);
}

// ---- the polling loop ------------------------------------------------------
if (restoreSearch()) submitSearch();
async function tick() {
  const results = await Promise.allSettled([loadSources(), loadHealth(), loadTemplates(), ...KINDS.map(async (k) => {
    await loadTop(k);
    await loadHistory(k);
    renderTop(k); renderChart(k);
  })]);
  fillSelect($('class'), state.top.log_class.map((i) => i.key));
  const failed = results.filter((r) => r.status === 'rejected');
  $('status').textContent = failed.length ? `retrying: ${failed[0].reason.message}` : `live · updated ${new Date().toLocaleTimeString()}`;
  await runSearch();
  setTimeout(tick, POLL_MS);
}

document.addEventListener('click', toggleKey);
$('window').addEventListener('change', (e) => { state.window = e.target.value; saveHash(); KINDS.forEach((k) => loadTop(k).then(() => renderTop(k)).catch(() => {})); loadTemplates().catch(() => {}); });
$('search').addEventListener('submit', (e) => { e.preventDefault(); submitSearch(); });
window.addEventListener('hashchange', () => { if (restoreSearch()) submitSearch(); });
tick();
