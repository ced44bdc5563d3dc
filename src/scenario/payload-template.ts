import { randomUUID } from 'node:crypto';

/**
 * Payload templates (`--payload FILE`): the file's text with `{{…}}` placeholders filled per message.
 *
 *   {{deviceId}} {{index}} {{seq}} {{ts}} {{runId}}   the message's own metadata (ts: scheduled, ms since epoch)
 *   {{iso}}                                          ts as ISO-8601 text
 *   {{random MIN MAX}}                               a number in [MIN, MAX), 2 decimals
 *   {{randomInt MIN MAX}}                            an integer in [MIN, MAX]
 *   {{choice A B C}}                                 one of the words
 *   {{uuid}}                                         a random UUID
 *
 * With the default JSON encoding the template must be a JSON object; fleetload adds the measurement fields
 * (`deviceId`, `seq`, `ts`, `sentTs`, `runId`) in front of the template's own. The template is compiled once;
 * rendering is a loop over parts.
 */

export interface TemplateContext {
  deviceId: string;
  index: number;
  seq: number;
  ts: number;
  runId: string;
}

type Part = string | ((c: TemplateContext) => string);

export type PayloadTemplate = (c: TemplateContext) => string;

const PLACEHOLDER = /\{\{\s*([A-Za-z]+)((?:\s+[^\s}]+)*)\s*\}\}/g;
const RESERVED = ['deviceId', 'seq', 'ts', 'sentTs', 'runId'];

/** Compiles a template; throws an Error whose message names the bad placeholder (the loader words the rest). */
export function compilePayloadTemplate(text: string, random: () => number = Math.random): PayloadTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(text.slice(last, at));
    parts.push(generator(m[1] as string, (m[2] ?? '').trim().split(/\s+/).filter(Boolean), m[0], random));
    last = at + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  const rest = text.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) {
    throw new Error('an unclosed or malformed {{…}} placeholder; write e.g. {{random 20 30}}');
  }
  return (c) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : p(c);
    return s;
  };
}

function generator(
  name: string,
  args: string[],
  raw: string,
  random: () => number,
): (c: TemplateContext) => string {
  const nums = (n: number): number[] => {
    const v = args.map(Number);
    if (args.length !== n || v.some((x) => !Number.isFinite(x))) {
      throw new Error(`${raw}: ${name} takes ${n} numbers`);
    }
    return v;
  };
  switch (name) {
    case 'deviceId':
      return (c) => c.deviceId;
    case 'index':
      return (c) => String(c.index);
    case 'seq':
      return (c) => String(c.seq);
    case 'ts':
      return (c) => String(Math.round(c.ts * 1000) / 1000);
    case 'runId':
      return (c) => c.runId;
    case 'iso':
      return (c) => new Date(c.ts).toISOString();
    case 'uuid':
      return () => randomUUID();
    case 'random': {
      const [lo, hi] = nums(2) as [number, number];
      return () => (lo + random() * (hi - lo)).toFixed(2);
    }
    case 'randomInt': {
      const [lo, hi] = nums(2) as [number, number];
      return () => String(Math.floor(lo + random() * (hi - lo + 1)));
    }
    case 'choice': {
      if (args.length === 0) throw new Error(`${raw}: choice needs at least one word`);
      return () => args[Math.floor(random() * args.length)] as string;
    }
    default:
      throw new Error(
        `${raw}: unknown placeholder "${name}"; known: deviceId index seq ts runId iso uuid random randomInt choice`,
      );
  }
}

/**
 * Problems with a template for an encoding, as sentences (empty when fine): it must compile, and for JSON render
 * to an object that leaves the measurement fields to fleetload.
 */
export function payloadTemplateProblems(text: string, encoding: 'json' | 'properties' | 'binary'): string[] {
  let render: PayloadTemplate;
  try {
    render = compilePayloadTemplate(text);
  } catch (e) {
    return [(e as Error).message];
  }
  if (encoding !== 'json') return [];
  const sample = render({ deviceId: 'dev-000001', index: 1, seq: 1, ts: 1_800_000_000_000.5, runId: 'run' });
  let v: unknown;
  try {
    v = JSON.parse(sample);
  } catch (e) {
    return [
      `with --encoding json the template must be a JSON object; it renders to invalid JSON (${(e as Error).message})`,
    ];
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return ['with --encoding json the template must be a JSON object ({ … })'];
  }
  const clash = RESERVED.filter((k) => Object.hasOwn(v as object, k));
  return clash.length > 0
    ? [
        `the template sets ${clash.join(', ')}: fleetload writes these measurement fields itself; rename or drop them`,
      ]
    : [];
}
