import { escapeHtml, noScriptEnd, scriptJson } from '../html/escape.js';
import { THEME_CSS } from '../html/theme.js';
import { UI_CLIENT_JS } from './ui-client.js';
import type { FormField, FormModel } from './ui-form.js';

/**
 * The page of `fleetload ui`: three tabs (New test, Live, History) in one self-contained document. The form is
 * rendered from the form model (src/web/ui-form.ts, derived from the scenario schema); the Live tab frames the
 * running test's own dashboard (/live); History and the run's state come from /api/ui/*. Values are put in
 * place with textContent by the client, never as markup.
 */

export interface UiBoot {
  version: string;
  /** the results folder */
  out: string;
  form: FormModel;
  /** what "within noise" means (src/report/compare.ts), under a comparison */
  compareRule?: string;
}

function fieldHtml(f: FormField): string {
  const e = escapeHtml;
  const id = `f-${f.key}`;
  const help =
    (f.description ? `<span class="help">${e(f.description)}</span>` : '') +
    (f.fromEnv ? `<span class="help env">empty: ${e(f.fromEnv)}=${e(f.default ?? '')}</span>` : '');
  const label = `<span class="name">${e(f.key)}</span> <code class="flag">--${e(f.flag)}</code>`;
  const dflt = f.default !== undefined && f.default !== '' ? ` placeholder="${e(f.default)}"` : '';
  const common = `id="${id}" name="${e(f.key)}" data-key="${e(f.key)}" aria-describedby="e-${e(f.key)}"`;
  let input: string;
  switch (f.input) {
    case 'checkbox':
      return (
        `<div class="field check" data-field="${e(f.key)}"><label><input type="checkbox" ${common}> ${label}</label>` +
        `${help}<span class="err" id="e-${e(f.key)}" role="alert"></span></div>`
      );
    case 'select':
      input =
        `<select ${common}><option value="">default${f.default !== undefined ? ` (${e(f.default)})` : ''}</option>` +
        (f.options ?? []).map((v) => `<option value="${e(v)}">${e(v)}</option>`).join('') +
        '</select>';
      break;
    case 'list':
      input = `<textarea rows="2" ${common}${dflt} spellcheck="false"></textarea>`;
      break;
    case 'secret':
      input = `<input type="password" autocomplete="off" ${common}>`;
      break;
    case 'number':
      input = `<input type="text" inputmode="decimal" ${common}${dflt}>`;
      break;
    default:
      input = `<input type="text" spellcheck="false" ${common}${dflt}>`;
  }
  return (
    `<div class="field" data-field="${e(f.key)}"><label for="${id}">${label}</label>${input}` +
    `${f.input === 'list' ? '<span class="help">one per line</span>' : ''}${help}` +
    `<span class="err" id="e-${e(f.key)}" role="alert"></span></div>`
  );
}

function formHtml(form: FormModel): string {
  return form.groups
    .map((g) => {
      const fields = g.fields.map(fieldHtml).join('');
      return g.id === 'more'
        ? `<details class="group" id="g-more"><summary>${escapeHtml(g.title)} (${g.fields.length} settings)</summary><div class="fields">${fields}</div></details>`
        : `<fieldset class="group" id="g-${g.id}"><legend>${escapeHtml(g.title)}</legend><div class="fields">${fields}</div></fieldset>`;
    })
    .join('');
}

