/**
 * Run events (src/stats/events.ts) drawn on uPlot charts, shared by the live dashboard (src/web/client.ts) and
 * report.html (src/report/client.ts): a vertical dashed line per event, with a short label and the whole event as
 * its tooltip (the `title` of a thin element over the plot). Elements, not canvas strokes, so a tooltip works and
 * tests can find them (`.fl-event[data-kind]`). Text goes in with textContent and title: never parsed as markup.
 *
 * Plain ES2020 in a string, prepended to each page's script (it lives in a template literal: no backticks, no
 * dollar-brace, double any backslash).
 */
export const MARKERS_JS = `
var fleetloadMarkers = (function () {
  'use strict';
  var LABELS = {
    'load': 'load', 'stage': 'stage', 'consumer-disconnected': 'consumer lost', 'consumer-reconnected': 'consumer back',
    'broker-lost': 'broker lost', 'broker-back': 'broker back', 'threshold-failed': 'threshold failed',
    'threshold-passed': 'threshold ok', 'saturation-start': 'saturated', 'saturation-end': 'keeps up'
  };
  function clockOf(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h > 0 ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
  }
  function describe(ev) { return clockOf(ev.elapsedMs) + ' ' + ev.kind + ': ' + ev.message; }
  // events closer than SAME_PX on the chart share one label (each keeps its line; every tooltip lists them all);
  // the other labels take the first row down where they overlap no label, and flip to the left of their line
  // where the plot ends on the right
  var SAME_PX = 4, ROW_PX = 13, GAP_PX = 4;
  function groupsOf(events, xOf, u, min, max) {
    var items = [];
    events.forEach(function (ev) {
      var x = xOf(ev);
      if (x === null || !isFinite(x) || x < min || x > max) return;
      items.push({ ev: ev, pos: u.valToPos(x, 'x') });
    });
    items.sort(function (a, b) { return a.pos - b.pos; });
    var groups = [];
    items.forEach(function (it) {
      var last = groups[groups.length - 1];
      if (last && it.pos - last.pos < SAME_PX) last.evs.push(it.ev);
      else groups.push({ pos: it.pos, evs: [it.ev] });
    });
    return groups;
  }
  function labelOf(evs) {
    var seen = [];
    evs.forEach(function (ev) {
      var l = LABELS[ev.kind] || ev.kind;
      if (seen.indexOf(l) < 0) seen.push(l);
    });
    return seen.join(' + ') + (evs.length > seen.length ? ' (' + evs.length + ')' : '');
  }
  // the label's place: right of its line, or left of it where the plot ends; the first free row
  function placeLabel(label, pos, width, height, rows) {
    var w = label.offsetWidth;
    var from = pos + 4, to = pos + 4 + w;
    if (to > width && pos - 3 - w >= 0) {
      label.style.left = 'auto';
      label.style.right = '8px';
      from = pos - 3 - w;
      to = pos - 3;
    }
    var maxRows = Math.max(1, Math.floor(height / 2 / ROW_PX));
    for (var r = 0; r < maxRows; r++) {
      var row = rows[r] || (rows[r] = []);
      var free = row.every(function (x) { return to + GAP_PX <= x[0] || from >= x[1] + GAP_PX; });
      if (free) {
        row.push([from, to]);
        label.style.top = 1 + r * ROW_PX + 'px';
        label.setAttribute('data-row', String(r));
        return;
      }
    }
    // no room left: the line and its tooltip stay, the label goes
    label.hidden = true;
  }
  // events: an array the page may append to (redraw the chart after); xOf: an event's x in the chart's scale
  function plugin(events, xOf) {
    function draw(u) {
      var layer = u.over.querySelector('.fl-events');
      if (!layer) {
        layer = document.createElement('div');
        layer.className = 'fl-events';
        u.over.appendChild(layer);
      }
      layer.textContent = '';
      var min = u.scales.x.min, max = u.scales.x.max;
      if (min === null || max === null || min === undefined || max === undefined) return;
      var width = u.over.clientWidth, height = u.over.clientHeight;
      var rows = [];
      groupsOf(events, xOf, u, min, max).forEach(function (g) {
        var title = g.evs.map(describe).join('\\n');
        g.evs.forEach(function (ev, i) {
          var m = document.createElement('div');
          m.className = 'fl-event';
          m.setAttribute('data-kind', ev.kind);
          m.style.left = g.pos + 'px';
          m.title = title;
          layer.appendChild(m);
          if (i > 0) return;
          var label = document.createElement('span');
          label.textContent = labelOf(g.evs);
          m.appendChild(label);
          placeLabel(label, g.pos, width, height, rows);
        });
      });
    }
    return { hooks: { draw: [draw] } };
  }
  return { plugin: plugin, describe: describe, clock: clockOf, label: function (k) { return LABELS[k] || k; } };
})();
`;

/** The markers' styles: bad news red, good news green, load and stages in the target color. */
export const MARKERS_CSS = `
.fl-events { position: absolute; inset: 0; pointer-events: none; overflow: hidden; }
.fl-event { position: absolute; top: 0; bottom: 0; width: 9px; margin-left: -4px; pointer-events: auto; cursor: help; --ev: var(--accent, #4f46e5); }
.fl-event::before { content: ''; position: absolute; left: 4px; top: 0; bottom: 0; border-left: 1.5px dashed var(--ev); }
.fl-event span { position: absolute; top: 1px; left: 8px; font: 10px system-ui, sans-serif; white-space: nowrap; color: var(--ev); background: var(--panel, transparent); padding: 0 2px; border-radius: 2px; opacity: 0.9; }
.fl-event[data-kind="broker-lost"], .fl-event[data-kind="threshold-failed"], .fl-event[data-kind="saturation-start"], .fl-event[data-kind="consumer-disconnected"] { --ev: var(--bad, #dc2626); }
.fl-event[data-kind="broker-back"], .fl-event[data-kind="threshold-passed"], .fl-event[data-kind="saturation-end"], .fl-event[data-kind="consumer-reconnected"] { --ev: var(--good, #16a34a); }
`;
