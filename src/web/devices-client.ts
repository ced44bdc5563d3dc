/**
 * The dashboard's "Devices" panel: polls GET /api/devices every few seconds (the pipeline recomputes the top lists
 * every 5 s; the final ones come with the summary) and shows each non-empty top list — lost (holes so far, final
 * at the end, with each device's lost seq ranges and when they were scheduled), duplicated, reordered, connect
 * failures, e2e p99 — as a small table. Values go in with textContent.
 * Same rules as client.ts: plain ES2020 in a template literal, no backticks, no dollar-brace.
 */
export const DEVICES_JS = `
(function () {
  'use strict';
  var box = document.getElementById('devices');
  if (!box) return;
  var LISTS = [['lost', 'lost', ''], ['duplicated', 'duplicated', ''], ['reordered', 'reordered', ''],
    ['connectFailures', 'connect failures', ''], ['e2eP99', 'e2e p99', ' ms']];
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  // run time (0:10), as in the event log and on the charts' axes
  function clock(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h > 0 ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
  }
  // a lost range: 'seqs 5–14 at 0:10–0:19' (scheduled send times from the run's start; UTC on hover)
  function rangeText(r, startMs) {
    var text = r.fromSeq === r.toSeq ? 'seq ' + r.fromSeq : 'seqs ' + r.fromSeq + '–' + r.toSeq;
    if (typeof r.fromTs !== 'number' || typeof r.toTs !== 'number') return { text: text };
    var at = function (ts) { return startMs === null ? new Date(ts).toLocaleTimeString() : clock(ts - startMs); };
    var from = at(r.fromTs), to = at(r.toTs);
    return {
      text: text + ' at ' + (from === to ? from : from + '–' + to),
      title: new Date(r.fromTs).toISOString() + ' – ' + new Date(r.toTs).toISOString() + ' (scheduled)'
    };
  }
  function rangesCell(e, startMs) {
    var td = el('td', 'ranges');
    (e.ranges || []).forEach(function (r) {
      var t = rangeText(r, startMs);
      var line = el('div', '', t.text);
      if (t.title) line.title = t.title;
      td.appendChild(line);
    });
    if (e.moreRanges) td.appendChild(el('div', 'muted', '+' + e.moreRanges + ' more'));
    return td;
  }
  function render(d) {
    var top = d.devices;
    var startMs = typeof d.startedAt === 'string' && isFinite(Date.parse(d.startedAt)) ? Date.parse(d.startedAt) : null;
    if (!top) return;
    var grid = el('div', 'devices-grid');
    LISTS.forEach(function (l) {
      var list = top[l[0]] || [];
      if (list.length === 0) return;
      var t = el('table');
      t.setAttribute('data-list', l[0]);
      // the final lost list carries each device's seq ranges (the live one counts holes only)
      var ranges = l[0] === 'lost' && list.some(function (e) { return e.ranges && e.ranges.length > 0; });
      var head = el('tr');
      head.appendChild(el('th', '', 'device'));
      head.appendChild(el('th', 'n', l[1]));
      if (ranges) head.appendChild(el('th', '', 'lost seqs, scheduled'));
      t.appendChild(head);
      list.forEach(function (e) {
        var tr = el('tr');
        tr.appendChild(el('td', '', e.deviceId));
        tr.appendChild(el('td', 'n', String(e.value) + l[2]));
        if (ranges) tr.appendChild(rangesCell(e, startMs));
        t.appendChild(tr);
      });
      var cell = el('div', ranges ? 'wide' : '');
      var n = top.counts ? top.counts[l[0]] : list.length;
      cell.appendChild(el('h3', '', l[1] + (n > list.length ? ' (top ' + list.length + ' of ' + n + ')' : '')));
      cell.appendChild(t);
      grid.appendChild(cell);
    });
    var h = el('h2', '', 'Devices' + (d.final ? '' : ' (so far; lost = gaps)'));
    box.textContent = '';
    box.appendChild(h);
    box.appendChild(grid);
    box.hidden = grid.childNodes.length === 0;
  }
  var done = false;
  function poll() {
    if (done) return;
    fetch('/api/devices', { headers: { Accept: 'application/json' } })
      .then(function (r) {
        // the run's server is gone (a framed dashboard after its run): nothing more will come
        if (r.status === 404) done = true;
        return r.ok ? r.json() : null;
      })
      .then(function (d) {
        if (d && !done) { render(d); if (d.final) done = true; }
      })
      .catch(function () {})
      .then(function () { if (!done) setTimeout(poll, 2500); });
  }
  // the summary on the stream carries the final top lists: no poll after it (the server may be gone)
  window.addEventListener('fleetload:summary', function (ev) {
    done = true;
    var s = ev.detail;
    if (s && s.devicesTop) render({ devices: s.devicesTop, final: true, startedAt: s.startedAt });
  });
  poll();
})();
`;
