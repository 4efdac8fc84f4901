import { API, api, commandLine, endOf, failure, type ProcessInfo, SIGNALS } from './api.ts';
import { formatTime, h, notify } from './dom.ts';
import { pollWhileShown } from './poll.ts';
import type { Screen } from './screen.ts';

// The table is polled while the screen is on view: once a second for a table of the usual
// size, less often for a big one (1000 processes are 160 KiB of JSON), at most every 5 s.
const POLL_MS = 1000;
const POLL_BYTES_PER_SECOND = 32 * 1024;
const MAX_POLL_MS = 5000;

/** KEY=value lines into an object; blank lines and # comments are skipped. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const equals = trimmed.indexOf('=');
    if (equals <= 0) throw new Error(`environment: expected KEY=value, got "${trimmed}"`);
    env[trimmed.slice(0, equals)] = trimmed.slice(equals + 1);
  }
  return env;
}

function managedNote({ status, restart_count }: NonNullable<ProcessInfo['managed']>): string {
  const restarts = restart_count === 1 ? '1 restart' : `${restart_count} restarts`;
  const state = status === 'running' ? 'managed' : `managed, ${status.replace('_', ' ')}`;
  return restart_count > 0 ? `${state}, ${restarts}` : state;
}

/** The status, what supervision says of it, and its health as a badge; last_error as the tooltip. */
function showStatus(cell: HTMLTableCellElement, info: ProcessInfo): void {
  const { managed } = info;
  const status = managed ? `${info.status} · ${managedNote(managed)}` : info.status;
  const health = managed && managed.health_status !== 'disabled' ? managed.health_status : undefined;
  const title = managed?.last_error ?? '';
  const shown = `${status}|${health}|${title}`;
  if (cell.dataset.shown === shown) return;
  cell.dataset.shown = shown;
  cell.className = `status ${info.status}`;
  cell.title = title;
  cell.replaceChildren(
    status,
    ...(health ? [' ', h('span', { class: `badge health-${health}` }, health)] : []),
  );
}

interface Row {
  element: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  /** What the action buttons were built for; they are rebuilt when it changes. */
  actionsFor: string;
}

