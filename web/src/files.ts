import { API, api, failure, toLogin } from './api.ts';
import { formatBytes, formatTime, h, notify } from './dom.ts';
import type { Screen } from './screen.ts';

interface Entry {
  name: string;
  is_dir: boolean;
  size: number | null;
  modified_at: number;
}

const join = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;

function parent(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash <= 0 ? '/' : trimmed.slice(0, slash);
}

const fileUrl = (path: string) => `${API}/files?path=${encodeURIComponent(path)}`;

/** A streamed PUT of one file; XHR, since fetch reports no upload progress. */
function upload(file: File, path: string, progress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', fileUrl(path));
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (event) => progress(event.loaded));
    xhr.addEventListener('load', () => {
      if (xhr.status === 401) toLogin();
      if (xhr.status < 300) resolve();
      else reject(new Error(readError(xhr.responseText) ?? `HTTP ${xhr.status}`));
    });
    xhr.addEventListener('error', () => reject(new Error('the connection failed')));
    xhr.send(file);
  });
}

function readError(text: string): string | undefined {
  try {
    return (JSON.parse(text) as { error?: string }).error;
  } catch {
    return text || undefined;
  }
}

export function filesScreen(): Screen {
  // A relative path is the daemon user's home; the listing answers with the absolute path.
  let path = '.';
  const location = h('input', { 'aria-label': 'path', spellcheck: 'false' });
  const tbody = h('tbody');
  const uploads = h('ul', { class: 'uploads' });
  const picker = h('input', { type: 'file', multiple: true, hidden: true });
  const message = h('p', { class: 'empty', hidden: true });

  const list = async (next: string) => {
    try {
      const listing = await api<{ path: string; entries: Entry[] }>(
        'GET',
        `/files/list?path=${encodeURIComponent(next)}`,
      );
      path = listing.path;
      location.value = path;
      render(listing.entries);
    } catch (error) {
      location.value = next;
      tbody.replaceChildren();
      message.hidden = false;
      message.textContent = `Cannot list ${next}: ${(error as Error).message}`;
    }
  };

  const go = (next: string) => {
    window.location.hash = `#/files/${encodeURI(next)}`;
  };

  const remove = async (entry: Entry) => {
    const target = join(path, entry.name);
    if (!window.confirm(`Delete ${target}?`)) return;
    try {
      const response = await fetch(fileUrl(target), { method: 'DELETE', credentials: 'same-origin' });
      if (!response.ok) throw await failure(response);
      notify(`Deleted ${target}`);
    } catch (error) {
      notify(`Delete failed: ${(error as Error).message}`, 'error');
    }
    await list(path);
  };

  const render = (entries: Entry[]) => {
    message.hidden = entries.length > 0;
    message.textContent = 'This directory is empty.';
    tbody.replaceChildren(
      ...entries.map((entry) => {
        const target = join(path, entry.name);
        const name = entry.is_dir
          ? h('a', { href: `#/files/${encodeURI(target)}`, class: 'dir' }, `${entry.name}/`)
          : h('a', { href: fileUrl(target), download: entry.name, class: 'file' }, entry.name);
        return h(
          'tr',
          { 'data-name': entry.name },
          h('td', {}, name),
          h('td', { class: 'size' }, entry.size === null ? '' : formatBytes(entry.size)),
          h('td', {}, formatTime(entry.modified_at)),
          h(
            'td',
            { class: 'actions' },
            entry.is_dir
              ? null
              : h('a', { href: fileUrl(target), download: entry.name, class: 'button' }, 'Download'),
            h('button', { type: 'button', class: 'danger', onclick: () => remove(entry) }, 'Delete'),
          ),
        );
      }),
    );
  };

  const send = async (files: Iterable<File>) => {
    const dir = path;
    for (const file of files) {
      const bar = h('progress', { max: Math.max(file.size, 1), value: 0 });
      const label = h('span', {}, '0%');
      const item = h('li', { 'data-name': file.name }, h('span', { class: 'name' }, file.name), bar, label);
      uploads.append(item);
      try {
        await upload(file, join(dir, file.name), (sent) => {
          bar.value = sent;
          label.textContent = `${Math.floor((100 * sent) / Math.max(file.size, 1))}%`;
        });
        bar.value = bar.max;
        label.textContent = 'uploaded';
        item.className = 'done';
      } catch (error) {
        label.textContent = (error as Error).message;
        item.className = 'failed';
      }
      if (dir === path) await list(path);
    }
  };

  picker.addEventListener('change', () => {
    void send(Array.from(picker.files ?? []));
    picker.value = '';
  });
  location.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') go(location.value);
  });

  const root = h(
    'section',
    { class: 'files' },
    h(
      'div',
      { class: 'toolbar' },
      h('button', { type: 'button', onclick: () => go(parent(path)), title: 'Up one directory' }, 'Up'),
      location,
      h('button', { type: 'button', onclick: () => go(location.value) }, 'Go'),
      h('button', { type: 'button', class: 'primary', onclick: () => picker.click() }, 'Upload…'),
      picker,
    ),
    h('p', { class: 'hint' }, 'Drop files anywhere here to upload them to this directory.'),
    uploads,
    h(
      'table',
      { class: 'file-table' },
      h('thead', {}, h('tr', {}, ...['Name', 'Size', 'Modified', ''].map((title) => h('th', {}, title)))),
      tbody,
    ),
    message,
  );

  // Every drag event over the screen is taken, or the browser would open a dropped file itself.
  let depth = 0;
  root.addEventListener('dragenter', (event) => {
    event.preventDefault();
    depth += 1;
    root.classList.add('dragging');
  });
  root.addEventListener('dragover', (event) => event.preventDefault());
  root.addEventListener('dragleave', () => {
    depth -= 1;
    if (depth <= 0) root.classList.remove('dragging');
  });
  root.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    root.classList.remove('dragging');
    void send(Array.from(event.dataTransfer?.files ?? []));
  });

  return {
    root,
    show(param) {
      void list(param === '' ? path : param);
    },
    hide() {},
  };
}
