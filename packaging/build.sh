#!/usr/bin/env bash
# Build Hearth's Linux installers: dist/hearth-<version>-linux-x86_64.tar.gz and a .deb.
#
#   bash packaging/build.sh [--dist DIR] [--no-deb]
#
# Checks the Debian packages the bundle copies libraries from (packaging/system-deps.sh), sets
# up .venv as bootstrap.sh does (the portable llama.cpp wheel, the bundled model) plus
# PyInstaller, then runs packaging/bundle.py. tests/project/test_bundle.py unpacks and runs the result.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/system-deps.sh"
exec bash "$here/bootstrap.sh" bundle "$@"
