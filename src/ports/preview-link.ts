import { isIP } from 'node:net';

/** The query parameter that carries a preview link's one-time code. */
export const PREVIEW_CODE_PARAM = 'sandboxd_preview_code';

/** The label a preview host gets when the daemon was reached by an address, not a name. */
const LOOPBACK_NAME = 'sandbox.localhost';

export interface PreviewLinkOptions {
  port: number;
  code: string;
  /** The Host the daemon was reached by (`127.0.0.1:9501`, `sbx.example.com`). */
  requestHost: string | undefined;
  /** `--preview-host`: the name (and port) preview hosts end with, whatever Host says. */
  configuredHost?: string;
  /** The link is https (TLS ends at a proxy in front of the daemon). */
  secure: boolean;
}

/**
 * A preview link: `http://<port>-<host>/?<param>=<code>`. The host is the one the daemon was
 * reached by with `<port>-` in front, as E2B and Tensorlake form theirs (`sbx.example.com:9501`
 * → `3000-sbx.example.com:9501`, which a wildcard DNS name resolves); an address, which takes
 * no prefix, becomes `sandbox.localhost` (`127.0.0.1:9501` → `3000-sandbox.localhost:9501`),
 * which browsers resolve to loopback themselves. `--preview-host` replaces the host.
 */
export function previewLink({ port, code, requestHost, configuredHost, secure }: PreviewLinkOptions): string {
  const host = `${port}-${configuredHost ?? nameOf(requestHost)}`;
  return `${secure ? 'https' : 'http'}://${host}/?${PREVIEW_CODE_PARAM}=${encodeURIComponent(code)}`;
}

function nameOf(requestHost: string | undefined): string {
  if (requestHost === undefined || requestHost === '') return LOOPBACK_NAME;
  const bracket = requestHost.lastIndexOf(']');
  const colon = requestHost.lastIndexOf(':');
  const portAt = colon > bracket ? colon : requestHost.length;
  const name = requestHost.slice(0, portAt).toLowerCase();
  const portSuffix = requestHost.slice(portAt);
  const isAddress = name.startsWith('[') || isIP(name) !== 0 || name === 'localhost';
  return `${isAddress ? LOOPBACK_NAME : name}${portSuffix}`;
}
