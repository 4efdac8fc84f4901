import { sendJson } from '../../http/json.ts';
import type { RouteContext } from '../../http/router.ts';
import { parsePort } from '../../ports/port-number.ts';
import type { PreviewAccess } from '../../ports/preview-access.ts';
import { previewLink } from '../../ports/preview-link.ts';
import { ApiError } from './errors.ts';
import type { PreviewLink } from './responses.ts';

export interface PreviewLinkOptions {
  access: PreviewAccess;
  /** `--preview-host`: the host links end with, instead of the one the request came in by. */
  host?: string;
}

/** `POST /api/v1/ports/{port}/preview`: a one-time link that opens the port's preview in a browser. */
export function previewLinkRoute({ access, host }: PreviewLinkOptions) {
  return ({ req, res, params }: RouteContext) => {
    const port = parsePort(params.port);
    if (port === undefined) throw new ApiError(400, 'INVALID_REQUEST', 'port: an integer from 1 to 65535');
    req.resume();
    const { code, expiresAt } = access.createCode(port);
    const url = previewLink({
      port,
      code,
      requestHost: req.headers.host,
      configuredHost: host,
      secure: req.headers['x-forwarded-proto'] === 'https' || 'encrypted' in req.socket,
    });
    // The link opens the preview: like a token, it must not be kept by a cache on the way.
    res.setHeader('cache-control', 'no-store');
    sendJson(res, 200, { url, port, expires_at: expiresAt } satisfies PreviewLink);
  };
}
