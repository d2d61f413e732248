# Sourced by the lent-machine scripts (gpu_session.sh, device_session.sh): sets PY and NP (the neuropath
# command), 1-thread runs and unbuffered logs. On the lent machine (Python 3.12, its own torch) the packages
# it lacks are installed from the wheels carried in .whl/ (device README); with PY set (locally:
# PY=.venv/bin/python) nothing is installed. NP_SRC (default ./src) picks the neuropath code the runs use: a
# sweep begun on a snapshot of the code outside the repository finishes on that same code (copy it into an
# ignored folder, e.g. .dev/snap, and carry it). `machine_info` prints GPU, torch and CPU for the record.
if [ -z "${PY:-}" ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${NP_SRC:-$PWD/src}
  PY=python3
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
NP="$PY -m neuropath.cli"

machine_info() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)"
  lscpu | grep -E "Model name|^CPU\(s\)"
}
