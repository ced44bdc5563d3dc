import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The shell commands the user documentation prints: fenced blocks with the info string `sh`, `bash` or `console`
 * in README.md and docs/guide/*.md. A block whose info string also says `not-run-here` (```` ```sh not-run-here ````)
 * is exempt from being run (it needs Azure, a cluster, the npm registry, …). In a `console` block only the lines
 * after a `$ ` prompt (and their `\` continuations) are commands; the rest is output.
 */

export interface ShellBlock {
  /** path relative to the repository root, e.g. `docs/guide/nats.md` */
  file: string;
  /** 1-based line of the opening fence */
  line: number;
  exempt: boolean;
  /** the commands as printed (console: prompts removed, output dropped) */
  script: string;
}

const SHELLS = new Set(['sh', 'bash', 'console']);
const EXEMPT = 'not-run-here';

/** README.md, then docs/guide/*.md in name order. */
export function docFiles(root: string): string[] {
  const guides = readdirSync(join(root, 'docs', 'guide'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/guide/${f}`);
  return ['README.md', ...guides];
}

function consoleCommands(lines: readonly string[]): string {
  const out: string[] = [];
  let continuing = false;
  for (const l of lines) {
    if (l.startsWith('$ ')) out.push(l.slice(2));
    else if (continuing) out.push(l);
    else continue;
    continuing = l.endsWith('\\');
  }
  return out.join('\n');
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
    blocks.push({
      file,
      line: start + 1,
      exempt: words.includes(EXEMPT),
      script: lang === 'console' ? consoleCommands(body) : body.join('\n'),
    });
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
