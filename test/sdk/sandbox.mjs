// What every tensorlake SDK scenario starts with: a sandbox handle on the daemon the test gives
// (SANDBOXD_URL, SANDBOXD_TOKEN), and a way to record how a call failed.
import { Sandbox } from 'tensorlake';

export function connectSandbox(sandboxId) {
  return Sandbox.connect({
    sandboxId,
    proxyUrl: process.env.SANDBOXD_URL,
    apiKey: process.env.SANDBOXD_TOKEN,
  });
}

/** null when the call succeeds; the error's name and HTTP status when it fails. */
export async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (error) {
    return { name: error.name, statusCode: error.statusCode ?? null };
  }
}
