/**
 * The package's folder, where package.json is: the parent of src/ when run from source, and of
 * dist/ when built, since the build puts every bundled file directly in dist/. Only a module
 * directly in src/ can say so by its own URL.
 */
export const PACKAGE_ROOT = new URL('../', import.meta.url);
