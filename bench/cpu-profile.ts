// The frames that took the most CPU time themselves (self time) in a profile written by
// `node --cpu-prof`, for comparing a hot path before and after a change.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../test/helpers/daemon.ts';

/** The parts of V8's .cpuprofile format read here. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  /** Microseconds of the monotonic clock. */
  startTime: number;
  samples: number[];
  /** Microseconds since the previous sample, one per sample. */
  timeDeltas: number[];
}

export interface Frame {
  frame: string;
  selfMs: number;
  /** Of the time the process was not idle. */
  share: number;
}

/** The top `count` frames by self time, of the samples taken at or after `sinceUs`. */
export async function topSelfTime(
  file: string,
  count: number,
  sinceUs = 0,
): Promise<{ busyMs: number; top: Frame[] }> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const names = new Map(profile.nodes.map((node) => [node.id, frameName(node.callFrame)]));
  const selfUs = new Map<string, number>();
  let at = profile.startTime;
  // A sample stands for the time until the next one.
  for (let i = 0; i < profile.samples.length - 1; i++) {
    at += profile.timeDeltas[i] as number;
    if (at < sinceUs) continue;
    const name = names.get(profile.samples[i] as number) as string;
    selfUs.set(name, (selfUs.get(name) ?? 0) + (profile.timeDeltas[i + 1] as number));
  }
  selfUs.delete('(idle)');
  const busyUs = [...selfUs.values()].reduce((sum, us) => sum + us, 0);
  const top = [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, share: us / busyUs }));
  return { busyMs: busyUs / 1000, top };
}

/** `name file:line`, the file relative to the project (dist/…, node_modules/…) or node's own. */
function frameName({ functionName, url, lineNumber }: CpuProfile['nodes'][number]['callFrame']): string {
  if (url === '') return functionName || '(anonymous)';
  const file = url.startsWith('file://') ? relative(ROOT, fileURLToPath(url)) : url;
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
}
