/**
 * Templates such as `devices/{deviceId}/messages/events/`. Placeholders: `{name}` or `{name:W}` (zero-padded to
 * width W, for numbers). Templates are compiled once into a function; the hot path never re-parses them.
 */

const placeholder = /\{([A-Za-z]+)(?::(\d+))?\}/g;

export type TemplateVars = Record<string, string | number>;

/** Problems with a template, each a sentence naming the culprit; empty when the template is fine. */
export function templateProblems(text: string, allowed: readonly string[]): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(placeholder)) {
    const name = m[1] as string;
    if (!allowed.includes(name)) {
      const near = allowed.find((a) => a.toLowerCase() === name.toLowerCase());
      problems.push(
        `unknown placeholder {${name}}` +
          (near ? `; did you mean {${near}}?` : `; known: ${allowed.map((a) => `{${a}}`).join(' ')}`),
      );
    }
  }
  const stripped = text.replace(placeholder, '');
  if (/[{}]/.test(stripped))
    problems.push(`unbalanced brace in "${text}"; placeholders look like {deviceId}`);
  return problems;
}

export function compileTemplate(text: string): (vars: TemplateVars) => string {
  const parts: Array<string | { name: string; width: number }> = [];
  let last = 0;
  for (const m of text.matchAll(placeholder)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(text.slice(last, at));
    parts.push({ name: m[1] as string, width: m[2] ? Number(m[2]) : 0 });
    last = at + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return (vars) => {
    let s = '';
    for (const p of parts) {
      if (typeof p === 'string') {
        s += p;
        continue;
      }
      const v = vars[p.name];
      const str = v === undefined ? '' : String(v);
      s += p.width > 0 ? str.padStart(p.width, '0') : str;
    }
    return s;
  };
}

/** Whether a template depends on a placeholder (e.g. topic per device or shared). */
export function usesPlaceholder(text: string, name: string): boolean {
  for (const m of text.matchAll(placeholder)) if (m[1] === name) return true;
  return false;
}
