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
  const parts = compileParts(text, random).map((p) => p.part);
  return (c) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : p(c);
    return s;
  };
}

/** The template's parts, each with its offset in the template text. */
function compileParts(text: string, random: () => number): Array<{ part: Part; at: number }> {
  const parts: Array<{ part: Part; at: number }> = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const at = m.index ?? 0;
    if (at > last) parts.push({ part: text.slice(last, at), at: last });
    const name = m[1] as string;
    // a message names the placeholder and where it is, never the rest of the file (it may be any readable file)
    const where = `{{${name.length <= 24 ? name : `${name.slice(0, 24)}…`}}} at ${lineColumn(text, at)}`;
    const args = (m[2] ?? '').trim().split(/\s+/).filter(Boolean);
    parts.push({ part: generator(name, args, where, random), at });
    last = at + m[0].length;
  }
  if (last < text.length) parts.push({ part: text.slice(last), at: last });
  const rest = text.replace(PLACEHOLDER, (m) => ' '.repeat(m.length));
  const bad = [rest.indexOf('{{'), rest.indexOf('}}')].filter((i) => i >= 0);
  if (bad.length > 0) {
    throw new Error(
      `an unclosed or malformed {{…}} placeholder at ${lineColumn(text, Math.min(...bad))}; write e.g. {{random 20 30}}`,
    );
  }
  return parts;
}

/** `line L, column C` (1-based) of an offset in a text. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${column}`;
}

function generator(
  name: string,
  args: string[],
  where: string,
  random: () => number,
): (c: TemplateContext) => string {
  const nums = (n: number): number[] => {
    const v = args.map(Number);
    if (args.length !== n || v.some((x) => !Number.isFinite(x))) {
      throw new Error(`${where}: ${name} takes ${n} numbers`);
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
      if (args.length === 0) throw new Error(`${where}: choice needs at least one word`);
      return () => args[Math.floor(random() * args.length)] as string;
    }
    default:
      throw new Error(
        `${where}: unknown placeholder; known: deviceId index seq ts runId iso uuid random randomInt choice`,
      );
  }
}

/**
 * Problems with a template for an encoding, as sentences (empty when fine): it must compile, and for JSON render
 * to an object that leaves the measurement fields to fleetload. A message says where (line and column of the
 * template) and never quotes the file: `--payload` may name any readable file, and the message reaches a web UI.
 */
export function payloadTemplateProblems(text: string, encoding: 'json' | 'properties' | 'binary'): string[] {
  let parts: Array<{ part: Part; at: number }>;
  try {
    parts = compileParts(text, Math.random);
  } catch (e) {
    return [(e as Error).message];
  }
  if (encoding !== 'json') return [];
  const c = { deviceId: 'dev-000001', index: 1, seq: 1, ts: 1_800_000_000_000.5, runId: 'run' };
  // the sample, and for each of its characters the template offset it came from
  let sample = '';
  const from: number[] = [];
  for (const { part, at } of parts) {
    const s = typeof part === 'string' ? part : part(c);
    for (let i = 0; i < s.length; i++) from.push(typeof part === 'string' ? at + i : at);
    sample += s;
  }
  let v: unknown;
  try {
    v = JSON.parse(sample);
  } catch (e) {
    const bad = jsonErrorOffset(sample);
    const where = lineColumn(text, from[bad] ?? text.length);
    return [
      `with --encoding json the template must be a JSON object; it renders to invalid JSON at ${where} of the template (${jsonReason((e as Error).message)})`,
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

/** Could this text be the start of a JSON document (it fails, if at all, only because it ends)? */
function viablePrefix(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch (e) {
    const m = (e as Error).message;
    if (/^Unexpected end of JSON input/.test(m)) return true;
    const at = /at position (\d+)/.exec(m);
    return at !== null && Number(at[1]) >= text.length;
  }
}

/** The offset of the character where invalid JSON goes wrong: the end of its longest viable prefix. */
function jsonErrorOffset(text: string): number {
  if (viablePrefix(text)) return text.length;
  let lo = 0; // viable
  let hi = text.length; // not viable
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (viablePrefix(text.slice(0, mid))) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The parser's words for what is wrong, without the text it quotes (position and context are dropped). */
function jsonReason(message: string): string {
  const words = message
    .replace(/^Unexpected token '[\s\S]*?', [\s\S]*$/, 'unexpected character')
    .replace(/ in JSON at position [\s\S]*$/, '')
    .replace(/^Unexpected end of JSON input$/, 'it ends too early');
  return words.includes('"') || words.length > 80 ? 'not valid JSON' : words;
}
