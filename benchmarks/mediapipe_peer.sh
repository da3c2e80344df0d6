#!/bin/sh
# Run benchmarks/mediapipe_peer.py in its own environment, .venv-mediapipe/ at the repository root,
# made from benchmarks/requirements-mediapipe.txt when missing or older than that file. mediapipe pins
# protobuf<5 and numpy<2, which TensorFlow's .venv cannot share. Arguments go to the script (--help).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-mediapipe"
requirements="$root/benchmarks/requirements-mediapipe.txt"
stamp="$venv/.installed-requirements"
if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    echo "mediapipe_peer: installing $requirements into $venv" >&2
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
fi
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" -m benchmarks.mediapipe_peer "$@"
