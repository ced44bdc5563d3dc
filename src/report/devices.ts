import { escapeHtml as e } from '../html/escape.js';
import type { DevicesTop, LostRange, TopEntry } from '../stats/device-report.js';
import type { Summary } from '../stats/summary.js';

/**
 * The report's "Devices" section: the top lists of summary.json `devicesTop` (who lost, duplicated, reordered, who
 * failed to connect, whose e2e p99 was worst) with each lost device's seq ranges and when they were scheduled,
 * relative to the run's start and in UTC. devices.csv in the folder has every row.
 */

/** `+0:10.2` from the run's start */
function offset(ms: number, startMs: number): string {
  const d = Math.max(0, ms - startMs) / 1000;
  const m = Math.floor(d / 60);
  const s = d - m * 60;
  return `+${m}:${s.toFixed(1).padStart(4, '0')}`;
}

function rangeText(r: LostRange, startMs: number): string {
  const seqs = r.fromSeq === r.toSeq ? `seq ${r.fromSeq}` : `seqs ${r.fromSeq}–${r.toSeq}`;
  if (r.fromTs === null || r.toTs === null || !Number.isFinite(startMs)) return e(seqs);
  const title = `${new Date(r.fromTs).toISOString()} – ${new Date(r.toTs).toISOString()} (scheduled)`;
  const when =
    r.fromSeq === r.toSeq
      ? offset(r.fromTs, startMs)
      : `${offset(r.fromTs, startMs)}–${offset(r.toTs, startMs)}`;
  return `${e(seqs)} <span class="muted" title="${e(title)}">at ${e(when)}</span>`;
}

const heading = (title: string) =>
  title === 'e2e p99' ? 'Worst e2e p99 (ms)' : `${title[0]?.toUpperCase() ?? ''}${title.slice(1)}`;

function list(
  title: string,
  entries: TopEntry[],
  count: number,
  unit: string,
  startMs: number,
  ranges = false,
): string {
  if (entries.length === 0) return '';
  const rows = entries
    .map((t) => {
      const more = t.moreRanges ? ` <span class="muted">+${t.moreRanges} more</span>` : '';
      const r = ranges
        ? `<td>${(t.ranges ?? []).map((x) => rangeText(x, startMs)).join('<br>')}${more}</td>`
        : '';
      return `<tr><th scope="row"><code>${e(t.deviceId)}</code></th><td class="n">${e(String(t.value))}${e(unit)}</td>${r}</tr>`;
    })
    .join('');
  const head = `<tr><th scope="col">device</th><th scope="col" class="n">${e(title)}</th>${ranges ? '<th scope="col">lost seqs, scheduled</th>' : ''}</tr>`;
  const shown =
    count > entries.length ? `<p class="hint">Top ${entries.length} of ${count} devices.</p>` : '';
  return `<section class="panel${ranges ? ' wide' : ''}" data-devices="${e(title)}"><h2>${e(heading(title))}</h2><table class="devices"><thead>${head}</thead><tbody>${rows}</tbody></table>${shown}</section>`;
}

/** The section, or '' when summary.json has no `devicesTop` (an older run). */
export function devicesSection(s: Summary | undefined): string {
  const top: DevicesTop | undefined = s?.devicesTop;
  if (!top) return '';
  const startMs = Date.parse(s?.startedAt ?? '');
  const c = top.counts;
  const parts = [
    list('lost', top.lost, c.lost, '', startMs, true),
    list('duplicated', top.duplicated, c.duplicated, '', startMs),
    list('reordered', top.reordered, c.reordered, '', startMs),
    list('connect failures', top.connectFailures, c.connectFailures, '', startMs),
    list('e2e p99', top.e2eP99, c.e2eP99, '', startMs),
  ].filter((x) => x !== '');
  const clean =
    top.lost.length + top.duplicated.length + top.reordered.length + top.connectFailures.length === 0
      ? '<p class="muted">No device lost, duplicated or reordered a message, and none failed to connect.</p>'
      : '';
  return `<section class="devices-section" id="devices"><h2>Devices</h2>${clean}<div class="grid3">${parts.join('')}</div><p class="hint">Every device with something to report is in devices.csv in this folder. Times are the messages' scheduled send times, from the run's start (hover for UTC); e2e p99 per device is a log₂-bucket upper bound.</p></section>`;
}
