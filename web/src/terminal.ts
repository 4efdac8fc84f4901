import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { EXIT, INPUT, OUTPUT, READY, RESIZE } from '../../src/api/tensorlake/pty-frames.ts';
import { API, ApiError, api } from './api.ts';
import { h, notify } from './dom.ts';
import type { Screen } from './screen.ts';

// The session's own token (handed out by POST /pty, good for that terminal alone) is kept for
// the tab, so a reload finds its shell again.
const STORE = 'sandboxd.terminal';

interface Attachment {
  session_id: string;
  token: string;
}

const encoder = new TextEncoder();

function frame(opcode: number, payload: Uint8Array = new Uint8Array()): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(payload.length + 1);
  bytes[0] = opcode;
  bytes.set(payload, 1);
  return bytes;
}

function resizeFrame(cols: number, rows: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(5);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, RESIZE);
  view.setUint16(1, cols);
  view.setUint16(3, rows);
  return bytes;
}

export function terminalScreen(): Screen {
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
    fontSize: 14,
    scrollback: 5000,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);

  const state = h('span', { class: 'follow-state' });
  const host = h('div', { class: 'terminal-host' });
  let attachment: Attachment | undefined;
  let socket: WebSocket | undefined;
  let retryMs = 250;
  let retryTimer: number | undefined;
  let opened = false;

  const setState = (text: string, className = text) => {
    state.textContent = text;
    state.className = `follow-state ${className}`;
  };

  const send = (bytes: Uint8Array<ArrayBuffer>) => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(bytes);
  };

  const forget = () => {
    attachment = undefined;
    sessionStorage.removeItem(STORE);
  };

  const finished = (message: string) => {
    forget();
    term.write(`\r\n\x1b[2m[${message}]\x1b[0m\r\n`);
    setState('ended');
  };

  const connect = (target: Attachment) => {
    window.clearTimeout(retryTimer);
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${window.location.host}${API}/pty/${encodeURIComponent(target.session_id)}/ws?token=${encodeURIComponent(target.token)}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    let ended = false;
    ws.addEventListener('open', () => {
      retryMs = 250;
      // The daemon replays the scrollback on every attach: start from a clean screen.
      term.reset();
      ws.send(frame(READY));
      ws.send(resizeFrame(term.cols, term.rows));
      setState('connected', 'live');
      term.focus();
    });
    ws.addEventListener('message', (event: MessageEvent<ArrayBuffer>) => {
      const bytes = new Uint8Array(event.data);
      if (bytes[0] === OUTPUT) term.write(bytes.subarray(1));
      else if (bytes[0] === EXIT && bytes.length >= 5) {
        ended = true;
        finished(`process exited with code ${new DataView(event.data).getInt32(1)}`);
      }
    });
    ws.addEventListener('close', (event) => {
      if (socket !== ws || ended) return;
      if (event.code === 1000 && event.reason.startsWith('exit:')) {
        finished(`process exited with code ${event.reason.slice(5)}`);
      } else if (event.code === 1001) {
        finished('session ended');
      } else {
        void reconnect(target);
      }
    });
  };

  const reconnect = async (target: Attachment) => {
    setState('reconnecting');
    try {
      const info = await api<{ is_alive: boolean }>('GET', `/pty/${encodeURIComponent(target.session_id)}`);
      if (!info.is_alive) {
        finished('process ended');
        return;
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        finished('session gone');
        return;
      }
      // The daemon is out of reach: keep trying.
    }
    retryTimer = window.setTimeout(() => connect(target), retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };

  const create = async (): Promise<Attachment> => {
    let lastError: unknown;
    for (const command of ['bash', 'sh']) {
      try {
        return await api<Attachment>('POST', '/pty', {
          command,
          env: { TERM: 'xterm-256color' },
          rows: term.rows,
          cols: term.cols,
        });
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };

  const start = async () => {
    try {
      setState('starting', 'connecting');
      attachment = await create();
      sessionStorage.setItem(STORE, JSON.stringify(attachment));
      connect(attachment);
    } catch (error) {
      setState('failed', 'gone');
      notify(`Could not open a terminal: ${(error as Error).message}`, 'error');
    }
  };

  const end = async () => {
    const current = attachment;
    forget();
    window.clearTimeout(retryTimer);
    const ws = socket;
    socket = undefined;
    ws?.close();
    if (current) await api('DELETE', `/pty/${encodeURIComponent(current.session_id)}`).catch(() => undefined);
    setState('ended');
  };

  term.onData((data) => send(frame(INPUT, encoder.encode(data))));
  term.onBinary((data) =>
    send(
      frame(
        INPUT,
        Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff),
      ),
    ),
  );
  term.onResize(({ cols, rows }) => send(resizeFrame(cols, rows)));

  let fitting = false;
  new ResizeObserver(() => {
    if (fitting || !opened) return;
    fitting = true;
    requestAnimationFrame(() => {
      fitting = false;
      if (host.clientWidth > 0 && host.clientHeight > 0) fit.fit();
    });
  }).observe(host);

  const root = h(
    'section',
    { class: 'terminal' },
    h(
      'div',
      { class: 'toolbar' },
      h(
        'button',
        {
          type: 'button',
          onclick: async () => {
            await end();
            await start();
          },
        },
        'New terminal',
      ),
      h('button', { type: 'button', class: 'danger', onclick: () => end() }, 'End session'),
      state,
    ),
    host,
  );

  return {
    root,
    show() {
      if (!opened) {
        opened = true;
        term.open(host);
        fit.fit();
        const stored = sessionStorage.getItem(STORE);
        if (stored) {
          attachment = JSON.parse(stored) as Attachment;
          void reconnect(attachment);
        } else {
          void start();
        }
      } else {
        fit.fit();
      }
      term.focus();
    },
    hide() {},
  };
}
