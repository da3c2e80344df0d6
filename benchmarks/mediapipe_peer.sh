#!/bin/sh
# Run benchmarks/mediapipe_peer.py in its own environment, .venv-mediapipe/ at the repository root
# (benchmarks/mediapipe_env.sh makes it). Arguments go to the script (--help).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
name=mediapipe_peer
. "$root/benchmarks/mediapipe_env.sh"
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$venv/bin/python" -m benchmarks.mediapipe_peer "$@"
