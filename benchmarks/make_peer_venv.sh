#!/usr/bin/env bash
# Create a peer library's own virtual environment under benchmarks/.venv-<name> (git-ignored).
# Its pins differ from modscope's, so it lives apart and the benchmarks/tests call it as a subprocess.
# Usage: benchmarks/make_peer_venv.sh saelens        (torch==2.13.0 first, then sae-lens==6.54.*)
set -euo pipefail
name="${1:-}"
here="$(cd "$(dirname "$0")" && pwd)"
case "$name" in
  saelens) packages=("sae-lens==6.54.*") ;;
  *) echo "make_peer_venv.sh: error: unknown peer '$name'; use: saelens" >&2; exit 2 ;;
esac
venv="$here/.venv-$name"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# CPU torch pinned first, so that the peer's resolver keeps it instead of pulling another build
"$venv/bin/python" -m pip install -q "torch==2.13.0"
"$venv/bin/python" -m pip install -q "${packages[@]}"
"$venv/bin/python" -c "import sae_lens, torch; print('sae_lens', sae_lens.__version__, 'torch', torch.__version__)"
