import { filesScreen } from './files.ts';
import { logsScreen } from './logs.ts';
import { portsScreen } from './ports.ts';
import { processesScreen } from './processes.ts';
import type { Screen } from './screen.ts';

// The terminal brings xterm with it, the bulk of the console's bytes: it loads on first use.
const lazyTerminal = (): Screen => {
  let loaded: Promise<Screen> | undefined;
  const root = document.createElement('section');
  root.className = 'screen-holder';
  return {
    root,
    show(param) {
      loaded ??= import('./terminal.ts').then(({ terminalScreen }) => {
        const screen = terminalScreen();
        root.append(screen.root);
        return screen;
      });
      void loaded.then((screen) => screen.show(param));
    },
    hide() {
      void loaded?.then((screen) => screen.hide());
    },
  };
};

const screens: Record<string, Screen> = {
  processes: processesScreen(),
  logs: logsScreen(),
  terminal: lazyTerminal(),
  files: filesScreen(),
  ports: portsScreen(),
};

let current: Screen | undefined;

/** `#/name/param…`; the parameter (a pid, a path) may hold slashes. */
function route(): void {
  const [, name = 'processes', ...rest] = window.location.hash.split('/');
  const screen = screens[name] ?? (screens.processes as Screen);
  const param = decodeURIComponent(rest.join('/'));
  if (current !== screen) current?.hide();
  for (const [key, each] of Object.entries(screens)) {
    each.root.hidden = each !== screen;
    document.querySelector(`nav a[data-screen="${key}"]`)?.classList.toggle('active', each === screen);
  }
  current = screen;
  screen.show(param);
}

const main = document.getElementById('screen') as HTMLElement;
for (const screen of Object.values(screens)) main.append(screen.root);
window.addEventListener('hashchange', route);
route();
