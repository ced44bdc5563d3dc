/**
 * The dashboard's "Devices" panel: polls GET /api/devices every few seconds (the pipeline recomputes the top lists
 * every 5 s; the final ones come with the summary) and shows each non-empty top list — lost (holes so far, final
 * at the end), duplicated, reordered, connect failures, e2e p99 — as a small table. Values go in with textContent.
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
  function render(d) {
    var top = d.devices;
    if (!top) return;
    var grid = el('div', 'devices-grid');
    LISTS.forEach(function (l) {
      var list = top[l[0]] || [];
      if (list.length === 0) return;
      var t = el('table');
      t.setAttribute('data-list', l[0]);
      var head = el('tr');
      head.appendChild(el('th', '', 'device'));
      head.appendChild(el('th', 'n', l[1]));
      t.appendChild(head);
      list.forEach(function (e) {
        var tr = el('tr');
        tr.appendChild(el('td', '', e.deviceId));
        tr.appendChild(el('td', 'n', String(e.value) + l[2]));
        t.appendChild(tr);
      });
      var cell = el('div');
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
    if (s && s.devicesTop) render({ devices: s.devicesTop, final: true });
  });
  poll();
})();
`;
