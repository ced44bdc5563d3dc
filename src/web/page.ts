import { escapeHtml, noScriptEnd, noStyleEnd, scriptJson } from '../html/escape.js';
import { MARKERS_CSS } from '../html/markers.js';
import { THEME_CSS } from '../html/theme.js';
import { CLIENT_JS } from './client.js';
import { DEVICES_JS } from './devices-client.js';

/**
 * The dashboard page: one self-contained HTML document. Everything it needs is inline (uPlot, styles, the
 * client script, the run's static facts as JSON); the live figures arrive over /api/stream and are put in
 * place with textContent, never as markup.
 */

/** Static facts about the run, known before it starts; embedded in the page as JSON. */
export interface BootData {
  runId: string;
  version: string;
  /** redacted */
  broker: string;
  devices: number;
  spawnRate: number;
  runTimeMs: number;
  intervalMs: number;
  qos: number;
  mqttVersion: string;
  consumer: string;
  /** threshold expression → unit of its observed value ('ms', 's', '%' or '') */
  thresholdUnits: Record<string, string>;
  /** the redacted scenario, as label/value rows */
  scenario: Array<[string, string]>;
  maxPoints: number;
}

function formatRunTime(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`
    : `${m}:${String(sec).padStart(2, '0')}`;
}

export interface PageInput {
  boot: BootData;
  /** CSP nonce for the inline scripts */
  nonce: string;
  uplotJs: string;
  uplotCss: string;
}

export function renderPage(p: PageInput): string {
  const b = p.boot;
  const e = escapeHtml;
  const nonce = e(p.nonce);
  const card = (id: string, label: string, unit = '') =>
    `<div class="card" id="card-${id}"><div class="label">${label}</div>` +
    `<div class="value"><span id="v-${id}">–</span><span class="unit">${unit}</span></div>` +
    `<div class="sub" id="s-${id}">&nbsp;</div></div>`;
  const chart = (id: string, title: string) =>
    `<section class="panel"><h2>${title}</h2><div class="chart" id="chart-${id}"></div></section>`;
  const scenarioRows = b.scenario
    .map(([k, v]) => `<tr><th scope="row">${e(k)}</th><td>${e(v)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>fleetload · ${e(b.runId)}</title>
<link rel="icon" href="data:,">
<style>${noStyleEnd(p.uplotCss)}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
  <div class="bar">
    <div class="brand"><span class="logo">fleetload</span><span class="ver">${e(b.version)}</span></div>
    <div class="run">run <strong id="run-id">${e(b.runId)}</strong></div>
    <div class="spacer"></div>
    <form class="load" id="load" novalidate aria-label="Change the load of the running test">
      <fieldset id="load-fields" disabled>
        <span class="k">Load</span>
        <label><input type="number" id="load-devices" inputmode="numeric" min="0" max="${e(String(b.devices))}" step="1" value="${e(String(b.devices))}" aria-label="devices (0 to ${e(String(b.devices))})"> <span class="k">of ${e(String(b.devices))} devices</span></label>
        <label><span class="k">every</span> <input type="number" id="load-interval" inputmode="decimal" min="1" max="${e(String(Math.max(b.runTimeMs, b.intervalMs, 1)))}" step="any" value="${e(String(b.intervalMs))}" aria-label="interval in milliseconds"> <span class="k">ms</span></label>
        <button type="submit" id="load-apply" class="apply" title="Change the fleet size and each device's interval while the run goes">Apply</button>
      </fieldset>
      <div class="load-now"><span id="load-now">${e(String(b.devices))} devices × ${e(String(b.intervalMs))} ms</span><span id="load-error" class="load-error" role="alert" hidden></span></div>
    </form>
    <span class="phase" id="phase" data-phase="starting">starting</span>
    <button type="button" id="stop" class="stop" title="Stop the run: drain in-flight messages, write the summary">Stop</button>
  </div>
  <div class="facts">
    <span><span class="k">broker</span> <span id="broker">${e(b.broker)}</span></span>
    <span><span class="k">devices</span> ${e(String(b.devices))} @ ${e(String(b.spawnRate))}/s</span>
    <span><span class="k">every</span> ${e(String(b.intervalMs))} ms</span>
    <span><span class="k">QoS</span> ${e(String(b.qos))}</span>
    <span><span class="k">MQTT</span> ${e(b.mqttVersion)}</span>
    <span><span class="k">consumer</span> ${e(b.consumer)}</span>
  </div>
  <div class="progress" aria-label="elapsed of run time">
    <div class="track"><div class="fill" id="progress"></div></div>
    <div class="clock"><span id="elapsed">0:00</span> / ${e(formatRunTime(b.runTimeMs))}</div>
  </div>
</header>
<main>
  <section class="summary" id="summary" hidden></section>
  <section class="cards">
    ${card('devices', 'Devices connected')}
    ${card('sent', 'Sent', '/s')}
    ${card('received', 'Received', '/s')}
    ${card('e2e', 'End-to-end p50 / p99', 'ms')}
    ${card('ack', 'Publish-ack p50 / p99', 'ms')}
    ${card('gaps', 'Gaps (lost so far)')}
    ${card('cpu', 'Generator CPU', '%')}
    ${card('lag', 'Event-loop lag p99', 'ms')}
  </section>
  <section class="charts">
    ${chart('devices', 'Devices connected')}
    ${chart('rates', 'Messages per second: sent vs received')}
    ${chart('e2e', 'End-to-end delay (ms)')}
    ${chart('ack', b.qos === 0 ? 'Publish → ack (ms) <span class="k">no samples: QoS 0 has no acks</span>' : 'Publish → ack (ms)')}
    ${chart('bytes', 'Bytes per second: sent vs received')}
    ${chart('lag', 'Schedule lag (send time − scheduled time, ms)')}
    ${chart('loss', 'Loss and duplicates')}
    ${chart('connections', 'Connections per second: connects, failures, reconnects, dropped')}
    ${chart('generator', 'Generator: CPU % and event-loop lag (ms)')}
  </section>
  <div class="logs">
  <section class="panel events-panel" id="events-panel" hidden>
    <h2>Events</h2>
    <table class="events" id="event-log"><tr><th scope="col">at</th><th scope="col">event</th><th scope="col">what happened</th></tr></table>
  </section>
  <section class="panel errors-panel" id="errors-panel" hidden>
    <h2>Errors <span class="errors-total" id="errors-total"></span></h2>
    <div class="errors-scroll">
    <table class="events errors" id="error-log"><tr><th scope="col">at</th><th scope="col">kind</th><th scope="col">code</th><th scope="col">what happened</th><th scope="col" class="n">count</th></tr></table>
    </div>
  </section>
  </div>
  <section class="panel devices" id="devices" hidden></section>
  <details class="scenario">
    <summary>Scenario (secrets redacted)</summary>
    <table>${scenarioRows}</table>
  </details>
</main>
<footer><span id="status">connecting…</span><span class="spacer"></span><span>fleetload ${e(b.version)} · one point per second · read-only apart from Load and Stop</span></footer>
<script type="application/json" id="boot">${scriptJson(b)}</script>
<script nonce="${nonce}">${noScriptEnd(p.uplotJs)}</script>
<script nonce="${nonce}">${noScriptEnd(CLIENT_JS)}</script>
<script nonce="${nonce}">${noScriptEnd(DEVICES_JS)}</script>
</body>
</html>
`;
}

const PAGE_CSS = `${THEME_CSS}${MARKERS_CSS}
.logs { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; margin-top: 12px; align-items: start; }
.errors-total { color: var(--muted); font-weight: 400; margin-left: 8px; }
.errors-scroll { max-height: 320px; overflow-y: auto; }
table.events { border-collapse: collapse; width: 100%; font-size: 13px; }
table.events th, table.events td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--border); }
table.events th { color: var(--muted); font-weight: 500; }
table.events td:first-child { width: 4em; }
table.events td:nth-child(2) { width: 13em; white-space: nowrap; }
table.errors td:nth-child(2) { width: 9em; }
table.errors td:nth-child(3) { width: 8em; white-space: nowrap; }
table.errors td.n, table.errors th.n { text-align: right; width: 5em; }
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-variant-numeric: tabular-nums;
}
header { background: var(--panel); border-bottom: 1px solid var(--border); padding: 12px 24px 10px; }
.bar { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; }
.brand { display: flex; align-items: baseline; gap: 6px; }
.logo { font-weight: 700; font-size: 18px; letter-spacing: -0.02em; color: var(--accent); }
.ver { color: var(--muted); font-size: 12px; }
.run { font-size: 15px; }
.run strong { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 600; }
.spacer { flex: 1; }
.phase {
  text-transform: uppercase; font-size: 11px; font-weight: 700; letter-spacing: 0.06em;
  padding: 4px 10px; border-radius: 999px; background: var(--track); color: var(--muted);
}
.phase[data-phase="ramp"] { background: rgba(46, 144, 250, 0.15); color: var(--c-sent); }
.phase[data-phase="steady"] { background: rgba(18, 183, 106, 0.15); color: var(--good); }
.phase[data-phase="drain"], .phase[data-phase="stopping"] { background: rgba(247, 144, 9, 0.15); color: var(--warn); }
.phase[data-phase="passed"] { background: var(--good); color: #fff; }
.phase[data-phase="failed"] { background: var(--bad); color: #fff; }
.phase[data-phase="invalid"] { background: var(--warn); color: #111; }
.stop {
  font: inherit; font-weight: 600; cursor: pointer; padding: 6px 16px; border-radius: 6px;
  border: 1px solid var(--bad); background: transparent; color: var(--bad);
}
.stop:hover:not(:disabled) { background: var(--bad); color: #fff; }
.stop:disabled { opacity: 0.45; cursor: default; }
.load { display: flex; flex-direction: column; align-items: flex-end; gap: 2px; margin: 0; }
.load fieldset { display: flex; align-items: center; gap: 8px; border: 0; margin: 0; padding: 0; font-size: 13px; }
.load fieldset:disabled { opacity: 0.55; }
.load label { display: inline-flex; align-items: center; gap: 4px; }
.load .k { color: var(--muted); }
.load fieldset > .k:first-child { text-transform: uppercase; font-size: 11px; font-weight: 700; letter-spacing: 0.06em; }
.load input {
  font: inherit; font-variant-numeric: tabular-nums; width: 76px; padding: 4px 6px; border-radius: 6px;
  border: 1px solid var(--border); background: var(--bg); color: var(--text);
}
.load input:focus { outline: 2px solid var(--accent); outline-offset: -1px; }
.load input[aria-invalid="true"] { border-color: var(--bad); }
.apply {
  font: inherit; font-weight: 600; cursor: pointer; padding: 5px 14px; border-radius: 6px;
  border: 1px solid var(--accent); background: transparent; color: var(--accent);
}
.apply:hover:not(:disabled) { background: var(--accent); color: #fff; }
.apply:disabled { cursor: default; }
.load-now { font-size: 12px; color: var(--muted); min-height: 17px; display: flex; gap: 10px; }
.load-error { color: var(--bad); font-weight: 500; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 20px; margin-top: 6px; color: var(--text); font-size: 13px; }
.facts .k { color: var(--muted); }
.panel h2 .k { color: var(--muted); font-weight: 400; margin-left: 6px; }
#broker { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.progress { display: flex; align-items: center; gap: 12px; margin-top: 10px; }
.track { flex: 1; height: 6px; border-radius: 3px; background: var(--track); overflow: hidden; }
.fill { height: 100%; width: 0; background: var(--accent); transition: width 0.4s linear; }
.clock { color: var(--muted); font-size: 13px; min-width: 90px; text-align: right; }
main { padding: 16px 24px 8px; max-width: 1600px; margin: 0 auto; }
.cards { display: grid; grid-template-columns: repeat(2, 1fr); gap: 12px; }
@media (min-width: 700px) { .cards { grid-template-columns: repeat(4, 1fr); } }
@media (min-width: 1700px) { .cards { grid-template-columns: repeat(8, 1fr); } }
.card { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; min-width: 0; overflow: hidden; }
.card .label { color: var(--muted); font-size: 12px; font-weight: 500; }
.card .value { font-size: 22px; font-weight: 650; margin-top: 2px; white-space: nowrap; }
.card .unit { font-size: 13px; font-weight: 500; color: var(--muted); margin-left: 3px; }
.card .sub { color: var(--muted); font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.card.alert .value { color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 12px; margin-top: 12px; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px 6px; min-width: 0; }
.panel h2 { font-size: 13px; font-weight: 600; margin: 0 0 6px; }
.chart { min-height: 240px; }
.uplot { font-family: inherit; }
.u-legend { font-size: 12px; color: var(--text); }
.u-legend .u-marker { border-radius: 2px; }
.summary { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 14px 18px; margin-bottom: 12px; }
.summary .verdict { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.summary .badge { font-weight: 700; font-size: 16px; padding: 4px 14px; border-radius: 6px; color: #fff; }
.summary .badge.passed { background: var(--good); }
.summary .badge.failed { background: var(--bad); }
.summary .badge.invalid { background: var(--warn); color: #111; }
.summary ul.invalid-reasons { margin: 8px 0 0; padding: 6px 12px 6px 28px; border-left: 4px solid var(--warn); }
.summary td.muted { color: var(--muted); }
.summary .note { color: var(--muted); }
.summary .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 8px 24px; margin-top: 10px; }
.summary h3 { font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 8px 0 4px; }
.summary table, .scenario table { border-collapse: collapse; width: 100%; font-size: 13px; }
.summary th, .summary td, .scenario th, .scenario td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--border); }
.summary td.n, .summary th.n { text-align: right; }
.summary th { color: var(--muted); font-weight: 500; }
.summary .ok { color: var(--good); font-weight: 700; }
.summary .ko { color: var(--bad); font-weight: 700; }
.devices { margin-top: 12px; }
.devices .devices-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 8px 24px; }
.devices h3 { font-size: 12px; color: var(--muted); margin: 4px 0; }
.devices table { border-collapse: collapse; width: 100%; font-size: 13px; }
.devices th, .devices td { text-align: left; padding: 2px 8px 2px 0; border-bottom: 1px solid var(--border); }
.devices .n { text-align: right; }
.devices .wide { grid-column: span 2; }
.devices td.ranges { font-size: 12px; }
.devices .muted { color: var(--muted); }
.summary .warn { color: var(--warn); font-weight: 600; margin-top: 8px; }
.scenario { margin-top: 12px; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 8px 14px; }
.scenario summary { cursor: pointer; color: var(--muted); font-weight: 500; }
.scenario th { color: var(--muted); font-weight: 500; width: 200px; }
.scenario td { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
footer { display: flex; gap: 12px; padding: 8px 24px 16px; color: var(--muted); font-size: 12px; max-width: 1600px; margin: 0 auto; }
#status[data-state="live"]::before { content: "● "; color: var(--good); }
#status[data-state="down"]::before { content: "● "; color: var(--bad); }
#status[data-state="done"]::before { content: "● "; color: var(--muted); }
@media (max-width: 560px) { .charts { grid-template-columns: 1fr; } header, main { padding-left: 12px; padding-right: 12px; } }
`;
