import { MARKERS_CSS } from '../html/markers.js';
import { THEME_CSS } from '../html/theme.js';

/** The report's stylesheet: the live dashboard's look (src/web/page.ts), for a static page that is also printed. */
export const REPORT_CSS = `${THEME_CSS}${MARKERS_CSS}
.events-section { margin-bottom: 12px; }
table.events td:first-child { width: 4em; }
table.events td:nth-child(2) { width: 13em; white-space: nowrap; }
:root { --band-ramp: rgba(46, 144, 250, 0.07); --band-drain: rgba(247, 144, 9, 0.09); }
@media (prefers-color-scheme: dark) {
  :root { --band-ramp: rgba(83, 177, 253, 0.08); --band-drain: rgba(253, 176, 34, 0.08); }
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-variant-numeric: tabular-nums;
}
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
header { background: var(--panel); border-bottom: 1px solid var(--border); padding: 12px 24px 12px; }
.bar { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; max-width: 1600px; margin: 0 auto; }
.brand { display: flex; align-items: baseline; gap: 6px; }
.logo { font-weight: 700; font-size: 18px; letter-spacing: -0.02em; color: var(--accent); }
.tag { font-weight: 600; font-size: 13px; color: var(--text); }
.ver { color: var(--muted); font-size: 12px; }
.run { font-size: 15px; }
.run strong { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 600; }
.spacer { flex: 1; }
.note { color: var(--muted); font-size: 13px; }
.badge { font-weight: 700; font-size: 15px; padding: 4px 14px; border-radius: 6px; color: #fff; letter-spacing: 0.03em; }
.badge.passed { background: var(--good); }
.badge.failed { background: var(--bad); }
.badge.invalid { background: var(--warn); color: #111; }
.invalid-reasons { background: var(--panel); border: 1px solid var(--warn); border-left-width: 4px; border-radius: 8px; padding: 10px 14px 8px; margin-bottom: 12px; }
.invalid-reasons h2 { font-size: 14px; margin: 0 0 4px; }
.invalid-reasons ul { margin: 4px 0; padding-left: 20px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 8px auto 0; font-size: 13px; max-width: 1600px; }
.facts .k { color: var(--muted); }
main { padding: 16px 24px 8px; max-width: 1600px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
@media (min-width: 760px) { .cards { grid-template-columns: repeat(4, 1fr); } }
.card { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; min-width: 0; overflow: hidden; }
.card .label { color: var(--muted); font-size: 12px; font-weight: 500; }
.card .value { font-size: 22px; font-weight: 650; margin-top: 2px; white-space: nowrap; }
.card .unit { font-size: 13px; font-weight: 500; color: var(--muted); margin-left: 4px; }
.card .sub { color: var(--muted); font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card.alert .value { color: var(--bad); }
.grid3, .grid2, .charts { display: grid; gap: 12px; margin-top: 12px; }
.grid3 { grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); }
.grid2 { grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); }
.charts { grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px 8px; min-width: 0; }
.panel.alert { border-color: var(--bad); }
.panel.wide { grid-column: 1 / -1; }
.panel h2 { font-size: 13px; font-weight: 600; margin: 0 0 8px; }
.panel p { margin: 4px 0 6px; }
.chart { min-height: 230px; }
.nochart { min-height: 120px; display: flex; align-items: center; justify-content: center; color: var(--muted);
  border: 1px dashed var(--border); border-radius: 6px; margin: 4px 0 8px; padding: 12px; text-align: center; }
.dist { display: grid; grid-template-columns: minmax(0, 1fr) 260px; gap: 16px; align-items: start; }
@media (max-width: 900px) { .dist { grid-template-columns: 1fr; } }
.uplot { font-family: inherit; }
.u-legend { font-size: 12px; color: var(--text); }
.u-legend .u-marker { border-radius: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--border); vertical-align: top; }
thead th { color: var(--muted); font-weight: 500; font-size: 12px; }
tbody th { font-weight: 500; }
td.n, th.n { text-align: right; white-space: nowrap; }
table.messages td:last-child { padding-left: 14px; }
.muted, .hint { color: var(--muted); }
.hint { font-size: 12px; }
.ok { color: var(--good); font-weight: 650; }
.ko { color: var(--bad); font-weight: 650; }
.scenario { margin-top: 12px; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 8px 14px; }
.scenario summary { cursor: pointer; color: var(--muted); font-weight: 500; padding: 2px 0 6px; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); column-gap: 24px; }
.kv > div { display: flex; gap: 12px; padding: 3px 0; border-bottom: 1px solid var(--border); font-size: 13px; min-width: 0; }
.kv .k { color: var(--muted); flex: 0 0 130px; }
.kv .v { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
.notes { margin-top: 12px; background: var(--panel); border: 1px solid var(--warn); border-radius: 8px; padding: 8px 14px; }
.notes h2 { font-size: 13px; margin: 0 0 4px; color: var(--warn); }
.notes ul { margin: 0; padding-left: 20px; }
footer { display: flex; flex-wrap: wrap; gap: 12px; padding: 8px 24px 16px; color: var(--muted); font-size: 12px; max-width: 1600px; margin: 0 auto; }
@media (max-width: 560px) { .charts, .grid2, .grid3 { grid-template-columns: 1fr; } header, main { padding-left: 12px; padding-right: 12px; } }
@media print {
  body { background: #fff; }
  .panel, .card { break-inside: avoid; }
  .scenario summary { display: none; }
}
`;
