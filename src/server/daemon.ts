import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { envdDialect } from '../api/envd/index.ts';
import { tensorlakeDialect } from '../api/tensorlake/index.ts';
import { type ContainmentChoice, openContainment } from '../core/containment/index.ts';
import { owningProcess } from '../core/process-owner.ts';
import { ProcessTable } from '../core/process-table.ts';
import { Reaper } from '../core/reaper.ts';
import { containedSpawner } from '../core/spawner.ts';
import { Accounts } from '../core/users.ts';
import { FileSystem } from '../files/file-system.ts';
import { ListeningPorts } from '../ports/listening.ts';
import { PreviewAccess } from '../ports/preview-access.ts';
import { Tunnels } from '../ports/tunnels.ts';
import { previews } from '../preview/index.ts';
import { consoleUi } from '../ui/index.ts';
import { COOKIE as CONSOLE_COOKIE } from '../ui/sessions.ts';
import { version } from '../version.ts';
import { answerClientErrors } from './client-errors.ts';
import { type ConnectionLimits, guardConnections } from './connections.ts';
import { startMemoryRelease } from './memory-release.ts';
import { createRequestListener, createUpgradeListener, type UpgradeListener } from './request-listener.ts';

export interface DaemonConfig {
  host: string;
  /** Every port serves every dialect; the first is the one reported in `url`. */
  ports: number[];
  token?: string;
  dataDir?: string;
  drainGraceMs: number;
  shutdownGraceMs: number;
  /** An unattached terminal session is killed after this long. */
  ptyIdleTimeoutMs: number;
  /** Serve the web console at /ui. */
  ui: boolean;
  /** How descendants are tracked (default: the best this machine allows). */
  containment?: ContainmentChoice;
  output: {
    /** Newest output kept in memory, per stream. */
    memoryBytesPerStream: number;
    /** Output kept in all (memory and disk), per stream; past it the oldest goes. */
    maxBytesPerStream: number;
  };
  retention: {
    /** Finished processes kept, newest first. */
    maxFinished: number;
    /** Finished incarnations a managed process keeps. */
    managedHistory: number;
    /** Spill files of all processes together. */
    maxSpillBytes: number;
  };
  connections: ConnectionLimits;
  /** Ports whose HTTP previews anyone may open (`--public-port`). */
  publicPorts?: number[];
  /** The host preview links end with, instead of the one a request came in by (`--preview-host`). */
  previewHost?: string;
}

export interface Daemon {
  /** One per port, in the order of `ports`. */
  urls: string[];
  /** How descendants are tracked and orphans reaped, for the start-up line. */
  tracking: string;
  stop(): Promise<void>;
}

const MiB = 1024 * 1024;

/** The environment processes start from: the daemon's own, without its secret. */
function baseEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && key !== 'SANDBOXD_TOKEN') env[key] = value;
  }
  return env;
}