export function processesScreen(): Screen {
  const rows = new Map<number, Row>();
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty' }, 'No processes yet.');
  let polling = false;
  let pollMs = POLL_MS;

  const refresh = async () => {
    if (polling) return;
    polling = true;
    try {
      const response = await fetch(`${API}/processes`, { credentials: 'same-origin' });
      if (!response.ok) throw await failure(response);
      const text = await response.text();
      pollMs = Math.min(MAX_POLL_MS, Math.max(POLL_MS, (1000 * text.length) / POLL_BYTES_PER_SECOND));
      render((JSON.parse(text) as { processes: ProcessInfo[] }).processes);
    } catch (error) {
      notify(`Could not list processes: ${(error as Error).message}`, 'error');
    } finally {
      polling = false;
    }
  };

  const act = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call();
      notify(what);
    } catch (error) {
      notify(`${what} failed: ${(error as Error).message}`, 'error');
    }
    await refresh();
  };

  const actions = (info: ProcessInfo): Node[] => {
    const running = info.status === 'running';
    const nodes: Node[] = [h('a', { href: `#/logs/${info.pid}`, class: 'button' }, 'Logs')];
    if (running) {
      const select = h(
        'select',
        { 'aria-label': `signal for ${info.pid}` },
        ...Object.entries(SIGNALS).map(([number, name]) =>
          h('option', { value: number, selected: name === 'SIGTERM' }, name),
        ),
      );
      nodes.push(
        select,
        h(
          'button',
          {
            onclick: () =>
              act(`Sent ${SIGNALS[Number(select.value)]} to ${info.pid}`, () =>
                api('POST', `/processes/${info.pid}/signal`, { signal: Number(select.value) }),
              ),
          },
          'Signal',
        ),
        h(
          'button',
          {
            class: 'danger',
            onclick: () => act(`Killed ${info.pid}`, () => api('DELETE', `/processes/${info.pid}`)),
          },
          'Kill',
        ),
      );
    }
    if (info.managed) {
      nodes.push(
        h(
          'button',
          {
            onclick: () => act(`Restarted ${info.pid}`, () => api('POST', `/processes/${info.pid}/restart`)),
          },
          'Restart',
        ),
      );
    }
    return nodes;
  };

  const render = (processes: ProcessInfo[]) => {
    processes.sort((a, b) => b.started_at - a.started_at || b.pid - a.pid);
    const seen = new Set<number>();
    let previous: Element | null = null;
    for (const info of processes) {
      seen.add(info.pid);
      let row = rows.get(info.pid);
      if (!row) {
        const cells = Array.from({ length: 7 }, () => h('td'));
        row = { element: h('tr', { 'data-pid': info.pid }, ...cells), cells, actionsFor: '' };
        rows.set(info.pid, row);
      }
      const texts = [String(info.pid), info.name ?? '', undefined, endOf(info), formatTime(info.started_at)];
      texts.forEach((text, i) => {
        const cell = row.cells[i] as HTMLTableCellElement;
        if (text !== undefined && cell.textContent !== text) cell.textContent = text;
      });
      showStatus(row.cells[2] as HTMLTableCellElement, info);
      const command = commandLine(info);
      const commandCell = row.cells[5] as HTMLTableCellElement;
      if (commandCell.textContent !== command) {
        commandCell.textContent = command;
        commandCell.title = command;
        commandCell.className = 'command';
      }
      const actionsFor = `${info.status}/${info.managed ? 'managed' : ''}`;
      if (row.actionsFor !== actionsFor) {
        (row.cells[6] as HTMLTableCellElement).replaceChildren(h('div', {}, ...actions(info)));
        row.cells[6]?.setAttribute('class', 'actions');
        row.actionsFor = actionsFor;
      }
      // Moves only rows out of place, so a row being used keeps its focus.
      const expected: Element | null = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (expected !== row.element) {
        if (previous) previous.after(row.element);
        else tbody.prepend(row.element);
      }
      previous = row.element;
    }
    for (const [pid, row] of rows) {
      if (seen.has(pid)) continue;
      row.element.remove();
      rows.delete(pid);
    }
    empty.hidden = processes.length > 0;
  };

  const form = startForm(() => refresh());
  const root = h(
    'section',
    { class: 'processes' },
    form,
    h(
      'table',
      { class: 'process-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['PID', 'Name', 'Status', 'Exit', 'Started', 'Command', ''].map((title) => h('th', {}, title)),
        ),
      ),
      tbody,
    ),
    empty,
  );

  return { root, ...pollWhileShown(refresh, () => pollMs) };
}

function startForm(started: () => Promise<void>): HTMLFormElement {
  const commandInput = h('input', {
    name: 'command',
    required: true,
    placeholder: 'e.g. python3 -m http.server 8000',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const env = h('textarea', {
    name: 'env',
    rows: 2,
    placeholder: 'KEY=value, one a line',
    spellcheck: 'false',
  });
  const cwd = h('input', { name: 'cwd', placeholder: 'the daemon’s', spellcheck: 'false' });
  const stdin = h(
    'select',
    { name: 'stdin' },
    h('option', { value: 'closed' }, 'closed'),
    h('option', { value: 'pipe' }, 'pipe (write from Logs)'),
  );
  const name = h('input', { name: 'name', placeholder: 'optional' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const field = (label: string, control: HTMLElement, hint?: string) =>
    h('label', {}, h('span', {}, label), control, hint ? h('small', {}, hint) : null);

  const form = h(
    'form',
    { class: 'start-form', 'aria-label': 'Start a process' },
    field('Command line', commandInput, 'run by /bin/sh -c'),
    field('Environment', env),
    field('Working directory', cwd),
    field('Stdin', stdin),
    field('Name', name, 'a named process can be restarted'),
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      const info = await api<ProcessInfo>('POST', '/processes', {
        command: '/bin/sh',
        args: ['-c', commandInput.value],
        env: parseEnv(env.value),
        working_dir: cwd.value.trim() || undefined,
        stdin_mode: stdin.value,
        name: name.value.trim() || undefined,
      });
      notify(`Started ${info.pid}`);
      commandInput.value = '';
      await started();
    } catch (error) {
      notify(`Start failed: ${(error as Error).message}`, 'error');
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
