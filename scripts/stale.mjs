// Exits 0 when dist/ is current, 1 when it must be built: `npm start` (and the bench) build only
// then. dist/.stamp is written last by a build that succeeded; dist/ is stale when it is missing
// or when anything the build reads (src/, web/, scripts/, package.json, the lock file, the
// tsconfigs) was changed after it. Plain JavaScript, so that checking costs no TypeScript
// loader. An installed package has no sources: its dist/ is current.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INPUTS = ['src', 'web', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json'];

/** The newest modification time under `path` (itself included), ms; 0 if it does not exist. */
function newest(path) {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return 0;
  }
  // A folder's own time changes when an entry is added, removed or renamed.
  let time = stats.mtimeMs;
  if (stats.isDirectory()) {
    for (const name of readdirSync(path)) time = Math.max(time, newest(join(path, name)));
  }
  return time;
}

let built;
try {
  built = statSync(join(ROOT, 'dist', '.stamp')).mtimeMs;
} catch {
  process.exit(1);
}
const changed = Math.max(...INPUTS.map((input) => newest(join(ROOT, input))));
process.exit(changed > built ? 1 : 0);
