# Sourced by the benchmark scripts: makes .venv-mediapipe/ at the repository root from
# benchmarks/requirements-mediapipe.txt when missing or older than that file (mediapipe pins protobuf<5
# and numpy<2, which TensorFlow's .venv cannot share). Needs $root (the repository) and $name (the caller).
venv="$root/.venv-mediapipe"
requirements="$root/benchmarks/requirements-mediapipe.txt"
stamp="$venv/.installed-requirements"
if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    echo "$name: installing $requirements into $venv" >&2
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
fi
