#!/bin/sh
# The container's entrypoint: reads the daemon's token from a file into SANDBOXD_TOKEN, so that
# it never appears on a command line (which every process can read in /proc/*/cmdline), then
# runs sandboxd with the arguments given. The daemon keeps SANDBOXD_TOKEN from its processes.
set -eu

if [ -z "${SANDBOXD_TOKEN:-}" ] && [ -n "${SANDBOXD_TOKEN_FILE:-}" ]; then
  if [ -f "$SANDBOXD_TOKEN_FILE" ]; then
    if ! SANDBOXD_TOKEN=$(cat "$SANDBOXD_TOKEN_FILE"); then
      echo "sandboxd-entrypoint: cannot read the token file $SANDBOXD_TOKEN_FILE" >&2
      exit 1
    fi
    export SANDBOXD_TOKEN
  elif [ "${1:-}" = serve ]; then
    echo "sandboxd-entrypoint: no token file at $SANDBOXD_TOKEN_FILE (mount a secret there, or set SANDBOXD_TOKEN_FILE)" >&2
  fi
fi

exec sandboxd "$@"
