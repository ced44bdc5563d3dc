/** The colors of the dashboard and the report (light and dark), one palette for both. */
export const THEME_CSS = `
:root {
  --bg: #f4f6f9; --panel: #ffffff; --text: #1c2433; --muted: #667085; --border: #e3e7ee;
  --accent: #4f46e5; --good: #0f9f6e; --bad: #d92d20; --warn: #dc8a06; --track: #e6e9f0;
  --grid: rgba(28, 36, 51, 0.08); --axis: #667085;
  --c-devices: #4f46e5; --c-target: #98a2b3; --c-sent: #2e90fa; --c-received: #12b76a; --c-failed: #f04438;
  --c-p50: #12b76a; --c-p95: #f79009; --c-p99: #f04438;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1419; --panel: #171d26; --text: #e6e9ef; --muted: #98a2b3; --border: #263040;
    --accent: #818cf8; --good: #32d583; --bad: #f97066; --warn: #fdb022; --track: #263040;
    --grid: rgba(230, 233, 239, 0.08); --axis: #98a2b3;
    --c-devices: #818cf8; --c-target: #667085; --c-sent: #53b1fd; --c-received: #32d583; --c-failed: #f97066;
    --c-p50: #32d583; --c-p95: #fdb022; --c-p99: #f97066;
  }
}
`;
