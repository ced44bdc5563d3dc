import { runDocuments } from '../helpers/docs-run.js';

/**
 * The second half of the documented commands (README.md and docs/guide/*.md, every second document): see
 * test/e2e/readme.test.ts, which runs the first half and checks the exemptions and links.
 */
runDocuments(1, 2);
