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
      events.forEach(function (ev) {
        var x = xOf(ev);
        if (x === null || !isFinite(x) || x < min || x > max) return;
        var m = document.createElement('div');
        m.className = 'fl-event';
        m.setAttribute('data-kind', ev.kind);
        m.style.left = u.valToPos(x, 'x') + 'px';
        m.title = describe(ev);
        var label = document.createElement('span');
        label.textContent = LABELS[ev.kind] || ev.kind;
        m.appendChild(label);
        layer.appendChild(m);
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
