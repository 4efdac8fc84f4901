import type { OutputEvent, TruncatedEvent } from '../../src/api/tensorlake/responses.ts';
import { API, api, commandLine, failure, type ProcessInfo, signalName } from './api.ts';
import { formatBytes, h, notify } from './dom.ts';
import type { Screen } from './screen.ts';

// The page keeps the newest lines only; the whole log is a download away.
const MAX_LINES = 20_000;
const PAGE_LINES = 10_000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes start with ESC.
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]/g;

type FollowState = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'gone';

/**
 * Follows a process's combined output over SSE. After a dropped connection it resumes after
 * the last id it saw (the browser sends Last-Event-ID on its own retries; a new EventSource
 * carries it as ?after=), and drops any event at or before that id, so nothing is missed or
 * shown twice.
 */
class Follower {
  private source: EventSource | undefined;
  private lastId: number | undefined;
  private retryMs = 250;
  private retryTimer: number | undefined;
  private closed = false;

  constructor(
    private readonly pid: string,
    private readonly on: {
      line(event: OutputEvent): void;
      truncated(event: TruncatedEvent): void;
      state(state: FollowState): void;
      ended(): void;
    },
  ) {
    this.open();
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.retryTimer);
    this.source?.close();
  }

  private fresh(event: MessageEvent): boolean {
    if (event.lastEventId === '') return true;
    const id = Number(event.lastEventId);
    if (this.lastId !== undefined && id <= this.lastId) return false;
    this.lastId = id;
    return true;
  }

  private open(): void {
    const after = this.lastId === undefined ? '' : `?after=${this.lastId}`;
    const source = new EventSource(`${API}/processes/${encodeURIComponent(this.pid)}/output/follow${after}`);
    this.source = source;
    this.on.state(this.lastId === undefined ? 'connecting' : 'reconnecting');
    source.addEventListener('open', () => {
      this.retryMs = 250;
      this.on.state('live');
    });
    source.addEventListener('output', (event) => {
      if (this.fresh(event)) this.on.line(JSON.parse(event.data) as OutputEvent);
    });
    source.addEventListener('truncated', (event) => {
      if (this.fresh(event)) this.on.truncated(JSON.parse(event.data) as TruncatedEvent);
    });
    source.addEventListener('eof', () => {
      source.close();
      this.on.state('ended');
      this.on.ended();
    });
    source.addEventListener('error', () => {
      if (this.closed) return;
      if (source.readyState === EventSource.CONNECTING) {
        this.on.state('reconnecting');
        return;
      }
      // The browser gave up (an HTTP error): find out why before trying again.
      source.close();
      void this.retry();
    });
  }

  private async retry(): Promise<void> {
    this.on.state('reconnecting');
    const response = await fetch(`${API}/processes/${encodeURIComponent(this.pid)}`, {
      credentials: 'same-origin',
    }).catch(() => undefined);
    if (this.closed) return;
    if (response?.status === 404) {
      this.on.state('gone');
      return;
    }
    if (response && !response.ok) await failure(response);
    this.retryTimer = window.setTimeout(() => this.open(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }
}

/** Pages through the whole combined output and saves it as a text file. */
async function downloadLog(pid: string): Promise<void> {
  const parts: Blob[] = [];
  let after: number | undefined;
  for (;;) {
    const query = `limit=${PAGE_LINES}${after === undefined ? '' : `&after=${after}`}`;
    const page = await api<{ lines: string[]; line_count: number; next_after: number }>(
      'GET',
      `/processes/${encodeURIComponent(pid)}/output?${query}`,
    );
    if (page.line_count > 0) parts.push(new Blob([`${page.lines.join('\n')}\n`]));
    if (page.line_count < PAGE_LINES) break;
    after = page.next_after;
  }
  const url = URL.createObjectURL(new Blob(parts, { type: 'text/plain' }));
  const link = h('a', { href: url, download: `process-${pid}.log` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function describe(info: ProcessInfo): { text: string; className: string } {
  if (info.status === 'oom_killed') return { text: 'killed for memory (OOM)', className: 'signaled' };
  if (info.status === 'exited') return { text: `exited with code ${info.exit_code}`, className: 'exited' };
  if (info.status === 'signaled' && info.signal !== null)
    return { text: `killed by ${signalName(info.signal)}`, className: 'signaled' };
  return { text: 'running', className: 'running' };
}

export function logsScreen(): Screen {
  let pid = '';
  let follower: Follower | undefined;
  let pending: Node[] = [];
  let flushing = false;
  let dropped = 0;
  let query = '';

  const picker = h('select', { 'aria-label': 'process' });
  const title = h('span', { class: 'log-title' });
  const exit = h('span', { class: 'exit' });
  const state = h('span', { class: 'follow-state' });
  const search = h('input', { type: 'search', placeholder: 'Search this page', 'aria-label': 'search' });
  const matches = h('span', { class: 'matches' });
  const download = h('button', { type: 'button' }, 'Download log');
  const pane = h('div', { class: 'log', role: 'log', tabindex: 0 });
  const droppedNote = h('div', { class: 'line note', hidden: true });
  const stdinText = h('input', {
    placeholder: 'a line for stdin',
    'aria-label': 'stdin',
    spellcheck: 'false',
  });
  const stdinRow = h(
    'form',
    { class: 'stdin-row', hidden: true },
    stdinText,
    h('button', { type: 'submit' }, 'Send'),
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          try {
            await api('POST', `/processes/${encodeURIComponent(pid)}/stdin/close`);
            notify('Closed stdin');
          } catch (error) {
            notify(`Close failed: ${(error as Error).message}`, 'error');
          }
          await loadInfo();
        },
      },
      'Close stdin',
    ),
  );
  pane.append(droppedNote);

  const matchesQuery = (line: Element) =>
    query === '' || (line.textContent ?? '').toLowerCase().includes(query.toLowerCase());

  const applySearch = () => {
    let count = 0;
    for (const line of pane.querySelectorAll('.line:not(.note)')) {
      const hit = matchesQuery(line);
      line.classList.toggle('hidden', !hit);
      if (hit && query !== '') count += 1;
    }
    matches.textContent = query === '' ? '' : `${count} matching`;
  };

  const flush = () => {
    flushing = false;
    const atBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 24;
    const fragment = document.createDocumentFragment();
    let hits = 0;
    for (const node of pending) {
      if (query !== '' && node instanceof Element) {
        const hit = matchesQuery(node);
        node.classList.toggle('hidden', !hit);
        if (hit) hits += 1;
      }
      fragment.append(node);
    }
    pending = [];
    pane.append(fragment);
    let excess = pane.childElementCount - 1 - MAX_LINES;
    while (excess > 0 && droppedNote.nextSibling) {
      droppedNote.nextSibling.remove();
      dropped += 1;
      excess -= 1;
    }
    if (dropped > 0) {
      droppedNote.hidden = false;
      droppedNote.textContent = `${dropped} earlier lines are not shown here: download the log to see them all.`;
    }
    if (query !== '' && hits > 0) applySearch();
    if (atBottom) pane.scrollTop = pane.scrollHeight;
  };

  const add = (node: Node) => {
    pending.push(node);
    if (!flushing) {
      flushing = true;
      requestAnimationFrame(flush);
    }
  };

  const loadInfo = async () => {
    if (pid === '') return;
    try {
      const info = await api<ProcessInfo>('GET', `/processes/${encodeURIComponent(pid)}`);
      title.textContent = `${info.pid} · ${commandLine(info)}`;
      title.title = commandLine(info);
      const { text, className } = describe(info);
      exit.textContent = text;
      exit.className = `exit ${className}`;
      if (info.status === 'exited') exit.dataset.exitCode = String(info.exit_code);
      stdinRow.hidden = !info.stdin_writable;
    } catch (error) {
      exit.textContent = (error as Error).message;
      exit.className = 'exit error';
    }
  };

  const refreshPicker = async () => {
    try {
      const { processes } = await api<{ processes: ProcessInfo[] }>('GET', '/processes');
      processes.sort((a, b) => b.started_at - a.started_at);
      picker.replaceChildren(
        h('option', { value: '' }, 'Pick a process…'),
        ...processes.map((info) =>
          h(
            'option',
            { value: info.pid, selected: String(info.pid) === pid },
            `${info.pid} ${commandLine(info)}`,
          ),
        ),
      );
      if (pid !== '' && !processes.some((info) => String(info.pid) === pid))
        picker.append(h('option', { value: pid, selected: true }, pid));
    } catch (error) {
      notify(`Could not list processes: ${(error as Error).message}`, 'error');
    }
  };

  const follow = (next: string) => {
    follower?.close();
    follower = undefined;
    pid = next;
    pending = [];
    dropped = 0;
    droppedNote.hidden = true;
    pane.replaceChildren(droppedNote);
    title.textContent = pid === '' ? 'No process picked.' : pid;
    exit.textContent = '';
    exit.className = 'exit';
    delete exit.dataset.exitCode;
    state.textContent = '';
    stdinRow.hidden = true;
    download.disabled = pid === '';
    if (pid === '') return;
    void loadInfo();
    follower = new Follower(pid, {
      line: ({ line, stream }) =>
        add(h('div', { class: `line ${stream ?? 'stdout'}` }, line.replace(ANSI, ''))),
      truncated: ({ truncated_bytes, stream }) =>
        add(
          h(
            'div',
            { class: 'line truncated', role: 'note' },
            `⋯ ${formatBytes(truncated_bytes)} of ${stream} dropped here: the daemon's log limit was reached before it was read ⋯`,
          ),
        ),
      state: (followState) => {
        // "ended" means every line is on the page.
        if (followState === 'ended' && flushing) flush();
        state.textContent = followState;
        state.className = `follow-state ${followState}`;
      },
      ended: () => void loadInfo(),
    });
  };

  picker.addEventListener('change', () => {
    window.location.hash = picker.value === '' ? '#/logs' : `#/logs/${picker.value}`;
  });
  search.addEventListener('input', () => {
    query = search.value;
    applySearch();
  });
  download.addEventListener('click', async () => {
    download.disabled = true;
    try {
      await downloadLog(pid);
    } catch (error) {
      notify(`Download failed: ${(error as Error).message}`, 'error');
    } finally {
      download.disabled = false;
    }
  });
  stdinRow.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const response = await fetch(`${API}/processes/${encodeURIComponent(pid)}/stdin`, {
        method: 'POST',
        credentials: 'same-origin',
        body: `${stdinText.value}\n`,
      });
      if (!response.ok) throw await failure(response);
      stdinText.value = '';
    } catch (error) {
      notify(`Write failed: ${(error as Error).message}`, 'error');
    }
  });

  const root = h(
    'section',
    { class: 'logs' },
    h('div', { class: 'toolbar' }, picker, title, exit, state),
    h('div', { class: 'toolbar' }, search, matches, h('span', { class: 'spacer' }), download),
    stdinRow,
    pane,
  );

  return {
    root,
    show(param) {
      void refreshPicker();
      if (param !== pid || !follower) follow(param);
    },
    // Following goes on out of sight, so coming back shows everything.
    hide() {},
  };
}
