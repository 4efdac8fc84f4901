/** One screen of the console: built once, shown and hidden as the address changes. */
export interface Screen {
  root: HTMLElement;
  /** `param` is what follows the screen's name in the address: a pid, a path. */
  show(param: string): void;
  hide(): void;
}
