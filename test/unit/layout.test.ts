import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layout of DESIGN.md holds: nothing below src/cli/ imports from it, the folders of src/ import each other
 * without a cycle, and no function grows past what one reads on a screen or two (~120 lines).
 */

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const MAX_FUNCTION_LINES = 120;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The top folder of src/ a file is in ('.' for src/errors.ts and friends). */
const folderOf = (file: string) => {
  const parts = relative(src, file).split(sep);
  return parts.length > 1 ? (parts[0] as string) : '.';
};

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) =>
    resolve(dirname(file), m[1] as string),
  );
}

test('nothing outside src/cli/ imports from it', () => {
  const offenders = files(src)
    .filter((f) => folderOf(f) !== 'cli')
    .filter((f) => imports(f).some((i) => folderOf(i) === 'cli'))
    .map((f) => relative(src, f));
  assert.deepEqual(offenders, []);
});

test('the folders of src/ import each other without a cycle', () => {
  const edges = new Map<string, Set<string>>();
  for (const f of files(src)) {
    const from = folderOf(f);
    for (const i of imports(f)) {
      const to = folderOf(i);
      if (to === from || from === '.' || to === '.') continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
    }
  }
  const cycles: string[] = [];
  const walk = (node: string, path: string[]) => {
    for (const next of edges.get(node) ?? []) {
      if (path.includes(next)) cycles.push([...path.slice(path.indexOf(next)), next].join(' → '));
      else walk(next, [...path, next]);
    }
  };
  for (const node of edges.keys()) walk(node, [node]);
  assert.deepEqual([...new Set(cycles)], []);
});

test(`no function in src/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  const long: string[] = [];
  for (const file of files(src)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.end).line;
        // the browser scripts are one template string of a function each: their inner functions are checked
        if (end - start + 1 > MAX_FUNCTION_LINES) {
          const name = (node as ts.FunctionLikeDeclaration).name?.getText(sf) ?? '(anonymous)';
          long.push(`${relative(src, file)}:${start + 1} ${name} (${end - start + 1} lines)`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  assert.deepEqual(long, []);
});