export function renderUiPage(p: { boot: UiBoot; nonce: string }): string {
  const e = escapeHtml;
  const b = p.boot;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>fleetload ui</title>
<link rel="icon" href="data:,">
<style>${UI_CSS}</style>
</head>
<body>
<header>
  <div class="brand"><span class="logo">fleetload</span> <span class="ver">ui · ${e(b.version)}</span></div>
  <nav role="tablist">
    <button type="button" role="tab" id="tab-new" aria-controls="new" aria-selected="true">New test</button>
    <button type="button" role="tab" id="tab-live" aria-controls="live" aria-selected="false">Live</button>
    <button type="button" role="tab" id="tab-history" aria-controls="history" aria-selected="false">History</button>
  </nav>
  <span class="spacer"></span>
  <span class="state" id="ui-state" data-state="idle">idle</span>
</header>
<main>
<section id="new" role="tabpanel" aria-labelledby="tab-new">
  <form id="form" novalidate autocomplete="off">
    ${formHtml(b.form)}
    <div class="actions">
      <button type="submit" id="start" class="primary">Start</button>
      <button type="button" id="stop-run" class="danger" disabled>Stop</button>
      <span class="note">empty fields: FLEETLOAD_* environment or the default, as on the command line</span>
    </div>
  </form>
  <aside class="side">
    <div class="problems" id="problems" role="alert" hidden></div>
    <div class="warnings note" id="warnings" hidden></div>
    <h3>Command <button type="button" class="copy" data-copy="command">copy</button></h3>
    <pre id="command">fleetload run</pre>
    <h3>Scenario YAML <button type="button" class="copy" data-copy="yaml">copy</button></h3>
    <pre id="yaml"></pre>
    <p class="note">results in <code>${e(b.out)}</code></p>
  </aside>
</section>
<section id="live" role="tabpanel" aria-labelledby="tab-live" hidden>
  <div class="runbar">
    <span id="run-status">no run yet: start one from New test</span>
    <span class="spacer"></span>
    <a id="run-report" target="_blank" rel="noopener" hidden>open report</a>
    <button type="button" id="stop-live" class="danger" disabled>Stop</button>
  </div>
  <iframe id="live-frame" title="live dashboard of the run" hidden></iframe>
  <p id="live-gone" class="gone" role="status" hidden></p>
  <details id="run-output-box"><summary>output of the run</summary><pre id="run-output"></pre></details>
</section>
<section id="history" role="tabpanel" aria-labelledby="tab-history" hidden>
  <div class="runbar"><span>runs in <code>${e(b.out)}</code> — pick A and B to compare</span><span class="spacer"></span>
    <button type="button" id="refresh">Refresh</button>
    <button type="button" id="compare" class="primary" disabled>Compare B against A</button></div>
  <table id="runs"><thead><tr><th>A</th><th>B</th><th>run</th><th>started</th><th>scenario</th><th>verdict</th><th>exit</th><th>files</th></tr></thead><tbody></tbody></table>
  <p id="no-runs" class="note" hidden>no runs in this folder yet</p>
  <div id="comparison" hidden></div>
</section>
</main>
<script type="application/json" id="boot">${scriptJson(b)}</script>
<script nonce="${e(p.nonce)}">${noScriptEnd(UI_CLIENT_JS)}</script>
</body>
</html>
`;
}

const UI_CSS = `${THEME_CSS}
* { box-sizing: border-box; }
html, body { margin: 0; }
body { background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 18px; padding: 10px 24px; background: var(--panel); border-bottom: 1px solid var(--border); }
.logo { font-weight: 700; font-size: 18px; color: var(--accent); }
.ver { color: var(--muted); font-size: 12px; }
nav { display: flex; gap: 4px; }
nav button { font: inherit; border: 0; background: transparent; color: var(--muted); padding: 6px 12px; border-radius: 6px; cursor: pointer; }
nav button[aria-selected="true"] { background: var(--track); color: var(--text); font-weight: 600; }
.spacer { flex: 1; }
.state { text-transform: uppercase; font-size: 11px; font-weight: 700; letter-spacing: 0.06em; padding: 4px 10px; border-radius: 999px; background: var(--track); color: var(--muted); }
.state[data-state="running"], .state[data-state="starting"] { background: rgba(46, 144, 250, 0.15); color: var(--c-sent); }
.state[data-state="stopping"] { color: var(--warn); }
main { padding: 16px 24px; max-width: 1600px; margin: 0 auto; }
#new:not([hidden]) { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 18px; align-items: start; }
@media (max-width: 900px) { #new:not([hidden]) { grid-template-columns: 1fr; } }
.group { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; margin: 0 0 12px; }
.group legend, .group summary { font-weight: 600; padding: 0 4px; cursor: default; }
details.group summary { cursor: pointer; }
.fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 10px 16px; margin-top: 6px; }
.field { display: flex; flex-direction: column; gap: 2px; min-width: 0; }
.field label { font-size: 13px; }
.field .flag { color: var(--muted); font-size: 11px; }
.field input[type="text"], .field input[type="password"], .field select, .field textarea {
  font: inherit; padding: 5px 7px; border: 1px solid var(--border); border-radius: 6px; background: var(--bg); color: var(--text); width: 100%; }
.field textarea { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; resize: vertical; }
.field [aria-invalid="true"] { border-color: var(--bad); outline: 1px solid var(--bad); }
.help { color: var(--muted); font-size: 11px; }
.help.env { color: var(--accent); }
.warnings { margin-top: 8px; color: var(--warn); white-space: pre-wrap; }
.err { color: var(--bad); font-size: 12px; }
.err:empty { display: none; }
.actions { display: flex; gap: 10px; align-items: center; margin: 4px 0 12px; }
button { font: inherit; cursor: pointer; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--border); background: var(--panel); color: var(--text); }
button:disabled { opacity: 0.45; cursor: default; }
button.primary { border-color: var(--accent); background: var(--accent); color: #fff; font-weight: 600; }
button.danger { border-color: var(--bad); color: var(--bad); font-weight: 600; }
button.copy { padding: 0 8px; font-size: 11px; }
.note { color: var(--muted); font-size: 12px; }
.side h3 { font-size: 13px; margin: 12px 0 4px; display: flex; justify-content: space-between; }
.side pre, #run-output { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px; font-size: 12px; white-space: pre-wrap; word-break: break-all; margin: 0; }
.problems { background: var(--panel); border: 1px solid var(--bad); border-radius: 8px; padding: 8px 12px; color: var(--bad); }
.problems ul { margin: 4px 0; padding-left: 18px; }
.runbar { display: flex; gap: 12px; align-items: center; margin-bottom: 10px; flex-wrap: wrap; }
#live-frame { width: 100%; height: 78vh; border: 1px solid var(--border); border-radius: 8px; background: var(--bg); }
table { border-collapse: collapse; width: 100%; background: var(--panel); font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--border); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.verdict { font-weight: 700; font-size: 12px; padding: 2px 8px; border-radius: 5px; color: #fff; background: var(--muted); }
.verdict.PASSED { background: var(--good); } .verdict.FAILED { background: var(--bad); } .verdict.INVALID { background: var(--warn); }
.files a { margin-right: 8px; white-space: nowrap; }
a { color: var(--accent); }
#comparison { margin-top: 14px; }
td.worse { color: var(--bad); font-weight: 600; } td.better { color: var(--good); font-weight: 600; }
.gone { background: var(--panel); border: 1px solid var(--warn); border-radius: 8px; padding: 8px 12px; }
ul.reasons { margin: 4px 0 0; padding-left: 16px; font-size: 12px; color: var(--muted); max-width: 420px; }
#comparison td.noise { color: var(--muted); font-size: 12px; max-width: 560px; }
#comparison td.pct { text-align: right; font-variant-numeric: tabular-nums; }
`;
