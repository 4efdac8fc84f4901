import { endianness } from 'node:os';

/** A listening TCP socket as /proc/net/tcp or /proc/net/tcp6 shows it. */
export interface ListeningSocket {
  /** As people write it: `127.0.0.1`, `0.0.0.0`, `::`, `::1`, `::ffff:10.0.0.1`. */
  address: string;
  port: number;
  /** The socket's inode: a descriptor of its holder reads `socket:[inode]`. */
  inode: string;
}

// The `st` column: the kernel's TCP states in hex; 0A is TCP_LISTEN.
const LISTEN = '0A';

/**
 * The LISTEN sockets of a /proc/net/tcp or /proc/net/tcp6 table. Each line is
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`, the local
 * address as `ADDRESS:PORT` in hex; lines that do not read so (the header) are skipped.
 */
export function parseListeningSockets(
  table: string,
  littleEndian = endianness() === 'LE',
): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [, local, , state] = fields;
    const inode = fields[9];
    if (state !== LISTEN || local === undefined || inode === undefined || !/^\d+$/.test(inode)) continue;
    const [hexAddress, hexPort] = local.split(':');
    if (hexAddress === undefined || hexPort === undefined || !/^[0-9A-Fa-f]{4}$/.test(hexPort)) continue;
    const bytes = addressBytes(hexAddress, littleEndian);
    if (bytes === undefined) continue;
    sockets.push({ address: formatAddress(bytes), port: Number.parseInt(hexPort, 16), inode });
  }
  return sockets;
}

/**
 * The address's bytes in network order. The kernel prints an IPv4 address as one 32-bit word
 * and an IPv6 address as four, each word in the machine's byte order: on a little-endian
 * machine 127.0.0.1 reads `0100007F` and ::1 reads `00000000000000000000000001000000`.
 */
export function addressBytes(hex: string, littleEndian: boolean): Uint8Array | undefined {
  if ((hex.length !== 8 && hex.length !== 32) || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const bytes = new Uint8Array(hex.length / 2);
  for (let word = 0; word < bytes.length; word += 4) {
    for (let i = 0; i < 4; i++) {
      const at = littleEndian ? word + 3 - i : word + i;
      bytes[at] = Number.parseInt(hex.slice((word + i) * 2, (word + i) * 2 + 2), 16);
    }
  }
  return bytes;
}

/** 4 bytes as dotted decimal, 16 as RFC 5952 text (lowercase, the longest run of zeros as `::`). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // An IPv4-mapped address (::ffff:a.b.c.d) keeps its IPv4 part dotted.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${[...bytes.subarray(12)].join('.')}`;
  }
  // The first longest run of two or more zero groups is written as `::`.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
