// The daemon's speed, each figure beside a baseline measured in the same run: how fast output
// reaches a client, how long a start takes, a stdin-to-follower round trip, memory and health
// under a thousand followers, memory under a paused follower, the TCP tunnel's throughput and
// the memory of a thousand idle tunnels, what an HTTP preview adds to a request. Every figure
// and baseline is the median of the rounds (3; --quick: 1, with small sizes, only to prove the
// bench works); the ratio is figure ÷ baseline. The compiled daemon runs as `npm start` runs it.
//
//   npm run bench [-- --quick] [--json] [--rounds N] [--rows 1,2,6] [--profile DIR]
//
// --profile DIR runs each daemon under `node --cpu-prof`, writing DIR/<its name>.cpuprofile,
// and prints each profile's top self-time frames; with it, the default rows are 1-3 (the SSE
// path and the Connect path, binary and JSON: sse-lines, connect-binary, connect-json), each on
// a daemon of its own, so each in its own file.
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchOptions, profiledSince, type Row, Scratch } from './common.ts';
import { type Frame, topSelfTime } from './cpu-profile.ts';
import { sdkOutput } from './e2b-sdk-output.ts';
import { managedHealth } from './managed-health.ts';
import { manyFollowers } from './many-followers.ts';
import { connectBytes, sseLines } from './output-throughput.ts';
import { pausedFollower } from './paused-follower.ts';
import { previewLatency } from './preview.ts';
import { shortCommands, startLatency } from './starts.ts';
import { startup } from './startup.ts';
import { stdinFollow } from './stdin-follow.ts';
import { idleTunnels, tunnelThroughput } from './tunnel.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    rows: { type: 'string' },
    profile: { type: 'string' },
  },
});
const quick = values.quick;
const options: BenchOptions = {
  quick,
  rounds: Number(values.rounds ?? (quick ? 1 : 3)),
  profileDir: values.profile === undefined ? undefined : resolve(values.profile),
  log: (message) => process.stderr.write(`bench ${message}\n`),
};
if (!Number.isInteger(options.rounds) || options.rounds < 1)
  throw new Error('--rounds: a whole number, 1 or more');

const scratch = new Scratch();
const groups: { rows: string[]; run: () => Promise<Row[]> }[] = [
  { rows: ['1'], run: () => sseLines(options) },
  { rows: ['2'], run: () => connectBytes(options, scratch, 'binary') },
  { rows: ['3'], run: () => connectBytes(options, scratch, 'json') },
  { rows: ['4', '5'], run: () => startLatency(options, scratch) },
  { rows: ['6'], run: () => stdinFollow(options) },
  { rows: ['7'], run: () => manyFollowers(options) },
  { rows: ['8'], run: () => pausedFollower(options, scratch) },
  { rows: ['9'], run: () => shortCommands(options) },
  { rows: ['10'], run: () => tunnelThroughput(options) },
  { rows: ['11'], run: () => idleTunnels(options) },
  { rows: ['12'], run: () => previewLatency(options) },
  { rows: ['13'], run: () => managedHealth(options) },
  { rows: ['14'], run: () => sdkOutput(options, scratch) },
  { rows: ['15', '16', '17'], run: () => startup(options, scratch) },
];
const known = groups.flatMap((g) => g.rows);
const wanted = values.rows?.split(',') ?? (options.profileDir ? ['1', '2', '3'] : known);
const unknown = wanted.filter((id) => !known.includes(id));
if (unknown.length > 0)
  throw new Error(`--rows: no row ${unknown.join(', ')}; the rows are ${known.join(', ')}`);

