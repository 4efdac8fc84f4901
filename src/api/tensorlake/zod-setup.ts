import './zod-setup.ts';
import * as z from 'zod';

// Imported ahead of zod by every module that builds schemas, so that it runs before the first.
// Without `jitless`, zod compiles a parser of its own for each object schema (new Function) on
// its first parse, which the first request paid for, and probes whether it may by reading
// `navigator`, which on Node 21+ loads all of undici (15 ms and several MiB on Node 24). The
// bodies here are small: the plain parser is as fast for them.
z.config({ jitless: true });
