import type { ListeningPortInfo } from '../../src/api/tensorlake/responses.ts';
import { API, api, failure } from './api.ts';
import { h, notify } from './dom.ts';
import { pollWhileShown } from './poll.ts';
import type { Screen } from './screen.ts';

// A list of ports is a few hundred bytes: polled every second while the screen is on view.
const POLL_MS = 1000;

/** What `POST /api/v1/ports/{port}/preview` answers: a short-lived link that opens the port. */
interface PreviewLink {
  url: string;
  port: number;
  expires_at: string;
}

/**
 * A preview reaches the port on the sandbox's loopback: a socket bound to a wildcard or a
 * loopback address is reachable there, one bound to another interface only is not.
 */
export function reachableOnLoopback(address: string): boolean {
  return (
    address === '0.0.0.0' ||
    address === '::' ||
    address === '::1' ||
    address.startsWith('127.') ||
    address.startsWith('::ffff:127.')
  );
}

/**
 * Opens a preview of the port in a new tab. The tab is opened now, while the click still
 * counts as the user's (a popup blocker stops a window opened after an await), and sent to
 * the link once it has come back; it gets no handle on this page.
 */
async function openPreview(port: number): Promise<void> {
  const tab = window.open('', '_blank');
  if (!tab) {
    // Asked for no link: it is single-use, and nothing could open it now.
    notify(`The browser blocked the new tab: allow pop-ups here to open port ${port}`, 'error');
    return;
  }
  tab.opener = null;
  try {
    const { url } = await api<PreviewLink>('POST', `/ports/${port}/preview`);
    tab.location.href = url;
  } catch (error) {
    tab.close();
    notify(`Could not open port ${port}: ${(error as Error).message}`, 'error');
  }
}

interface Row {
  element: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  /** What the row's links and buttons were built for; rebuilt when it changes. */
  builtFor: string;
}

export function portsScreen(): Screen {
  const rows = new Map<string, Row>();
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty' }, 'Nothing listens on a TCP port yet.');
  let polling = false;
  let latest: ListeningPortInfo[] = [];
  const startedHereOnly = h('input', { type: 'checkbox', name: 'started-here' });
  startedHereOnly.addEventListener('change', () => render(latest));

  const refresh = async () => {
    if (polling) return;
    polling = true;
    try {
      const response = await fetch(`${API}/ports`, { credentials: 'same-origin' });
      if (!response.ok) throw await failure(response);
      latest = ((await response.json()) as { ports: ListeningPortInfo[] }).ports;
      render(latest);
    } catch (error) {
      notify(`Could not list ports: ${(error as Error).message}`, 'error');
    } finally {
      polling = false;
    }
  };

  const fill = (row: Row, info: ListeningPortInfo) => {
    const texts = [String(info.port), info.address, info.pid === null ? '' : String(info.pid)];
    texts.forEach((text, i) => {
      const cell = row.cells[i] as HTMLTableCellElement;
      if (cell.textContent !== text) cell.textContent = text;
    });
    const builtFor = `${info.process_pid ?? ''}/${reachableOnLoopback(info.address)}`;
    if (row.builtFor !== builtFor) {
      row.builtFor = builtFor;
      (row.cells[3] as HTMLTableCellElement).replaceChildren(
        info.process_pid === undefined
          ? ''
          : h('a', { href: `#/logs/${info.process_pid}`, title: 'its logs' }, String(info.process_pid)),
      );
      const reachable = reachableOnLoopback(info.address);
      (row.cells[6] as HTMLTableCellElement).replaceChildren(
        h(
          'div',
          {},
          h(
            'button',
            {
              class: 'primary',
              disabled: !reachable,
              title: reachable
                ? `a private link to port ${info.port}, in a new tab`
                : `it listens on ${info.address} only, which a preview does not reach`,
              onclick: () => void openPreview(info.port),
            },
            'Open',
          ),
        ),
      );
    }
    const command = info.command ?? '';
    const commandCell = row.cells[4] as HTMLTableCellElement;
    if (commandCell.textContent !== command) {
      commandCell.textContent = command;
      commandCell.title = command;
    }
    // Public: opened to anyone; private: a preview needs a link from this console or the token.
    const open = info.public ? 'public' : 'private';
    if (row.cells[5]?.textContent !== open) (row.cells[5] as HTMLTableCellElement).textContent = open;
  };

  const render = (all: ListeningPortInfo[]) => {
    const ports = startedHereOnly.checked ? all.filter((info) => info.process_pid !== undefined) : all;
    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const info of ports) {
      const key = `${info.port} ${info.address}`;
      seen.add(key);
      let row = rows.get(key);
      if (!row) {
        const cells = Array.from({ length: 7 }, () => h('td'));
        cells[4]?.setAttribute('class', 'command');
        cells[6]?.setAttribute('class', 'actions');
        row = {
          element: h('tr', { 'data-port': info.port, 'data-address': info.address }, ...cells),
          cells,
          builtFor: '',
        };
        rows.set(key, row);
      }
      fill(row, info);
      // Moves only rows out of place, so a button being clicked stays where it is.
      const expected: Element | null = previous ? previous.nextElementSibling : tbody.firstElementChild;
      if (expected !== row.element) {
        if (previous) previous.after(row.element);
        else tbody.prepend(row.element);
      }
      previous = row.element;
    }
    for (const [key, row] of rows) {
      if (seen.has(key)) continue;
      row.element.remove();
      rows.delete(key);
    }
    empty.hidden = ports.length > 0;
  };

  const root = h(
    'section',
    { class: 'ports' },
    h(
      'div',
      { class: 'toolbar' },
      h(
        'span',
        { class: 'hint' },
        'Listening TCP ports. Process: the one started here that the listener belongs to.',
      ),
      h('span', { class: 'spacer' }),
      h('label', {}, startedHereOnly, ' Only processes started here'),
    ),
    h(
      'table',
      { class: 'port-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Port', 'Address', 'PID', 'Process', 'Command', 'Access', ''].map((title) =>
            h('th', {}, title),
          ),
        ),
      ),
      tbody,
    ),
    empty,
  );

  return { root, ...pollWhileShown(refresh, () => POLL_MS) };
}
