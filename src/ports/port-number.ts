/** A TCP port as a client writes it: a decimal integer from 1 to 65535, nothing else. */
export function parsePort(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}
