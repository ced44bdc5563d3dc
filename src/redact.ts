/**
 * Secrets never reach an output: values of secret-named keys, URL passwords and connection-string keys become
 * "***". One place, used by scenario.yaml, the dashboard, the report and every message that echoes an input.
 */

const SECRET_KEY = /(password|passwd|token|key|secret|sas|connectionstring)$/i;
/**
 * `scheme://user:password@host`: the password runs to the LAST `@` before the path, as WHATWG URL parses it, so
 * an unencoded `@` in a password (`alice:ret@X99@host`) is redacted whole, never its tail.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#\s]*:)[^/?#\s]*@(?=[^@/?#\s]*(?:[/?#\s]|$))/gi;
const CONN_STRING_SECRET = /\b(SharedAccessKey|SharedAccessSignature|AccountKey|Password|Pwd|sig)=[^;&\s]*/gi;

/** `mqtt://alice:secret@host` → `mqtt://alice:***@host`, also inside longer text and for unparsable URLs. */
export function redactText(text: string): string {
  return text.replace(URL_USERINFO, '$1***@').replace(CONN_STRING_SECRET, '$1=***');
}

/**
 * A copy of `value` with secrets replaced by "***": values of keys named like password/token/key/secret/sas/
 * connectionString (case-insensitive, also as a suffix: sasToken, sharedAccessKey), URL passwords
 * (`mqtt://user:***@host`) and `SharedAccessKey=***` inside connection strings, at any depth.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value) as T;
}

function redact(v: unknown, key?: string): unknown {
  if (key !== undefined && SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'object') {
    return '***';
  }
  if (typeof v === 'string') return redactText(v);
  if (Array.isArray(v)) return v.map((x) => redact(x, key));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x, k)]));
  }
  return v;
}
