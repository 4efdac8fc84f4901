/**
 * Refreshes a screen while it is shown: at once, then every `intervalMs()` while the tab is
 * visible, and at once again when the tab comes back into view.
 */
export function pollWhileShown(refresh: () => Promise<void>, intervalMs: () => number) {
  let timer: number | undefined;
  let shown = false;
  const onVisibility = () => {
    if (document.visibilityState === 'visible') void refresh();
  };
  return {
    show() {
      void refresh();
      window.clearTimeout(timer);
      shown = true;
      const tick = async () => {
        if (document.visibilityState === 'visible') await refresh();
        if (shown) timer = window.setTimeout(tick, intervalMs());
      };
      timer = window.setTimeout(tick, intervalMs());
      document.addEventListener('visibilitychange', onVisibility);
    },
    hide() {
      shown = false;
      window.clearTimeout(timer);
      timer = undefined;
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
