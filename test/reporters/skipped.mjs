// A test reporter that ends the run with one line: what was skipped and why, so that a run on a
// machine without some Debian tool says which tests it could not run there and how to bring it.
// Plain JavaScript: Node loads reporters before any --import hook that would compile TypeScript.
import { basename } from 'node:path';

/**
 * `skipped 3: needs tini (apt-get install tini) ×2 [container.test.ts]; …`, or `skipped: none`.
 * @param {{ reason: string, file: string }[]} skipped
 */
function skipSummary(skipped) {
  if (skipped.length === 0) return 'skipped: none';
  /** @type {Map<string, { count: number, files: Set<string> }>} */
  const byReason = new Map();
  for (const { reason, file } of skipped) {
    const entry = byReason.get(reason) ?? { count: 0, files: new Set() };
    entry.count++;
    entry.files.add(file);
    byReason.set(reason, entry);
  }
  const parts = [...byReason].map(
    ([reason, { count, files }]) => `${reason} ×${count} [${[...files].join(', ')}]`,
  );
  return `skipped ${skipped.length}: ${parts.join('; ')}`;
}

/** @param {AsyncIterable<{ type: string, data: { skip?: string | boolean, file?: string } }>} source */
export default async function* skippedReporter(source) {
  const skipped = [];
  for await (const event of source) {
    // A skipped suite or test is reported as passed, with its reason in `skip`.
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.skip !== undefined) {
      const { skip, file } = event.data;
      skipped.push({
        reason: typeof skip === 'string' && skip !== '' ? skip : 'no reason given',
        file: file ? basename(file) : 'unknown file',
      });
    }
  }
  yield `${skipSummary(skipped)}\n`;
}
