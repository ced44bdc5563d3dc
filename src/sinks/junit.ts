import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Output } from '../run/output.js';
import type { Summary } from '../stats/summary.js';

/**
 * `--junit FILE`: the run's verdict as a JUnit XML report, the format CI systems (GitHub Actions, GitLab, Jenkins,
 * Azure Pipelines) show as test results: one test case per threshold, and one for the run's validity.
 */
export function junitOutput(path: string): Output {
  return {
    name: 'junit',
    finish: async (summary) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, junitXml(summary));
    },
  };
}

export function junitXml(s: Summary): string {
  const seconds = Math.max(0, (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000);
  const cases: string[] = [];
  const invalid = s.valid === false;
  cases.push(
    testCase(
      'the run offered and observed its planned load (valid)',
      invalid ? (s.invalid ?? []).join('\n') : undefined,
    ),
  );
  if (s.incomplete) cases.push(testCase('every part of the run finished', s.incomplete.lost.join('\n')));
  if (s.interrupted) cases.push(testCase('the run completed (not stopped early)', 'interrupted'));
  for (const t of s.thresholds) {
    const why = t.passed ? undefined : t.noData ? 'no data: nothing was measured' : `observed ${t.value}`;
    cases.push(testCase(t.expr, why));
  }
  const failures = cases.filter((c) => c.includes('<failure')).length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="fleetload" tests="${cases.length}" failures="${failures}" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="${attr(`fleetload run ${s.runId}`)}" tests="${cases.length}" failures="${failures}" errors="0" time="${seconds.toFixed(3)}" timestamp="${attr(s.startedAt)}">`,
    ...cases.map((c) => `    ${c}`),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

function testCase(name: string, failure: string | undefined): string {
  const head = `<testcase classname="fleetload" name="${attr(name)}"`;
  if (failure === undefined) return `${head}/>`;
  return `${head}><failure message="${attr(failure.split('\n')[0] ?? '')}">${text(failure)}</failure></testcase>`;
}

// XML 1.0 forbids most control characters even as references: they are dropped
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;
const text = (v: string) =>
  v.replace(FORBIDDEN, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const attr = (v: string) => text(v).replace(/"/g, '&quot;').replace(/\n/g, '&#10;');
