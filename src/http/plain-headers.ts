/**
 * The Fetch standard's `Headers`, on its own. Node's global `Headers` is undici's: the first use
 * loads all of undici (fetch, its streams, its WebSocket), which took 80 ms on Node 20 and 150 ms
 * on Node 24 and kept 12 to 17 MiB more resident for good. Connect-RPC needs nothing of undici
 * but this class, making a few of them per call; so the build puts this one in place of the
 * global in the bundled code (scripts/build.ts, `inject`). test/plain-headers.test.ts holds it
 * to the behaviour of Node's own.
 */

type Init = Headers | readonly (readonly [string, string])[] | Record<string, string> | PlainHeaders;

// RFC 9110's token for names; a value may hold neither NUL nor a line break.
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;
// The Fetch standard's "HTTP whitespace", trimmed from both ends of a value.
const EDGES = /^[\t\n\r ]+|[\t\n\r ]+$/g;

export class PlainHeaders implements Headers {
  /** Lower-case name → its values in the order given (each set-cookie apart; others are joined). */
  private readonly byName = new Map<string, string[]>();

  constructor(init?: Init) {
    if (init === undefined || init === null) return;
    if (typeof init !== 'object') throw new TypeError('Headers: init must be an object');
    if (Symbol.iterator in init) {
      for (const pair of init as Iterable<readonly string[]>) {
        if (pair.length !== 2) throw new TypeError('Headers: each pair must be [name, value]');
        this.append(pair[0] as string, pair[1] as string);
      }
    } else {
      for (const [name, value] of Object.entries(init)) this.append(name, value);
    }
  }

  append(name: string, value: string): void {
    const key = checkedName(name);
    const normalized = checkedValue(value);
    const list = this.byName.get(key);
    if (list) list.push(normalized);
    else this.byName.set(key, [normalized]);
  }

  delete(name: string): void {
    this.byName.delete(checkedName(name));
  }

  get(name: string): string | null {
    return this.byName.get(checkedName(name))?.join(', ') ?? null;
  }

  getSetCookie(): string[] {
    return [...(this.byName.get('set-cookie') ?? [])];
  }

  has(name: string): boolean {
    return this.byName.has(checkedName(name));
  }

  set(name: string, value: string): void {
    this.byName.set(checkedName(name), [checkedValue(value)]);
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  /** Sorted by name, as the standard has it: set-cookie once per cookie, any other name once. */
  *entries(): HeadersIterator<[string, string]> {
    for (const key of [...this.byName.keys()].sort()) {
      const list = this.byName.get(key) as string[];
      if (key === 'set-cookie') for (const cookie of list) yield [key, cookie];
      else yield [key, list.join(', ')];
    }
  }

  *keys(): HeadersIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): HeadersIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'Headers';
  }
}

function checkedName(name: string): string {
  const text = String(name);
  if (!NAME.test(text)) throw new TypeError(`Headers: invalid header name '${text}'`);
  return text.toLowerCase();
}

function checkedValue(value: string): string {
  const text = String(value).replace(EDGES, '');
  if (BAD_VALUE.test(text)) throw new TypeError('Headers: invalid header value');
  return text;
}
