import { escapeHtml as e } from '../html/escape.js';
import { clockText, type RunEvent } from '../stats/events.js';
import type { ResultsData } from './load.js';

/**
 * The run's events in report.html (docs/guide/events.md): from summary.json, or from intervals.jsonl when the run
 * has no summary (it crashed) — the same events either way. The charts draw them as markers (src/html/markers.ts);
 * this is the event log table under them.
 */
export function reportEvents(d: ResultsData): RunEvent[] {
  if (d.summary?.events) return d.summary.events;
  return (d.intervals ?? []).flatMap((r) => (Array.isArray(r.events) ? r.events : []));
}

/** The event log table: when, what, and the message; a note when events were dropped. */
export function eventsPanelBody(events: readonly RunEvent[], dropped: number | undefined): string {
  if (events.length === 0) {
    return '<p class="muted">Nothing happened to this run: no load change, stage, outage, threshold crossing or saturation.</p>';
  }
  const rows = events
    .map(
      (ev) =>
        `<tr data-kind="${e(ev.kind)}"><td class="n">${e(clockText(ev.elapsedMs))}</td><td><code>${e(ev.kind)}</code></td><td>${e(ev.message)}</td></tr>`,
    )
    .join('');
  const more =
    dropped && dropped > 0
      ? `<p class="hint">${e(`${dropped} more events were not kept (summary.json keeps the first 1,000).`)}</p>`
      : '';
  return `<table class="events" id="event-log"><tr><th class="n">at</th><th>event</th><th>what happened</th></tr>${rows}</table>${more}<p class="hint">Drawn on every chart over time as dashed lines; hover one for the event.</p>`;
}
