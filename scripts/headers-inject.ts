// For esbuild's `inject` (scripts/build.ts): every bare `Headers` in the bundled code is this.
export { PlainHeaders as Headers } from '../src/http/plain-headers.ts';
