#!/bin/sh
# benchmarks/video_speed.py: lipseg_tf's video path and MediaPipe FaceMesh in video mode on the same clip,
# in one run. MediaPipe runs in its own environment, .venv-mediapipe/ (benchmarks/mediapipe_env.sh makes it).
# Arguments go to the script (--help).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
name=video_speed
case " $* " in *" --no-mediapipe "*) ;; *) . "$root/benchmarks/mediapipe_env.sh" ;; esac
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$root/.venv/bin/python" -m benchmarks.video_speed "$@"
