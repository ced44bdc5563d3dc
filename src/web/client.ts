/**
 * The dashboard's browser script, inlined into the page after uPlot. Plain ES2020 in a string (the page is
 * served as one document and tsc does not copy assets to dist). It reads the boot JSON, opens /api/stream,
 * and puts every value in place with textContent — data is never parsed as markup.
 *
 * It lives in a template literal: no backticks, no dollar-brace, and double any backslash (wrap in String.raw
 * if one is ever needed). test/unit/web.test.ts compiles it. The run's events (on the points) are drawn on every
 * chart by the markers plugin (src/html/markers.ts), prepended, and listed in the event log; the errors of each
 * point (broker answers and failures by kind and code) go to the errors log, newest first, bounded.
 */
import { MARKERS_JS } from '../html/markers.js';

export const CLIENT_JS = `${MARKERS_JS}
(function () {
  'use strict';
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var css = getComputedStyle(document.documentElement);
  var color = function (name) { return css.getPropertyValue(name).trim(); };

  // ------------------------------------------------------------------------------------------ formatting
  var intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    var a = Math.abs(v);
    if (a >= 1000) return intFmt.format(v);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a === 0) return '0';
    return v.toFixed(2);
  }
  function count(v) { return v === null || v === undefined ? '–' : intFmt.format(v); }
  function clock(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var mm = h > 0 ? String(m).padStart(2, '0') : String(m);
    return (h > 0 ? h + ':' : '') + mm + ':' + String(sec).padStart(2, '0');
  }
  function set(id, text) { var el = $(id); if (el && el.textContent !== text) el.textContent = text; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------------------------------ charts
  var maxPoints = boot.maxPoints || 3600;
  var xs = [];
  var cols = {
    devices: [], target: [], sent: [], received: [], failed: [],
    e2e50: [], e2e95: [], e2e99: [], ack50: [], ack99: [], bytesSent: [], bytesReceived: [],
    lag50: [], lag99: [], gaps: [], duplicated: [], reordered: [],
    connects: [], connectFailures: [], reconnects: [], dropped: [], cpu: [], loop: []
  };
  // the run's events so far (they come with the points): markers on every chart, rows of the event log
  var events = [];
  // the legend shows the value under the cursor, or the latest one when the cursor is elsewhere
  function latest(u, sidx) { var col = u.data[sidx]; return col && col.length ? col[col.length - 1] : null; }
  function legendValue(fmt) {
    return function (u, v, sidx, idx) {
      var x = idx === null || idx === undefined ? latest(u, sidx) : v;
      return x === null || x === undefined ? '–' : fmt(x);
    };
  }
  function line(label, cssVar, extra) {
    var s = { label: label, stroke: color(cssVar), width: 2, points: { show: false }, value: legendValue(num) };
    if (extra) for (var k in extra) s[k] = extra[k];
    return s;
  }
  function axes() {
    var a = color('--axis'), g = color('--grid');
    return [
      // run time (0:12), as in the event log, the header and report.html; the legend adds the wall clock
      { stroke: a, grid: { stroke: g, width: 1 }, ticks: { stroke: g, width: 1 },
        incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400],
        values: function (u, splits) { return splits.map(function (v) { return clock(v * 1000); }); } },
      { stroke: a, grid: { stroke: g, width: 1 }, ticks: { show: false }, size: 56 }
    ];
  }
  var defs = [
    { id: 'devices', cols: ['devices', 'target'], series: [
      line('connected', '--c-devices', { fill: color('--c-devices') + '22', value: legendValue(count) }),
      // the target changes in steps (Load): drawn as steps, not slopes
      line('target', '--c-target', { dash: [6, 4], width: 1.5, value: legendValue(count),
        paths: uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined })
    ], range: function (u, min, max) { return [0, Math.max(1, max, boot.devices) * 1.05]; } },
    { id: 'rates', cols: ['sent', 'received', 'failed'], series: [
      line('sent/s', '--c-sent', { width: 3 }), line('received/s', '--c-received', { width: 1.5 }), line('failed/s', '--c-failed', { width: 1.5 })
    ], range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
    { id: 'e2e', cols: ['e2e50', 'e2e95', 'e2e99'], series: [
      line('p50', '--c-p50'), line('p95', '--c-p95'), line('p99', '--c-p99')
    ], range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
    { id: 'ack', cols: ['ack50', 'ack99'], series: [
      line('p50', '--c-p50'), line('p99', '--c-p99')
    ], range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
    { id: 'bytes', cols: ['bytesSent', 'bytesReceived'], series: [
      line('sent B/s', '--c-sent', { width: 2 }), line('received B/s', '--c-received', { width: 1.5 })
    ], range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
    // the report's remaining charts over time (src/report/html.ts healthCharts), live
    { id: 'lag', cols: ['lag50', 'lag99'], series: [
      line('p50', '--c-p50'), line('p99', '--c-p99')
    ], range: function (u, min, max) { return [0, Math.max(1, max) * 1.1]; } },
    { id: 'loss', cols: ['gaps', 'duplicated', 'reordered'], series: [
      line('gaps (holes so far)', '--c-failed', { fill: color('--c-failed') + '22', value: legendValue(count) }),
      line('duplicated/s', '--c-p95'), line('reordered/s', '--c-target', { width: 1.5 })
    ], range: function (u, min, max) { return [0, Math.max(5, max) * 1.1]; } },
    { id: 'connections', cols: ['connects', 'connectFailures', 'reconnects', 'dropped'], series: [
      line('connects/s', '--c-devices', { fill: color('--c-devices') + '22' }),
      line('connect failures/s', '--c-failed'), line('reconnects/s', '--c-p95'),
      line('dropped/s', '--c-target', { dash: [6, 4], width: 1.5 })
    ], range: function (u, min, max) { return [0, Math.max(5, max) * 1.1]; } },
    { id: 'generator', cols: ['cpu', 'loop'], series: [
      line('CPU %', '--c-devices', { fill: color('--c-devices') + '22' }),
      line('event-loop lag p99 ms', '--c-p95', { scale: 'y2' })
    ], range: function (u, min, max) { return [0, Math.max(100, max) * 1.05]; },
      y2: function (u, min, max) { return [0, Math.max(10, max) * 1.1]; } }
  ];
  // x is the run time in seconds; the run's start on the wall clock comes with the first point
  var startedAtMs = null;
  function wall(ms) { return new Date(ms).toLocaleTimeString(); }
  function runAndWall(sec) {
    return clock(sec * 1000) + (startedAtMs === null ? '' : ' (' + wall(startedAtMs + sec * 1000) + ')');
  }
  var charts = [];
  function chartWidth(host) { return Math.max(200, host.clientWidth); }
  defs.forEach(function (d) {
    var host = $('chart-' + d.id);
    var scales = { x: { time: false }, y: { range: d.range } };
    var ax = axes();
    if (d.y2) {
      // a second y axis on the right (the generator's event-loop lag in ms next to its CPU %)
      scales.y2 = { range: d.y2 };
      ax.push({ scale: 'y2', side: 1, stroke: color('--axis'), grid: { show: false }, ticks: { show: false }, size: 48 });
    }
    var opts = {
      width: chartWidth(host), height: 220,
      scales: scales,
      axes: ax,
      series: [{ label: 'run time', value: legendValue(runAndWall) }].concat(d.series),
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      plugins: [fleetloadMarkers.plugin(events, function (ev) { return ev.elapsedMs / 1000; })]
    };
    var data = [xs].concat(d.cols.map(function (c) { return cols[c]; }));
    var u = new uPlot(opts, data, host);
    charts.push({ u: u, host: host, def: d });
  });
  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      charts.forEach(function (c) {
        c.u.setData([xs].concat(c.def.cols.map(function (k) { return cols[k]; })));
        c.u.setLegend();
      });
    });
  }
  if (typeof ResizeObserver === 'function') {
    var ro = new ResizeObserver(function () {
      charts.forEach(function (c) {
        var w = chartWidth(c.host);
        if (Math.abs(w - c.u.width) > 1) c.u.setSize({ width: w, height: 220 });
      });
    });
    charts.forEach(function (c) { ro.observe(c.host); });
  }

  // ------------------------------------------------------------------------------------------ load
  // the fleet size and interval of the running test: shown from every point and 'fleet' event, changed with
  // POST /api/fleet; usable only while the run goes (the server says so with a 'fleet' event)
  var loadFields = $('load-fields');
  var loadDevices = $('load-devices');
  var loadInterval = $('load-interval');
  var loadError = $('load-error');
  var maxDevices = boot.devices;
  // the server's bound (src/web/requests.ts fleetLimits): an interval longer than the run sends nothing more
  var maxIntervalMs = Math.max(boot.runTimeMs, boot.intervalMs, 1);
  var loadOpen = false;
  var loadBusy = false;
  var loadEdited = false;
  function loadEnabled() { loadFields.disabled = !loadOpen || loadBusy; }
  function showLoad(devices, intervalMs) {
    set('load-now', 'target ' + count(devices) + ' devices · every ' + num(intervalMs) + ' ms · ' +
      num((devices * 1000) / Math.max(1e-9, intervalMs)) + ' msg/s');
    if (!loadEdited && document.activeElement !== loadDevices && document.activeElement !== loadInterval) {
      loadDevices.value = String(devices);
      loadInterval.value = String(intervalMs);
    }
  }
  function loadMessage(text) {
    loadError.textContent = text;
    loadError.hidden = !text;
  }
  function openLoad() { if (!finished && !stopping) { loadOpen = true; loadEnabled(); } }
  function closeLoad() { loadOpen = false; loadEnabled(); }
  [loadDevices, loadInterval].forEach(function (input) {
    input.addEventListener('input', function () {
      loadEdited = true;
      input.removeAttribute('aria-invalid');
      loadMessage('');
    });
  });
  // reads what the inputs ask for; a string is what is wrong with it
  function loadRequest() {
    var body = {};
    var d = loadDevices.value.trim();
    var ms = loadInterval.value.trim();
    if (d !== '') {
      var n = Number(d);
      if (!Number.isInteger(n) || n < 0 || n > maxDevices) {
        loadDevices.setAttribute('aria-invalid', 'true');
        return 'devices must be a whole number from 0 to ' + maxDevices;
      }
      body.devices = n;
    }
    if (ms !== '') {
      var v = Number(ms);
      if (!isFinite(v) || v < 1 || v > maxIntervalMs) {
        loadInterval.setAttribute('aria-invalid', 'true');
        return 'the interval must be from 1 to ' + maxIntervalMs + ' ms (the run time)';
      }
      body.intervalMs = v;
    }
    if (d === '' && ms === '') return 'enter a number of devices, an interval, or both';
    return body;
  }
  $('load').addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!loadOpen || loadBusy) return;
    var body = loadRequest();
    if (typeof body === 'string') { loadMessage(body); return; }
    loadMessage('');
    loadBusy = true;
    loadEnabled();
    fetch('/api/fleet', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().then(function (j) { return { status: r.status, body: j }; }, function () {
          return { status: r.status, body: {} };
        });
      })
      .then(function (r) {
        if (r.status !== 200) throw new Error(r.body && r.body.error ? r.body.error : 'HTTP ' + r.status);
        loadEdited = false;
        showLoad(r.body.devices, r.body.intervalMs);
      })
      .catch(function (err) { loadMessage(err.message); })
      .then(function () {
        loadBusy = false;
        loadEnabled();
      });
  });

  // ------------------------------------------------------------------------------------------ live figures
  var lastSeq = 0;
  var finished = false;
  var stopping = false;
  function setPhase(name) {
    var p = $('phase');
    p.setAttribute('data-phase', name);
    p.textContent = name;
  }
  function pair(a, b) { return num(a) + ' / ' + num(b); }
  // a figure a point may lack (a stream from an older server): a gap in the chart
  function opt(v) { return typeof v === 'number' ? v : null; }
  function point(p) {
    if (p.seq <= lastSeq) return;
    lastSeq = p.seq;
    if (startedAtMs === null) startedAtMs = p.t - p.elapsedMs;
    xs.push(p.elapsedMs / 1000);
    cols.devices.push(p.devicesConnected);
    var target = typeof p.targetDevices === 'number' ? p.targetDevices : boot.devices;
    cols.target.push(target);
    cols.sent.push(p.sentPerSec);
    cols.received.push(p.receivedPerSec);
    cols.failed.push(p.failedPerSec);
    cols.e2e50.push(p.e2eP50);
    cols.e2e95.push(p.e2eP95);
    cols.e2e99.push(p.e2eP99);
    cols.ack50.push(p.ackP50);
    cols.ack99.push(p.ackP99);
    cols.bytesSent.push(typeof p.bytesSentPerSec === 'number' ? p.bytesSentPerSec : null);
    cols.bytesReceived.push(typeof p.bytesReceivedPerSec === 'number' ? p.bytesReceivedPerSec : null);
    cols.lag50.push(opt(p.scheduleLagP50));
    cols.lag99.push(opt(p.scheduleLagP99));
    cols.gaps.push(opt(p.gaps));
    cols.duplicated.push(opt(p.duplicatedPerSec));
    cols.reordered.push(opt(p.reorderedPerSec));
    cols.connects.push(opt(p.connectsPerSec));
    cols.connectFailures.push(opt(p.connectFailuresPerSec));
    cols.reconnects.push(opt(p.reconnectsPerSec));
    cols.dropped.push(opt(p.droppedPerSec));
    cols.cpu.push(opt(p.cpuPercent));
    cols.loop.push(opt(p.eventLoopLagP99Ms));
    if (p.events) p.events.forEach(addEvent);
    if (p.errors) addErrors(p);
    if (xs.length > maxPoints) {
      var cut = xs.length - maxPoints;
      xs.splice(0, cut);
      for (var k in cols) cols[k].splice(0, cut);
    }
    set('v-devices', count(p.devicesConnected) + ' / ' + count(target));
    if (typeof p.intervalMs === 'number') showLoad(target, p.intervalMs);
    if (p.phase === 'drain') closeLoad();
    set('s-devices', p.connectFailures ? count(p.connectFailures) + ' connect failures' : 'no connect failures');
    $('card-devices').classList.toggle('alert', p.connectFailures > 0);
    set('v-sent', num(p.sentPerSec));
    set('s-sent', count(p.sent) + ' total');
    set('v-received', num(p.receivedPerSec));
    set('s-received', count(p.received) + ' total');
    set('v-e2e', pair(p.e2eP50, p.e2eP99));
    set('s-e2e', 'p95 ' + num(p.e2eP95) + ' ms');
    set('v-ack', pair(p.ackP50, p.ackP99));
    set('s-ack', boot.qos === 0 ? 'no samples: QoS 0 has no acks' : p.failed ? count(p.failed) + ' failed' : 'none failed');
    $('card-ack').classList.toggle('alert', p.failed > 0);
    set('v-gaps', count(p.gaps));
    set('s-gaps', 'final count at the end');
    $('card-gaps').classList.toggle('alert', p.gaps > 0);
    set('v-cpu', num(p.cpuPercent));
    set('s-cpu', p.cpuPercent >= 90 ? 'generator saturated?' : 'of one core');
    $('card-cpu').classList.toggle('alert', p.cpuPercent >= 90);
    set('v-lag', num(p.eventLoopLagP99Ms));
    set('s-lag', p.eventLoopLagP99Ms >= 100 ? 'generator saturated?' : 'event loop responsive');
    $('card-lag').classList.toggle('alert', p.eventLoopLagP99Ms >= 100);
    set('elapsed', clock(p.elapsedMs));
    $('progress').style.width = Math.min(100, (100 * p.elapsedMs) / Math.max(1, boot.runTimeMs)) + '%';
    if (!finished && !stopping) setPhase(p.phase);
    document.title = 'fleetload · ' + boot.runId + ' · ' + num(p.sentPerSec) + '/s';
    redraw();
  }

  // ------------------------------------------------------------------------------------------ events
  var eventLog = $('event-log');
  function addEvent(ev) {
    events.push(ev);
    var row = el('tr');
    row.setAttribute('data-kind', ev.kind);
    var at = el('td', '', fleetloadMarkers.clock(ev.elapsedMs));
    // run time, as on the charts' axes; the wall clock on hover
    if (typeof ev.atMs === 'number') at.title = wall(ev.atMs);
    row.appendChild(at);
    row.appendChild(el('td', '', ev.kind));
    row.appendChild(el('td', '', ev.message));
    eventLog.appendChild(row);
    $('events-panel').hidden = false;
  }

  // ------------------------------------------------------------------------------------------ errors
  // each point's errors by kind and code, newest first; at most MAX_ERROR_ROWS rows (the oldest go), while the
  // totals by kind above the table count every one
  var MAX_ERROR_ROWS = 200;
  var errorLog = $('error-log');
  // the header row (the parser put it in a tbody): new rows go right after it
  var errorHead = errorLog.rows[0];
  var errorTotals = {};
  var errorCount = 0;
  function addErrors(p) {
    var before = errorHead.nextSibling;
    p.errors.forEach(function (e) {
      var row = el('tr');
      row.setAttribute('data-kind', e.kind);
      row.appendChild(el('td', '', fleetloadMarkers.clock(p.elapsedMs)));
      row.appendChild(el('td', '', e.kind));
      row.appendChild(el('td', '', String(e.code)));
      row.appendChild(el('td', '', e.reason));
      row.appendChild(el('td', 'n', count(e.count)));
      errorHead.parentNode.insertBefore(row, before);
      errorTotals[e.kind] = (errorTotals[e.kind] || 0) + e.count;
      errorCount += e.count;
    });
    while (errorLog.rows.length > MAX_ERROR_ROWS + 1) errorLog.deleteRow(errorLog.rows.length - 1);
    var kinds = Object.keys(errorTotals).sort(function (a, b) { return errorTotals[b] - errorTotals[a]; });
    set('errors-total', count(errorCount) + ' so far: ' + kinds.map(function (k) {
      return k + ' ' + count(errorTotals[k]);
    }).join(' · '));
    $('errors-panel').hidden = false;
  }

  // ------------------------------------------------------------------------------------------ summary
  function table(head, rows, numericFrom) {
    var t = el('table');
    var tr = el('tr');
    head.forEach(function (h, i) {
      var th = el('th', i >= numericFrom ? 'n' : '', h);
      th.scope = 'col';
      tr.appendChild(th);
    });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) {
        var td = typeof c === 'object' && c !== null ? c : el('td', i >= numericFrom ? 'n' : '', String(c));
        row.appendChild(td);
      });
      t.appendChild(row);
    });
    return t;
  }
  function block(title, content) {
    var d = el('div');
    d.appendChild(el('h3', '', title));
    d.appendChild(content);
    return d;
  }
  function showSummary(s) {
    finished = true;
    var box = $('summary');
    box.textContent = '';
    var verdict = el('div', 'verdict');
    // invalid as the exit code says (src/run/verdict.ts exitCodeOfSummary): a lost worker's run is FAILED
    var invalid = !s.passed && !s.incomplete && s.valid === false;
    var kind = s.passed ? 'passed' : invalid ? 'invalid' : 'failed';
    verdict.appendChild(el('span', 'badge ' + kind, kind.toUpperCase()));
    var reasons = invalid ? (s.invalid && s.invalid.length ? s.invalid : ['the run did not offer or observe the load it planned']) : [];
    var why = invalid ? 'invalid: an invalid run never passes, whatever its thresholds say'
      : s.interrupted ? 'stopped early — an interrupted run never passes'
      : s.thresholds.length === 0 ? 'no thresholds set'
      : s.thresholds.filter(function (t) { return t.passed; }).length + ' of ' + s.thresholds.length + ' thresholds passed';
    verdict.appendChild(el('span', 'note', why));
    verdict.appendChild(el('span', 'note', 'ended ' + new Date(s.endedAt).toLocaleString()));
    box.appendChild(verdict);
    if (reasons.length > 0) {
      var list = el('ul', 'invalid-reasons');
      list.id = 'invalid-reasons';
      reasons.forEach(function (r) { list.appendChild(el('li', '', r)); });
      box.appendChild(list);
    }
    var grid = el('div', 'grid');
    var m = s.messages;
    grid.appendChild(block('Messages', table(['', 'count'], [
      ['sent', count(m.sent)], ['acked', count(m.acked)], ['failed', count(m.failed)],
      ['unconfirmed', count(m.unconfirmed)], ['received', count(m.received)], ['lost', count(m.lost)],
      ['duplicated', count(m.duplicated)], ['reordered', count(m.reordered)], ['foreign', count(m.foreign)]
    ], 1)));
    var lat = s.latency;
    var latRows = [['end-to-end', lat.e2e], ['publish → ack', lat.publishAck], ['connect', lat.connect],
      ['schedule lag', lat.scheduleLag]].map(function (r) {
      var l = r[1];
      if (!l.count) {
        // no samples is not a latency of 0 (QoS 0 has no acks): one cell says so
        var none = el('td', 'muted', r[0] === 'publish → ack' && s.scenario && s.scenario.qos === 0
          ? 'no samples: QoS 0 has no acks' : 'no samples');
        none.colSpan = 4;
        return [r[0], count(l.count), none];
      }
      return [r[0], count(l.count), num(l.p50), num(l.p95), num(l.p99), num(l.max)];
    });
    var right = el('div');
    right.appendChild(block('Latency (ms)', table(['', 'count', 'p50', 'p95', 'p99', 'max'], latRows, 1)));
    right.appendChild(block('Devices and rates', table(['', ''], [
      ['target / connected peak', count(s.devices.target) + ' / ' + count(s.devices.connectedPeak)],
      ['connect failures / reconnects', count(s.devices.connectFailures) + ' / ' + count(s.devices.reconnects)],
      ['sent / received per second', num(s.rates.sentPerSec) + ' / ' + num(s.rates.receivedPerSec)],
      ['bytes sent / received per second', s.bytes ? num(s.bytes.sentPerSec) + ' / ' + num(s.bytes.receivedPerSec) : '–'],
      ['generator CPU peak / loop lag p99', num(s.generator.cpuPercentPeak) + ' % / ' + num(s.generator.eventLoopLagP99) + ' ms']
    ], 1)));
    grid.appendChild(right);
    var third = el('div');
    if (s.thresholds.length > 0) {
      third.appendChild(block('Thresholds', table(['', 'threshold', 'observed'], s.thresholds.map(function (t) {
        var unit = boot.thresholdUnits[t.expr] || '';
        var mark = el('td', t.passed ? 'ok' : 'ko', t.passed ? '✓' : '✗');
        return [mark, t.expr, num(t.value) + (unit === '%' || unit === '' ? unit : ' ' + unit)];
      }), 2)));
    }
    if (s.errors.length > 0) {
      third.appendChild(block('Errors', table(['kind', 'code', 'reason', 'count'], s.errors.map(function (e) {
        return [e.kind, String(e.code), e.reason, count(e.count)];
      }), 3)));
    }
    if (s.generator.saturated) {
      third.appendChild(el('div', 'warn', 'The generator was saturated: these numbers may describe fleetload rather than the system under test.'));
    }
    if (third.childNodes.length > 0) grid.appendChild(third);
    box.appendChild(grid);
    box.hidden = false;
    setPhase(kind);
    closeLoad();
    var stop = $('stop');
    stop.disabled = true;
    stop.textContent = 'Finished';
    set('v-gaps', count(m.lost));
    set('s-gaps', 'lost (final)');
    $('card-gaps').classList.toggle('alert', m.lost > 0);
  }

  // ------------------------------------------------------------------------------------------ stream
  var status = $('status');
  function state(name, text) { status.setAttribute('data-state', name); status.textContent = text; }
  var es = new EventSource('/api/stream');
  es.onopen = function () { if (!finished) state('live', 'live'); };
  es.onerror = function () {
    if (!finished) state('down', 'connection lost — retrying…');
  };
  es.onmessage = function (ev) { point(JSON.parse(ev.data)); };
  es.addEventListener('meta', function (ev) {
    var m = JSON.parse(ev.data);
    if (m.runId !== boot.runId) { location.reload(); return; }
    set('broker', m.broker);
  });
  es.addEventListener('fleet', function (ev) {
    var f = JSON.parse(ev.data);
    maxDevices = f.maxDevices;
    loadDevices.max = String(f.maxDevices);
    showLoad(f.devices, f.intervalMs);
    openLoad();
  });
  es.addEventListener('stopping', function () {
    stopping = true;
    closeLoad();
    if (!finished) setPhase('stopping');
    var b = $('stop');
    b.disabled = true;
    b.textContent = 'Stopping…';
  });
  es.addEventListener('closed', function () {
    if (finished) return;
    es.close();
    $('stop').disabled = true;
    closeLoad();
    state('down', 'fleetload stopped without a summary — see its terminal output');
  });
  es.addEventListener('summary', function (ev) {
    var final = JSON.parse(ev.data);
    showSummary(final);
    // the other panels (devices) take their final figures from the summary: the run's server may be gone next
    window.dispatchEvent(new CustomEvent('fleetload:summary', { detail: final }));
    es.close();
    state('done', 'run finished — this page no longer updates');
  });

  $('stop').addEventListener('click', function () {
    if (!window.confirm('Stop the run now? Devices stop publishing, in-flight messages are drained and the summary is written.')) return;
    var b = $('stop');
    b.disabled = true;
    fetch('/api/stop', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
      .then(function (r) {
        if (r.status !== 202) throw new Error('HTTP ' + r.status);
        stopping = true;
        closeLoad();
        b.textContent = 'Stopping…';
        if (!finished) setPhase('stopping');
      })
      .catch(function (err) {
        b.disabled = false;
        state('down', 'stop failed: ' + err.message);
      });
  });
})();
`;
