#!/usr/bin/env node
import module from 'node:module';
import { tuneV8ForDaemon } from './v8-tuning.ts';

// Node 22.1+ keeps V8's compiled code of the modules on disk (in the temporary folder, or
// NODE_COMPILE_CACHE), so a later start skips compiling the bundle's ~1 MiB again: about a
// third of start-up. Node 20 lacks it. It must come before the commands' modules load, hence
// this file of its own. A folder it cannot use just leaves the cache off.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
if (process.argv[2] === 'serve') tuneV8ForDaemon();

await import('./commands.ts');
