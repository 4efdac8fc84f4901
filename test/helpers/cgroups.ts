/**
 * A command line to start the daemon under (startDaemon's `wrap`) that shows it the cgroup v2
 * hierarchy alone at /sys/fs/cgroup, as most hosts have it: mounted over the hybrid layout in a
 * mount namespace of the daemon's own, which hides the v1 hierarchies. Needs root.
 */
export const CGROUP2_ALONE = [
  'unshare',
  '--mount',
  '--propagation',
  'private',
  'sh',
  '-c',
  'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"',
  'sh',
];
