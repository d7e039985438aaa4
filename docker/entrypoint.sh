#!/bin/sh
# One image, several commands.
set -e
case "${1:-api}" in
  # dash's shift exits the shell when there is nothing to shift (no arguments: the default, api).
  api) [ $# -gt 0 ] && shift; exec node /app/dist/api/server.js "$@" ;;
  worker) shift; exec node /app/dist/worker/main.js "$@" ;;
  localize) shift; exec node /app/dist/cli/localize.js "$@" ;;
  *) exec "$@" ;;
esac
