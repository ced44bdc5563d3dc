/**
 * A run started by `fleetload ui`: `fleetload run` (src/cli/main.ts) in a process of its own, with an IPC channel
 * to the UI that keeps nothing alive. When the UI goes away — even SIGKILLed — the channel closes and the run
 * stops as on Ctrl-C (drain, summary), then aborts if it is still there 30 s later: no run outlives its UI.
 */
process.channel?.unref();
// its output goes to the UI through pipes: once the UI is gone, writing there must not end the run (EPIPE)
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
process.once('disconnect', () => {
  process.kill(process.pid, 'SIGTERM');
  setTimeout(() => process.kill(process.pid, 'SIGTERM'), 30_000).unref();
});
await import('./main.js');
