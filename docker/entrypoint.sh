#!/bin/sh
# The container's entrypoint. `serve` with no token of its own reads it from the secret file
# (SANDBOXD_TOKEN_FILE): the daemon is given the file's path, so the token is on no command line
# and in no environment. Anything else runs as it is: `docker run IMAGE exec -- …` is the client.
set -eu

if [ "${1:-}" = serve ] && [ -z "${SANDBOXD_TOKEN:-}" ] && [ -n "${SANDBOXD_TOKEN_FILE:-}" ]; then
  if [ -e "$SANDBOXD_TOKEN_FILE" ]; then
    shift
    set -- serve --token-file "$SANDBOXD_TOKEN_FILE" "$@"
  else
    echo "sandboxd-entrypoint: no token file at $SANDBOXD_TOKEN_FILE (mount a secret there, or set SANDBOXD_TOKEN_FILE or SANDBOXD_TOKEN)" >&2
  fi
fi

exec sandboxd "$@"
