export { readSse, type SseMessage } from '../../src/client/sse.ts';