/** Composes the core, the dialects and the HTTP server, and starts listening. */
export async function startDaemon(config: DaemonConfig): Promise<Daemon> {
  const startedAt = Date.now();
  const baseEnv = baseEnvironment();
  const accounts = new Accounts();
  const reaper = Reaper.start();
  const containment = await openContainment(config.containment ?? 'auto');
  const table = new ProcessTable({
    dataDir: config.dataDir,
    baseEnv,
    accounts,
    containment,
    spawn: containedSpawner({
      containment,
      log: { ...config.output, maxLineBytes: MiB },
      stdin: { maxQueuedBytes: 8 * MiB, writeTimeoutMs: 30_000 },
      drainGraceMs: config.drainGraceMs,
    }),
    ...config.retention,
  });
  const files = new FileSystem({
    accounts,
    maxListEntries: 100_000,
    watch: { maxEvents: 4096, maxDirectories: 8192, maxWatches: 256 },
  });
  const limits = { jsonBytes: MiB, stdinBytes: 16 * MiB };
  const previewAccess = new PreviewAccess({
    publicPorts: config.publicPorts ?? [],
    codeLifetimeMs: 60_000,
    sessionLifetimeMs: 24 * 60 * 60 * 1000,
    maxEntries: 10_000,
  });
  const ports = new ListeningPorts({
    ownerOf: (pid) => owningProcess(table, pid),
    publicPorts: previewAccess.publicPorts,
  });
  const tunnels = new Tunnels();
  const dialects = [
    tensorlakeDialect({
      table,
      files,
      ports,
      limits,
      version,
      startedAt,
      previews: { access: previewAccess, host: config.previewHost },
      pty: {
        idleTimeoutMs: config.ptyIdleTimeoutMs,
        maxSessions: 64,
        killGraceMs: 5000,
        scrollbackBytes: MiB,
        inputBytesPerSecond: MiB,
        pingIntervalMs: 30_000,
        maxFrameBytes: MiB,
        daemonToken: config.token,
      },
      tunnel: {
        registry: tunnels,
        daemonToken: config.token,
        dialTimeoutMs: 5000,
        // What one tunnel holds at most, whatever the rate: half a MiB queued for the client,
        // one message of the client's on its way to the service.
        maxQueuedBytes: MiB / 2,
        maxFrameBytes: MiB,
        lingerMs: 5000,
      },
    }),
    // A stdin chunk of the largest size, plus room for the message around it.
    envdDialect({
      table,
      files,
      baseEnv,
      readMaxBytes: limits.stdinBytes + 64 * 1024,
      watcherIdleMs: 10 * 60 * 1000,
    }),
  ];
  const ui = config.ui ? consoleUi({ token: config.token }) : undefined;
  if (ui) dialects.push(ui.dialect);
  const daemonPorts = new Set<number>();
  const preview = previews({
    access: previewAccess,
    token: config.token,
    consoleCookie: CONSOLE_COOKIE,
    daemonPorts,
  });
  const listener = createRequestListener({
    dialects,
    token: config.token,
    session: ui?.sessions,
    previews: preview,
  });
  const onUpgrade = createUpgradeListener(dialects, preview);
  const listening = await Promise.allSettled(
    config.ports.map((port) => listen(listener, onUpgrade, config.host, port)),
  );
  const servers = listening.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async (graceMs: number) => {
    for (const server of servers) {
      server.close();
      server.closeIdleConnections();
    }
    files.close();
    preview.close();
    // Upgraded connections are no longer the HTTP server's: closeAllConnections misses them.
    const tunnelsClosed = tunnels.closeAll(Math.min(graceMs, 1000));
    await table.shutdown(graceMs);
    await tunnelsClosed;
    await containment.close();
    reaper.stop();
    for (const server of servers) server.closeAllConnections();
  };
  const refused = listening.find((result) => result.status === 'rejected');
  if (refused) {
    // Nothing has started yet, but the table has made its data directory: leave nothing behind.
    await stop(0);
    throw refused.reason;
  }
  guardConnections(servers, config.connections);
  answerClientErrors(servers, dialects);
  const urls = servers.map((server) => {
    const { address, port } = server.address() as AddressInfo;
    daemonPorts.add(port);
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  });

  const memory = startMemoryRelease({ checkEveryMs: 1000, minimumBytes: 32 * MiB });
  const orphans =
    reaper.status.role === 'none'
      ? `not reaped (${reaper.status.problem})`
      : `reaped (${reaper.status.role})`;
  return {
    urls,
    tracking: `descendants tracked by ${containment.description}; orphans ${orphans}`,
    stop: () => {
      memory.stop();
      return stop(config.shutdownGraceMs);
    },
  };
}

async function listen(
  listener: RequestListener,
  onUpgrade: UpgradeListener,
  host: string,
  port: number,
): Promise<Server> {
  // No time limit on a whole request: a StreamInput or a slow stdin upload may take hours.
  const server = createServer({ requestTimeout: 0 }, listener);
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}