/** What each baseline is, exactly, by the rows it belongs to. */
const LEGEND: [rows: string[], lines: string[]][] = [
  [
    ['1'],
    [
      "1   `seq 1 N` read from a pipe by this process: setEncoding('utf8'), each chunk (after the carried",
      "    unfinished line) split with String.split('\\n'); lines counted. The daemon's side: every SSE",
      '    frame of the run counted, the last line and the exit checked.',
    ],
  ],
  [
    ['2', '3'],
    [
      '2-3 `head -c N` of the source read from a pipe by this process, bytes counted. The source: base64',
      "    text of random bytes in 77-byte lines. The daemon's side: the Connect stream read by hand,",
      '    each message decoded (protobuf-es for binary, JSON.parse and Buffer base64 for JSON).',
    ],
  ],
  [
    ['4', '5'],
    [
      "4   p50 of Node's spawn of /bin/true (detached, output on pipes) until its 'spawn' event, in a lean",
      '    Node process of its own (spawn-probe.mjs), plus p50 of a keep-alive GET /api/v1/health;',
      '    samples interleaved with the starts.',
      "5   row 4's ratio on an empty daemon measured alongside (each its own connection).",
    ],
  ],
  [
    ['6'],
    [
      '6   per sample: a line written to a `cat` of this process and read back from its stdout, plus a',
      '    keep-alive health round trip; samples interleaved.',
    ],
  ],
  [['7'], ['7   the same daemon before the processes started; health from a separate process every 10 ms.']],
  [['8'], ['8   the same daemon, idle, before the process started.']],
  [['9'], ["9   Node spawning `true` with output on pipes, until 'close', in the same lean process as 4."]],
  [
    ['10'],
    [
      '10  the same bytes (4 MiB of random bytes sent over and over by a service in a process of its',
      '    own) read by this process straight from the service over loopback TCP; the figure reads them',
      '    through a tunnel with the `ws` library, the note through a Node pipe relay (a process of its',
      '    own too). Each timed after one untimed pass of each.',
    ],
  ],
  [['11'], ['11  the same daemon after 10 tunnels opened and closed; each of the 1000 has echoed a byte.']],
  [
    ['12'],
    [
      '12  a keep-alive GET of a small app (node:http, started through the daemon) straight to its port;',
      '    the figure is the same GET through its preview host, samples interleaved.',
    ],
  ],
  [
    ['13'],
    [
      '13  health round trips of the same daemon before the processes started, as in 7; the figure with',
      '    1000 managed `sleep`s each probing an http app every second (probes spread over the second).',
    ],
  ],
  [['14'], ["14  row 2's `head -c N` read from a pipe as UTF-8 text (setEncoding), characters counted."]],
  [
    ['15', '16', '17'],
    [
      '15  exec of `node -e 0` until it exits, the same binary, execs interleaved (each a sample).',
      '16  a bare `node -e "setInterval(()=>{},1e3)"` after the same pause as the idle daemon; 16b the',
      '    same bare Node, the daemon measured again 5 s after streaming 200 MiB (Connect Start, JSON).',
      '17  the median of the warm calls after the first, on the same fresh daemon (one per kind); the',
      '    first is sent 200 ms after the daemon first answered its health check.',
    ],
  ],
];

const load = () => loadavg().map((l) => Number(l.toFixed(2)));
const loadAtStart = load();
const header = `node ${process.version}, ${cpus().length} CPUs, load ${loadAtStart.join(' ')}; ${options.rounds} round(s)${quick ? ', quick' : ''}`;
const rows: Row[] = [];
if (!values.json) {
  console.log(header);
  console.log(
    `${'row'.padEnd(4)} ${'measure'.padEnd(42)} ${'figure'.padStart(16)}   ${'baseline'.padEnd(36)} ratio`,
  );
}
try {
  if (options.profileDir) await mkdir(options.profileDir, { recursive: true });
  for (const group of groups) {
    if (!group.rows.some((id) => wanted.includes(id))) continue;
    for (const done of await group.run()) {
      rows.push(done);
      if (!values.json) console.log(formatRow(done));
    }
  }
} finally {
  await scratch.remove();
}
const profiles = await summarizeProfiles();
if (values.json) {
  console.log(
    JSON.stringify(
      {
        node: process.version,
        cpus: cpus().length,
        loadAtStart,
        loadAtEnd: load(),
        quick,
        rounds: options.rounds,
        rows,
        profiles,
      },
      null,
      2,
    ),
  );
} else {
  console.log(`load at the end ${load().join(' ')}; ratio = figure ÷ baseline. Baselines:`);
  for (const [ids, lines] of LEGEND) {
    if (ids.some((id) => wanted.includes(id))) for (const line of lines) console.log(`  ${line}`);
  }
  for (const [name, { busyMs, top }] of Object.entries(profiles)) {
    console.log(`\n${name}: top self time of ${busyMs.toFixed(0)} ms busy (start-up left out)`);
    for (const { frame, selfMs, share } of top) {
      console.log(`  ${selfMs.toFixed(0).padStart(6)} ms ${(share * 100).toFixed(1).padStart(5)}%  ${frame}`);
    }
  }
}

function formatRow({ id, what, unit, figure, baseline, baselineIs, ratio, note }: Row): string {
  const base = `${format(baseline, unit)} ${baselineIs}`;
  return `${id.padEnd(4)} ${what.padEnd(42)} ${format(figure, unit).padStart(16)}   ${base.padEnd(36)} ${ratio.toFixed(2)}${note ? `  ${note}` : ''}`;
}

function format(value: number, unit: string): string {
  if (unit === 'lines/s') return `${(value / 1e6).toFixed(2)} M lines/s`;
  if (unit === '×') return value.toFixed(2);
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** The profiles this run wrote, from the moment each daemon was listening. */
async function summarizeProfiles(): Promise<Record<string, { busyMs: number; top: Frame[] }>> {
  const summaries: Record<string, { busyMs: number; top: Frame[] }> = {};
  for (const [file, since] of profiledSince) summaries[file] = await topSelfTime(file, 15, since);
  return summaries;
}
