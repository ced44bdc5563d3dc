/**
 * The report's browser script, inlined into report.html after uPlot. Plain ES2020 in a string (tsc does not copy
 * assets to dist). It reads the embedded JSON (#report-data) and draws every chart the server described: the
 * chart definitions (series, colors, units) are data made in html.ts; this script only knows how to draw them.
 * Nothing here builds markup from data: uPlot puts legend values in place as text.
 *
 * It lives in a template literal: no backticks, no dollar-brace, and double any backslash. The run's events are
 * drawn on every chart over time by the markers plugin (src/html/markers.ts), prepended.
 */
import { MARKERS_JS } from '../html/markers.js';

export const REPORT_JS = `${MARKERS_JS}
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var css = getComputedStyle(document.documentElement);
  var color = function (name) { return css.getPropertyValue(name).trim() || '#888'; };

  var intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function num(v) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    var a = Math.abs(v);
    if (a >= 1000) return intFmt.format(v);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a === 0) return '0';
    if (a < 0.01) return v.toPrecision(2);
    return v.toFixed(2);
  }
  // axis ticks: as many digits as the tick needs, no more
  function tick(v) {
    if (v === null || !isFinite(v)) return '';
    if (Math.abs(v) >= 1000) return intFmt.format(v);
    return String(Number(v.toPrecision(6)));
  }
  function clock(sec) {
    var s = Math.max(0, Math.round(sec));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h > 0 ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
  }
  // x of the percentile chart is 1 / (1 - q): 1 → 0 %, 10 → 90 %, 1e5 → 99.999 %
  function pctLabel(x) {
    var q = 100 * (1 - 1 / x);
    if (q <= 0) return '0%';
    var digits = Math.max(0, Math.min(4, Math.ceil(Math.log10(x)) - 2));
    return q.toFixed(digits) + '%';
  }
  function legendValue(fmt) {
    return function (u, v) { return v === null || v === undefined ? '–' : fmt(v); };
  }

  function bandsHook(bands) {
    return function (u) {
      if (!bands || bands.length === 0) return;
      var ctx = u.ctx;
      ctx.save();
      bands.forEach(function (b) {
        var x0 = u.valToPos(b.from, 'x', true), x1 = u.valToPos(b.to, 'x', true);
        var left = Math.max(u.bbox.left, Math.min(x0, x1));
        var right = Math.min(u.bbox.left + u.bbox.width, Math.max(x0, x1));
        if (right <= left) return;
        ctx.fillStyle = color('--band-' + b.kind);
        ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
      });
      ctx.restore();
    };
  }

  var charts = [];
  function width(host) { return Math.max(240, host.clientWidth); }
  data.charts.forEach(function (c) {
    var host = document.getElementById('chart-' + c.id);
    if (!host) return;
    var src = c.kind === 'percentile' ? data.dist : data.time;
    var a = color('--axis'), g = color('--grid');
    var yFloor = c.yMin || 0;
    var axes = [
      c.kind === 'percentile'
        ? { stroke: a, grid: { stroke: g, width: 1 }, ticks: { stroke: g, width: 1 },
            splits: function () { return [1, 10, 100, 1000, 10000, 100000]; },
            values: function (u, splits) { return splits.map(pctLabel); } }
        : { stroke: a, grid: { stroke: g, width: 1 }, ticks: { stroke: g, width: 1 },
            incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400],
            values: function (u, splits) { return splits.map(clock); } },
      { stroke: a, grid: { stroke: g, width: 1 }, ticks: { show: false }, size: 60, label: c.unit || '',
        labelSize: c.unit ? 18 : 0, labelFont: '12px system-ui, sans-serif',
        values: function (u, splits) { return splits.map(tick); } }
    ];
    var scales = {
      x: c.kind === 'percentile'
        ? { time: false, distr: 3, log: 10, range: function () { return [1, 100000]; } }
        : { time: false },
      y: { range: function (u, min, max) { return [0, Math.max(yFloor, max || 0, 1e-3) * 1.08]; } }
    };
    if (c.unit2) {
      scales.y2 = { range: function (u, min, max) { return [0, Math.max(c.y2Min || 0, max || 0, 1e-3) * 1.08]; } };
      axes.push({ scale: 'y2', side: 1, stroke: a, grid: { show: false }, ticks: { show: false }, size: 60,
        label: c.unit2, labelSize: 18, labelFont: '12px system-ui, sans-serif',
        values: function (u, splits) { return splits.map(tick); } });
    }
    var series = [{
      label: c.kind === 'percentile' ? 'percentile' : 'elapsed',
      value: legendValue(c.kind === 'percentile' ? pctLabel : clock)
    }];
    c.series.forEach(function (s) {
      var stroke = color(s.color);
      var def = { label: s.label, stroke: stroke, width: s.width || 2, points: { show: false },
        scale: s.scale || 'y', value: legendValue(num), spanGaps: false };
      if (s.dash) def.dash = [6, 4];
      if (s.fill) def.fill = stroke + '22';
      series.push(def);
    });
    var opts = {
      width: width(host), height: c.height || 230,
      scales: scales, axes: axes, series: series,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { drawClear: [bandsHook(c.kind === 'percentile' ? [] : data.bands)] },
      plugins: c.kind === 'percentile' ? [] : [fleetloadMarkers.plugin(data.events || [], function (ev) { return ev.elapsedMs / 1000; })]
    };
    var cols = [src.x].concat(c.series.map(function (s) { return src[s.col] || []; }));
    var u = new uPlot(opts, cols, host);
    charts.push({ u: u, host: host, height: opts.height });
  });

  if (typeof ResizeObserver === 'function') {
    var ro = new ResizeObserver(function () {
      charts.forEach(function (c) {
        var w = width(c.host);
        if (Math.abs(w - c.u.width) > 1) c.u.setSize({ width: w, height: c.height });
      });
    });
    charts.forEach(function (c) { ro.observe(c.host); });
  }
  document.documentElement.setAttribute('data-charts', String(charts.length));
})();
`;
