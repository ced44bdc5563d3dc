import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

let assetCache: { js: string; css: string } | undefined;

/**
 * uPlot's script and stylesheet, read once from node_modules: the live dashboard and report.html inline them, so
 * neither page makes a network request.
 */
export function uplotAssets(): { js: string; css: string } {
  if (!assetCache) {
    const require = createRequire(import.meta.url);
    assetCache = {
      js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  }
  return assetCache;
}
