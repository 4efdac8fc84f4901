/**
 * `Uint8Array.prototype.toBase64` (TC39's base64 methods) where this Node does not have it yet,
 * on Node's native base64. @bufbuild/protobuf uses it, if present when it loads, to write bytes
 * fields in JSON; without it, it builds the string a character at a time, which made Connect
 * JSON streams of output crawl. Import this module before anything that imports protobuf.
 */
interface ToBase64Options {
  alphabet?: 'base64' | 'base64url';
  omitPadding?: boolean;
}

declare global {
  interface Uint8Array {
    toBase64?(options?: ToBase64Options): string;
  }
}

if (typeof Uint8Array.prototype.toBase64 !== 'function') {
  Object.defineProperty(Uint8Array.prototype, 'toBase64', {
    configurable: true,
    writable: true,
    value: function toBase64(this: Uint8Array, options: ToBase64Options = {}): string {
      const url = options.alphabet === 'base64url';
      const text = Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString(
        url ? 'base64url' : 'base64',
      );
      // Node writes base64url without padding and base64 with it.
      if (url === !!options.omitPadding) return text;
      return url ? text.padEnd(Math.ceil(text.length / 4) * 4, '=') : text.replace(/=+$/, '');
    },
  });
}

export {};
