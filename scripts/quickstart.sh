#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a built and running
# envd environment: sets the machine up (scripts/setup.sh), points the managed
# builder at the local docker.io mirror, builds examples/python-basic and runs
# Python inside the image.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
export PATH=$PWD/bin:$PATH

echo "== envd bootstrap (managed buildkitd, docker.io mirror on 127.0.0.1:5000)"
envd bootstrap --registry-mirror http://127.0.0.1:5000

echo "== envd build -p examples/python-basic"
envd build -p examples/python-basic

echo "== docker run python-basic:dev"
/usr/bin/docker run --rm python-basic:dev python -c 'import six, tomli, sys; print("python", sys.version.split()[0], "with six", six.__version__, "and tomli")'
