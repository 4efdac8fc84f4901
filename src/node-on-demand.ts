import { createRequire } from 'node:module';

const requireBuiltin = createRequire(import.meta.url);

/**
 * Node's crypto, loaded on first use: a tree of some twenty modules that costs a daemon 0.6 MiB
 * of resident memory from the moment it loads, where an idle daemon without a token needs none
 * of it (it hashes tokens and cookies, and names temporary files, sessions and watchers).
 */
export const crypto = () => requireBuiltin('node:crypto') as typeof import('node:crypto');
