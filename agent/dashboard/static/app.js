// meterlink dashboard: live values over Server-Sent Events, history charts with uPlot (bundled, no CDN).
/* global uPlot */
(() => {
  'use strict';
  const token = new URLSearchParams(location.search).get('token');
  const api = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#14b8a6'];
  const state = { live: null, history: null, liveUpdates: 0, historyLoads: 0, charts: {}, meter: null };
  window.meterlinkDashboard = state;

  const fmt = (v, digits) =>
    v === null || v === undefined || !Number.isFinite(v)
      ? '—'
      : v.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const ago = (ms) => {
    if (ms === null || ms === undefined) return 'never';
    const s = Math.round(ms / 1000);
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 129600) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  };
  const badge = (id, text, level) => {
    const b = $(id);
    b.textContent = text;
    b.className = `badge ${level}`;
  };

  // ---- live
  const meterCards = new Map();
  function meterCard(m) {
    let c = meterCards.get(m.id);
    if (c) return c;
    const root = el('article', 'card meter');
    root.dataset.meter = m.id;
    const head = el('div', 'row');
    head.append(el('h2', '', m.id), el('span', 'muted small', m.label));
    const power = el('div', 'power');
    power.dataset.testid = `power-${m.id}`;
    const phases = el('div', 'phases');
    const rows = [0, 1, 2].map((i) => {
      const bar = el('div', 'bar');
      const fill = el('span');
      bar.append(fill);
      const val = el('span', '', '—');
      val.style.textAlign = 'right';
      phases.append(el('span', 'muted', `L${i + 1}`), bar, val);
      return { fill, val, label: phases.children[phases.children.length - 3], bar };
    });
    const meta = el('div', 'muted small');
    const counters = el('div', 'small');
    root.append(head, power, phases, counters, meta);
    $('meters').append(root);
    c = { root, power, rows, meta, counters };
    meterCards.set(m.id, c);
    return c;
  }

  function renderLive(v) {
    if (v.error) {
      $('updated').textContent = v.error;
      return;
    }
    state.live = v;
    state.liveUpdates++;
    $('thing').textContent = v.thing;
    document.title = `meterlink · ${v.thing}`;
    const cs = v.connection.state;
    badge(
      'conn',
      cs === 'disabled' ? 'cloud: off' : `cloud: ${cs}`,
      cs === 'connected' ? 'ok' : cs === 'disabled' ? '' : 'warn',
    );
    badge(
      'clock',
      v.clock.synced ? 'clock: synchronised' : 'clock: NOT synchronised',
      v.clock.synced ? 'ok' : 'bad',
    );
    $('clock').title = v.clock.detail || '';
    const b = v.buffer;
    badge(
      'buffer',
      `buffer: ${b.depth.toLocaleString()} waiting${b.ageMs !== null && b.depth > 0 ? `, oldest ${ago(b.ageMs)}` : ''}${b.dropped ? `, ${b.dropped} dropped` : ''}`,
      b.dropped ? 'bad' : b.ageMs !== null && b.ageMs > 600000 ? 'warn' : 'ok',
    );
    $('updated').textContent =
      `meterlink ${v.version} · status ${ago(v.now - v.updatedAt)} · up ${ago(v.now - v.startedAt).replace(' ago', '')}`;
    for (const m of v.meters) {
      const c = meterCard(m);
      c.power.textContent = `${fmt(m.powerW, 0)} W`;
      c.power.className = `power${m.powerW !== null && m.powerW < 0 ? ' export' : ''}`;
      const max = Math.max(1000, ...m.phasesW.map((p) => Math.abs(p ?? 0)));
      m.phasesW.forEach((p, i) => {
        const r = c.rows[i];
        const hidden = p === null;
        for (const e of [r.label, r.bar, r.val]) e.style.display = hidden ? 'none' : '';
        r.val.textContent = `${fmt(p, 0)} W`;
        r.fill.style.width = `${Math.min(100, (Math.abs(p ?? 0) / max) * 100)}%`;
        r.fill.className = p !== null && p < 0 ? 'neg' : '';
      });
      c.counters.textContent = `import ${fmt(m.importKwh, 3)} kWh · export ${fmt(m.exportKwh, 3)} kWh`;
      c.meta.textContent = `${m.ok ? 'ok' : 'FAILING'} · last reading ${ago(m.ageMs)} · ${m.polls} polls, ${m.failures} failed${!m.ok && m.lastError ? ` · ${m.lastError}` : ''}`;
      c.meta.style.color = m.ok ? '' : 'var(--bad)';
    }
    renderEvents(v.events);
  }

  function renderEvents(events) {
    const ul = $('events');
    ul.replaceChildren(
      ...events
        .slice(-20)
        .reverse()
        .map((e) => {
          const li = el('li', e.severity);
          li.append(
            el('span', 'muted', `${new Date(e.ts).toLocaleString()} `),
            el('b', '', e.event),
            document.createTextNode(` ${e.message}`),
          );
          return li;
        }),
    );
    if (events.length === 0) ul.append(el('li', 'muted', 'no events yet'));
  }

  // ---- history
  const width = () => Math.max(280, $('chart-power').clientWidth || 600);
  function chart(key, container, opts, data) {
    const old = state.charts[key];
    if (old && old.series.length === opts.series.length) {
      old.setData(data);
      return old;
    }
    if (old) old.destroy();
    state.charts[key] = new uPlot({ width: width(), height: 220, ...opts }, data, $(container));
    return state.charts[key];
  }
  const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;

  function renderHistory(h) {
    state.history = h;
    state.historyLoads++;
    $('note').textContent = h.note || '';
    const ids = Object.keys(h.meters);
    // Power: one line per meter on the union of minute times.
    const times = [...new Set(ids.flatMap((id) => h.meters[id].power.map((r) => r[0])))].sort(
      (a, b) => a - b,
    );
    const series = ids.map((id) => {
      const byT = new Map(h.meters[id].power.map((r) => [r[0], r[1]]));
      return times.map((t) => (byT.has(t) ? byT.get(t) : null));
    });
    chart(
      'power',
      'chart-power',
      {
        series: [
          {},
          ...ids.map((id, i) => ({
            label: `${id} W`,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            spanGaps: false,
          })),
        ],
        axes: [{}, { label: 'W', size: 60 }],
      },
      [times.map((t) => t / 1000), ...series],
    );
    // Energy: the chosen meter.
    const pick = $('meter-pick');
    if (pick.options.length !== ids.length) {
      pick.replaceChildren(...ids.map((id) => el('option', '', id)));
      pick.value = state.meter && ids.includes(state.meter) ? state.meter : ids[0] || '';
    }
    state.meter = pick.value;
    const m = h.meters[state.meter];
    const energy = (rows) => [
      rows.map((r) => r[0] / 1000),
      rows.map((r) => r[1]),
      rows.map((r) => (r[2] === null ? null : -r[2])),
    ];
    const energyOpts = (unit) => ({
      series: [
        {},
        {
          label: `import ${unit}`,
          stroke: '#3b82f6',
          fill: '#3b82f688',
          paths: bars,
          points: { show: false },
        },
        {
          label: `export ${unit}`,
          stroke: '#10b981',
          fill: '#10b98188',
          paths: bars,
          points: { show: false },
        },
      ],
      axes: [{}, { label: unit, size: 60 }],
    });
    chart('hours', 'chart-hours', energyOpts('kWh'), energy(m ? m.hours : []));
    chart('days', 'chart-days', energyOpts('kWh'), energy(m ? m.days : []));
  }

  async function loadHistory() {
    try {
      const r = await fetch(api('/api/history'));
      const doc = await r.json();
      if (!r.ok) throw new Error(doc.error || r.statusText);
      renderHistory(doc);
    } catch (err) {
      $('note').textContent = `history: ${err.message}`;
    }
  }
  $('meter-pick').addEventListener('change', () => state.history && renderHistory(state.history));
  window.addEventListener('resize', () => {
    for (const c of Object.values(state.charts)) c.setSize({ width: width(), height: 220 });
  });

  // ---- go
  const stream = new EventSource(api('/api/stream'));
  // The agent ends each stream after a while (a bound on what a stalled page can hold); the browser reconnects
  // within seconds. Only a gap longer than that is worth a word on the page.
  let lostTimer;
  stream.addEventListener('live', (e) => {
    clearTimeout(lostTimer);
    lostTimer = undefined;
    renderLive(JSON.parse(e.data));
  });
  stream.addEventListener('event', (e) => {
    if (!state.live) return;
    state.live.events.push(JSON.parse(e.data));
    renderEvents(state.live.events);
  });
  stream.onerror = () => {
    lostTimer ??= setTimeout(() => {
      $('updated').textContent = 'connection to the agent lost; retrying …';
    }, 5000);
  };
  loadHistory();
  setInterval(loadHistory, 30000);
})();
