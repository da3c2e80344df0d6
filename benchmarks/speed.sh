#!/bin/sh
# benchmarks/speed.py: lipseg_tf's predict pipeline and MediaPipe FaceMesh on the same scenes, in one run.
# MediaPipe runs in its own environment, .venv-mediapipe/ (benchmarks/mediapipe_env.sh makes it).
# Arguments go to the script (--help).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
name=speed
case " $* " in *" --no-mediapipe "*) ;; *) . "$root/benchmarks/mediapipe_env.sh" ;; esac
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$root/.venv/bin/python" -m benchmarks.speed "$@"
