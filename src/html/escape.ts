/**
 * HTML helpers shared by the live dashboard (src/web) and report.html (src/report): both are self-contained pages
 * that inline data and scripts, so both need the same escaping. Neither owns them: they live here, below both.
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** JSON that is safe inside a <script> element: no `</script>`, no `<!--`, no JS-breaking line separators. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Inline script text that cannot close its <script> element early. */
export const noScriptEnd = (code: string): string => code.replace(/<\/(script)/gi, '<\\/$1');
/** Inline CSS that cannot close its <style> element early. */
export const noStyleEnd = (css: string): string => css.replace(/<\/(style)/gi, '<\\/$1');
