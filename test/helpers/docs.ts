import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

/**
 * The shell commands the user documentation prints: fenced blocks with the info string `sh`, `bash` or `console`
 * in README.md and docs/guide/*.md. A block whose info string also says `not-run-here` (```` ```sh not-run-here ````)
 * is exempt from being run (it needs Azure, a cluster, the npm registry, …). In a `console` block only the lines
 * after a `$ ` prompt (and their `\` continuations) are commands; the rest is output. A block whose info string says
 * `serves` (```` ```sh serves ````) holds commands that serve until stopped (`fleetload ui`, `run --keep-ui`): each
 * line runs in the background until it says how to stop it (`Ctrl-C … to stop|exit`), then gets SIGTERM and must
 * exit 0.
 */

export interface ShellBlock {
  /** path relative to the repository root, e.g. `docs/guide/nats.md` */
  file: string;
  /** 1-based line of the opening fence */
  line: number;
  exempt: boolean;
  /** each command serves until stopped (info string `serves`) */
  serves: boolean;
  /** the commands as printed (console: prompts removed, output dropped) */
  script: string;
  /** console blocks: the output printed after the commands */
  output?: string;
}

const SHELLS = new Set(['sh', 'bash', 'console']);
const EXEMPT = 'not-run-here';
const SERVES = 'serves';

/** README.md, then docs/guide/*.md in name order. */
export function docFiles(root: string): string[] {
  const guides = readdirSync(join(root, 'docs', 'guide'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/guide/${f}`);
  return ['README.md', ...guides];
}

function consoleParts(lines: readonly string[]): { script: string; output: string } {
  const commands: string[] = [];
  const output: string[] = [];
  let continuing = false;
  for (const l of lines) {
    if (l.startsWith('$ ')) commands.push(l.slice(2));
    else if (continuing) commands.push(l);
    else {
      output.push(l);
      continue;
    }
    continuing = l.endsWith('\\');
  }
  return { script: commands.join('\n'), output: output.join('\n') };
}

/** Every shell block of one Markdown text, in order. */
export function shellBlocks(file: string, text: string): ShellBlock[] {
  const blocks: ShellBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const fence = open[2] as string;
    const words = (open[3] as string).trim().split(/\s+/);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).trimStart().startsWith(fence); i++) {
      body.push(lines[i] as string);
    }
    const lang = words[0] ?? '';
    if (!SHELLS.has(lang)) continue;
    const exempt = words.includes(EXEMPT);
    const serves = words.includes(SERVES);
    if (lang === 'console') blocks.push({ file, line: start + 1, exempt, serves, ...consoleParts(body) });
    else blocks.push({ file, line: start + 1, exempt, serves, script: body.join('\n') });
  }
  return blocks;
}

/** The shell blocks of README.md and docs/guide/*.md. */
export function documentedBlocks(root: string): ShellBlock[] {
  return docFiles(root).flatMap((f) => shellBlocks(f, readFileSync(join(root, f), 'utf8')));
}

/** The first command of a block (for lists of exemptions): its first line that is not a comment. */
export function firstCommand(block: ShellBlock): string {
  const line = block.script.split('\n').find((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  return (line ?? '').trim();
}

export interface DocLink {
  file: string;
  link: string;
  /** the linked file, relative to the repository root */
  target: string;
  /** the `#fragment`, if any */
  anchor: string | undefined;
}

/** README.md and every Markdown file under docs/, relative to the root. */
export function allDocs(root: string): string[] {
  const under = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? under(`${dir}/${e.name}`) : e.name.endsWith('.md') ? [`${dir}/${e.name}`] : [],
    );
  return ['README.md', ...under('docs').sort()];
}

/** The relative links `[text](path#anchor)` of a Markdown text, outside code blocks. */
export function relativeLinks(file: string, text: string): DocLink[] {
  const prose = text.replace(/^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, '');
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '.';
  const links: DocLink[] = [];
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const link = m[1] as string;
    if (/^[a-z]+:/i.test(link)) continue;
    const [path, anchor] = link.split('#') as [string, string | undefined];
    const target = path === '' ? file : posix.normalize(posix.join(dir, path));
    links.push({ file, link, target, anchor });
  }
  return links;
}

/** GitHub's anchors of a Markdown text's headings: lower case, punctuation dropped, spaces → hyphens. */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const m of text.matchAll(/^#{1,6} +(.+?) *$/gm)) {
    anchors.add(
      (m[1] as string)
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\- _]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return anchors;
}
