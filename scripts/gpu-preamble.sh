# Sourced by the scripts that run on the GPU machine (gpu-issue6.sh, gpu-determinism.sh, gpu-issue17.sh) after `cd`
# to the repo: $OUT exists (default: the first argument), the engine is importable, Python is unbuffered, and the
# card's name, driver and clocks are recorded in $OUT/card.txt before anything is measured.
OUT="${OUT:-$1}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/cuda${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$OUT/card.txt"
