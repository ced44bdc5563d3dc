import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EVENT_KINDS, MAX_EVENTS, type RunEvent } from '../stats/events.js';
import type { Summary } from '../stats/summary.js';

/**
 * The events of results folders joined by `fleetload merge` (docs/guide/events.md): each folder's summary.json
 * events, one list in time order. An event every segment saw alike (the same kind, instant and message) is one
 * event; a segment's own (its devices dropped) stays its own. At most MAX_EVENTS, the rest counted.
 */
export interface FolderEvents {
  events: RunEvent[];
  dropped: number;
}

/** A folder's events from its summary.json; undefined for a folder from before events (or unreadable). */
export async function readFolderEvents(dir: string): Promise<FolderEvents | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as {
      events?: unknown;
      eventsDropped?: unknown;
    };
    if (!Array.isArray(s.events)) return undefined;
    const kinds: readonly string[] = EVENT_KINDS;
    const events = s.events.filter(
      (e): e is RunEvent =>
        typeof e === 'object' &&
        e !== null &&
        typeof (e as RunEvent).atMs === 'number' &&
        kinds.includes((e as RunEvent).kind),
    );
    return { events, dropped: typeof s.eventsDropped === 'number' ? s.eventsDropped : 0 };
  } catch {
    return undefined;
  }
}

/** The folders' events together; undefined when none of them has any record of events. */
export function mergeFolderEvents(
  folders: ReadonlyArray<FolderEvents | undefined>,
): FolderEvents | undefined {
  const known = folders.filter((f): f is FolderEvents => f !== undefined);
  if (known.length === 0) return undefined;
  const seen = new Set<string>();
  const all: RunEvent[] = [];
  let dropped = 0;
  for (const f of known) {
    dropped += f.dropped;
    for (const e of f.events) {
      const key = `${e.kind}\u0000${e.atMs}\u0000${e.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      all.push(e);
    }
  }
  all.sort((a, b) => a.atMs - b.atMs);
  return { events: all.slice(0, MAX_EVENTS), dropped: dropped + Math.max(0, all.length - MAX_EVENTS) };
}

/** summary.json's `events` (and `eventsDropped`) of the merged folders; nothing when none had events. */
export function summaryEvents(
  folders: ReadonlyArray<FolderEvents | undefined>,
): Pick<Summary, 'events' | 'eventsDropped'> {
  const m = mergeFolderEvents(folders);
  if (!m) return {};
  return { events: m.events, ...(m.dropped > 0 ? { eventsDropped: m.dropped } : {}) };
}
