#!/usr/bin/env bash
# Print the path of a Python interpreter of one of the given versions (e.g. 3.10, or 3.13 3.12 3.11),
# looking on PATH first and then under ~/.pyenv/versions. Fails with a clear message if none exists.
set -euo pipefail
for version in "$@"; do
  if command -v "python$version" >/dev/null 2>&1; then
    candidate=$(command -v "python$version")
    if "$candidate" -c "import sys; sys.exit(0 if '%d.%d' % sys.version_info[:2] == '$version' else 1)" 2>/dev/null; then
      echo "$candidate"; exit 0
    fi
  fi
  for candidate in "$HOME"/.pyenv/versions/"$version".*/bin/python"$version"; do
    if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
  done
done
echo "error: Python $* is required but was not found on PATH or under ~/.pyenv/versions/." >&2
echo "       Install it (for example: pyenv install $1) and run make again." >&2
exit 1
