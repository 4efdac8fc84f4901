import { parsePort } from '../ports/port-number.ts';

/**
 * What a request's Host says about previews: `none` (the daemon's own routes), `bad` (it asks
 * for a preview of something that is not a port), or the port whose preview it asks for.
 */
export type PreviewHost = { kind: 'none' } | { kind: 'bad'; label: string } | { kind: 'port'; port: number };

const NONE: PreviewHost = { kind: 'none' };
// A first DNS label of 1 to 5 digits and a dash asks for a preview. Longer runs of digits
// cannot be a port, and are left to the daemon: a sandbox id such as a UUID may start with
// eight digits and a dash.
const PREVIEW_LABEL = /^(\d{1,5})-/;

/** The preview a Host header asks for: `3000-anything.example.com`, `3000-x.localhost:9501`. */
export function previewHost(host: string | undefined): PreviewHost {
  if (host === undefined || host.startsWith('[')) return NONE;
  const digits = PREVIEW_LABEL.exec(host)?.[1];
  if (digits === undefined) return NONE;
  const port = parsePort(digits);
  if (port === undefined) return { kind: 'bad', label: host.split(/[.:]/, 1)[0] ?? host };
  return { kind: 'port', port };
}
