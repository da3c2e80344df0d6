#!/bin/sh
# benchmarks/speed.py: lipseg_tf's predict pipeline and MediaPipe FaceMesh on the same scenes, in one run.
# MediaPipe runs in its own environment, .venv-mediapipe/ at the repository root, made from
# benchmarks/requirements-mediapipe.txt when missing or older than that file (mediapipe pins protobuf<5
# and numpy<2, which TensorFlow's .venv cannot share). Arguments go to the script (--help).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-mediapipe"
requirements="$root/benchmarks/requirements-mediapipe.txt"
stamp="$venv/.installed-requirements"
case " $* " in *" --no-mediapipe "*) ;; *)
    if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
        echo "speed: installing $requirements into $venv" >&2
        [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
        touch "$stamp"
    fi ;;
esac
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$root/.venv/bin/python" -m benchmarks.speed "$@"
