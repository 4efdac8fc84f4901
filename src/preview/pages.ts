import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { rawResponse } from '../http/raw-response.ts';

// The daemon's own answers on a preview host. A person sees them in a browser tab where they
// expected their app, so they are short HTML pages that say what happened and what to do.

export interface Page {
  status: number;
  title: string;
  /** One sentence or two, as plain text (escaped here). */
  text: string;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function html({ title, text }: Page): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    '<meta name="viewport" content="width=device-width"></head>' +
    `<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">` +
    `<h1 style="font-size:1.4rem">${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>` +
    '<p style="color:#666;font-size:.85rem">sandboxd preview</p></body></html>\n'
  );
}

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** Answers a request with the page. */
export function sendPage(res: ServerResponse, page: Page): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = html(page);
  res.writeHead(page.status, { ...HEADERS, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers an upgrade request on its raw socket with the page, and closes it. */
export function refuseWithPage(socket: Duplex, page: Page): void {
  const reason = STATUS_CODES[page.status] ?? 'Error';
  socket.end(rawResponse(page.status, reason, html(page), HEADERS['content-type']));
}

export const badPortPage = (label: string): Page => ({
  status: 400,
  title: `No such port: ${label}`,
  text: `A preview host starts with a port from 1 to 65535 and a dash, such as 3000-…; "${label}" is not one.`,
});

export const daemonPortPage = (port: number): Page => ({
  status: 400,
  title: `Port ${port} is sandboxd itself`,
  text: `A preview of the daemon's own port would send each request back to the daemon, round and round. Preview the port your app listens on.`,
});

export const unreachablePage = (port: number): Page => ({
  status: 502,
  title: `Nothing answers on port ${port}`,
  text: `No server in the sandbox accepts connections on port ${port} (127.0.0.1 or ::1). Start it, or check the port it listens on.`,
});

export const brokenPage = (port: number): Page => ({
  status: 502,
  title: `Port ${port} broke the connection`,
  text: `The server on port ${port} closed the connection before it answered.`,
});

export const privatePage = (port: number): Page => ({
  status: 401,
  title: `The preview of port ${port} is private`,
  text: `Open it through a link from \`sandboxd preview ${port}\` (or the console), or send the daemon's token.`,
});

export const spentLinkPage = (port: number): Page => ({
  status: 403,
  title: 'This preview link has been used or has expired',
  text: `A preview link opens once, within a minute. Ask for a new one: \`sandboxd preview ${port}\`.`,
});
