import type { DevicesTop, LostRange, TopEntry } from '../stats/device-report.js';
import { clockText } from '../stats/events.js';

/**
 * The printed summary's "by device" lines (docs/guide/devices.md): who lost which seqs and when they were
 * scheduled — "dev-000003, dev-000007, dev-000011 (4 each): seqs 5–8 at 0:10–0:11" — then one short line per
 * other non-empty list. Devices whose losses read the same share a line (a broker restart loses the same seqs on
 * every device). "… and N more" never hides a single device that could be named instead. devices.csv has them all.
 */

/** lines of lost devices (each a device or a group losing the same) before "… and N more" */
const LOST_LINES = 3;
/** devices named in one line of a group, before "+N" */
const IDS_PER_LINE = 4;
/** ranges of one device shown, before "+N more ranges" */
const RANGES_SHOWN = 2;
/** devices named in the other lists */
const OTHERS_SHOWN = 3;

const OTHER_LISTS: Array<[keyof Omit<DevicesTop, 'counts' | 'lost'>, string, string]> = [
  ['duplicated', 'duplicated', ''],
  ['reordered', 'reordered', ''],
  ['connectFailures', 'connect failures', ''],
  ['e2eP99', 'e2e p99', ' ms'],
];

/** `seqs 5–8 at 0:10–0:11`, `seq 9 at 0:12`; without times (a consumer alone), the seqs only */
function rangeText(r: LostRange, startMs: number): string {
  const seqs = r.fromSeq === r.toSeq ? `seq ${r.fromSeq}` : `seqs ${r.fromSeq}–${r.toSeq}`;
  if (r.fromTs === null || !Number.isFinite(startMs)) return seqs;
  const from = clockText(r.fromTs - startMs);
  const to = r.toTs === null ? from : clockText(r.toTs - startMs);
  return `${seqs} at ${from === to ? from : `${from}–${to}`}`;
}

function rangesText(t: TopEntry, startMs: number): string {
  const ranges = t.ranges ?? [];
  const shown = ranges.slice(0, RANGES_SHOWN).map((r) => rangeText(r, startMs));
  const more = ranges.length - shown.length + (t.moreRanges ?? 0);
  if (more > 0) shown.push(`+${more} more range${more === 1 ? '' : 's'}`);
  return shown.join(', ');
}

interface Group {
  ids: string[];
  value: number;
  ranges: string;
}

function lostLines(top: DevicesTop, startMs: number): string[] {
  const groups: Group[] = [];
  for (const t of top.lost) {
    const ranges = rangesText(t, startMs);
    const same = groups.find((g) => g.value === t.value && g.ranges === ranges);
    if (same) same.ids.push(t.deviceId);
    else groups.push({ ids: [t.deviceId], value: t.value, ranges });
  }
  const total = Math.max(top.counts.lost, top.lost.length);
  const lines: string[] = [];
  let named = 0;
  for (const [k, g] of groups.entries()) {
    const rest = total - named;
    // past the first lines, go on only when the rest is this very group (no "… and 1 more" for one device)
    if (k >= LOST_LINES && rest !== g.ids.length) break;
    const ids =
      g.ids.length > IDS_PER_LINE
        ? `${g.ids.slice(0, IDS_PER_LINE - 1).join(', ')} +${g.ids.length - (IDS_PER_LINE - 1)}`
        : g.ids.join(', ');
    const each = g.ids.length > 1 ? ' each' : '';
    lines.push(`lost: ${ids} (${g.value}${each})${g.ranges === '' ? '' : `: ${g.ranges}`}`);
    named += g.ids.length;
  }
  const rest = total - named;
  if (rest > 0) lines.push(`… and ${rest} more device${rest === 1 ? '' : 's'} lost messages (devices.csv)`);
  return lines;
}

/**
 * The summary's per-device lines, without their label column. The e2e p99 list is printed only when another list
 * is non-empty (every device has a p99).
 */
export function deviceLines(top: DevicesTop | undefined, startedAt: string): string[] {
  if (!top) return [];
  const lines = lostLines(top, Date.parse(startedAt));
  for (const [key, label, unit] of OTHER_LISTS) {
    const list = top[key];
    if (list.length === 0) continue;
    if (key === 'e2eP99' && lines.length === 0) continue;
    const n = Math.max(top.counts[key], list.length);
    // all of them when one more would be hidden: "… 4 devices" for a fourth that fits is no help
    const shown = n === OTHERS_SHOWN + 1 && list.length >= n ? n : OTHERS_SHOWN;
    const items = list.slice(0, shown).map((t) => `${t.deviceId} (${t.value}${unit})`);
    const more = n - items.length;
    lines.push(`${label}: ${items.join(', ')}${more > 0 ? `, … and ${more} more` : ''}`);
  }
  return lines;
}
