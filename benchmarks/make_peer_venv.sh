#!/usr/bin/env bash
# Create a peer library's own virtual environment under benchmarks/.venv-<name> (git-ignored).
# Its pins differ from modscope's, so it lives apart.
# Usage: benchmarks/make_peer_venv.sh saelens   (torch==2.13.0 first, then sae-lens==6.54.*; called as a subprocess)
#        benchmarks/make_peer_venv.sh phate     (phate and its own pins only; no second torch: a .pth file appends
#                                                the project's .venv site-packages and src/ after phate's own, so
#                                                phate's pins win and torch, transformers, modscope come from .venv)
# After `phate`: benchmarks/.venv-phate/bin/modscope does not exist; run
#   benchmarks/.venv-phate/bin/python -m modscope.cli cka --embed pca,phate --out DIR
#   benchmarks/.venv-phate/bin/python -m pytest tests/geometry/test_phate.py
set -euo pipefail
name="${1:-}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
case "$name" in
  saelens) packages=("sae-lens==6.54.*") ;;
  phate) packages=("phate>=1.0") ;;
  *) echo "make_peer_venv.sh: error: unknown peer '$name'; use: saelens, phate" >&2; exit 2 ;;
esac
venv="$here/.venv-$name"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if [ "$name" = phate ]; then
  [ -x "$repo/.venv/bin/python" ] || { echo "make_peer_venv.sh: error: $repo/.venv is missing; make it first" >&2; exit 2; }
  "$venv/bin/python" -m pip install -q "${packages[@]}"
  own="$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
  main="$("$repo/.venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
  # a .pth line is appended to sys.path after the venv's own site-packages: phate's numpy/scipy/sklearn come first
  printf '%s\n%s\n' "$main" "$repo/src" > "$own/zz_modscope_main.pth"
  "$venv/bin/python" -c "import phate, torch, modscope; print('phate', phate.__version__, 'torch', torch.__version__, 'modscope', modscope.__file__)"
  exit 0
fi
# CPU torch pinned first, so that the peer's resolver keeps it instead of pulling another build
"$venv/bin/python" -m pip install -q "torch==2.13.0"
"$venv/bin/python" -m pip install -q "${packages[@]}"
"$venv/bin/python" -c "import sae_lens, torch; print('sae_lens', sae_lens.__version__, 'torch', torch.__version__)"
