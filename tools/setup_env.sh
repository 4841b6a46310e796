#!/usr/bin/env bash
# Create (or refresh) the isolated environment varedd_mm runs in.
#
#   bash tools/setup_env.sh            # CPU torch, venv in ./.venv
#   VAREDD_VENV=/path/env bash tools/setup_env.sh
#   VAREDD_TORCH="torch==2.4.1 --index-url https://download.pytorch.org/whl/cu121" \
#       bash tools/setup_env.sh       # CUDA users: any torch spec pip accepts
#
# Steps: venv -> torch -> build tools -> mmcv 2.1.0 built from source with its
# ops (pip caches the built wheel, so only the first build takes ~20 min on
# 2 cores) -> pinned OpenMMLab stack -> this package (editable) with tests.
# Idempotent: a stamp file records the hash of every input; when nothing
# changed a second run only checks the stamp and returns within seconds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VAREDD_VENV:-$here/.venv}"
torch_spec="${VAREDD_TORCH:-torch==2.13.0}"
py="${VAREDD_PYTHON:-python3}"
stamp="$venv/.varedd_stamp"

inputs_hash() {
  # Everything that decides the content of the environment.
  {
    echo "$torch_spec"
    cat "$here/requirements/build.txt" "$here/requirements/mminstall.txt" \
        "$here/requirements/runtime.txt" "$here/requirements/tests.txt" \
        "$here/setup.cfg" "$here/setup.py" "$0"
  } | sha256sum | cut -d' ' -f1
}

build_kernel() {
  # the one-pass rebuild kernel (varedd_mm/ops/native.py): built here so
  # that no forward waits for it; cached by torch, so a rebuild only happens
  # when its source changed. Without a compiler the torch-op path runs.
  echo "[setup_env] $("$venv/bin/python" -m varedd_mm.ops.native 2>&1 | tail -1)"
}

want="$(inputs_hash)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c "import varedd_mm, mmcv.ops, pkg_resources" \
      2>/dev/null; then
  echo "[setup_env] environment $venv is up to date"
  build_kernel
  exit 0
fi

log() { echo "[setup_env] $(date +%H:%M:%S) $*"; }
# pip's notes about this machine's local index folders are noise here
quiet() { grep -v "^WARNING: Location .* is ignored" || true; }
t0=$(date +%s)

if [ ! -x "$venv/bin/python" ]; then
  log "creating venv $venv"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
export PIP_NO_INPUT=1

log "installing $torch_spec"
# shellcheck disable=SC2086
"${pip[@]}" install -q $torch_spec 2>&1 | quiet

# mmcv 2.1.0 builds with setup.py's pkg_resources: setuptools<70. torch's
# metadata asks for a newer setuptools, which pip reports as a conflict; it
# is only needed to build torch extensions, not at run time.
log "installing build tools (setuptools<70 for mmcv's setup.py)"
"${pip[@]}" install -q -r "$here/requirements/build.txt" 2>&1 \
  | grep -v "dependency conflicts\|requires setuptools\|resolver does not" \
  | quiet

if ! "$venv/bin/python" -c "import mmcv, mmcv.ops" 2>/dev/null; then
  log "building mmcv with ops from source (first time ~20 min on 2 cores; cached after)"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${pip[@]}" install -q --no-build-isolation \
    -r "$here/requirements/mminstall.txt" 2>&1 | quiet
fi

log "installing the OpenMMLab stack and varedd_mm (editable)"
"${pip[@]}" install -q -r "$here/requirements/runtime.txt" \
  -r "$here/requirements/tests.txt" 2>&1 | quiet
"${pip[@]}" install -q --no-build-isolation --no-deps -e "$here"

"$venv/bin/python" -c "import varedd_mm, mmcv.ops, mmaction, mmdet, mmseg; \
print('[setup_env] torch', __import__('torch').__version__, \
'mmcv', mmcv.__version__, 'mmaction', mmaction.__version__, \
'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
build_kernel
echo "$want" > "$stamp"
log "done in $(( $(date +%s) - t0 )) s"
