// The terminal WebSocket's binary frames: the first byte says what the rest is.

/** Client to server: input bytes. */
export const INPUT = 0x00;
/** Client to server: cols, then rows, each a big-endian u16. */
export const RESIZE = 0x01;
/** Client to server: ready for output (the scrollback, then live output). */
export const READY = 0x02;
/** Server to client: output bytes. */
export const OUTPUT = 0x00;
/** Server to client: the exit code, a big-endian i32. */
export const EXIT = 0x03;
