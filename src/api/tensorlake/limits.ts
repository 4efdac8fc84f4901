export interface Limits {
  /** Largest JSON request body. */
  jsonBytes: number;
  /** Largest stdin chunk in one request. */
  stdinBytes: number;
}
