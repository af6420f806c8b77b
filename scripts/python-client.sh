#!/usr/bin/env bash
# Installs OpenAI's official Python client into a virtual environment under .amp-cache, for
# the tests that drive AMP's /v1 endpoints with it, and signxml, with which the SAML tests
# sign assertions the way identity providers do (libxml2's canonicalization, not AMP's).
# Prints the environment's python. Idempotent: an environment that already imports the
# pinned versions is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AMP_PYTHON_VENV:-$root/.amp-cache/python}"
version="3.57.0"
signxml_version="5.2.0"
python="$venv/bin/python"
check="import openai, signxml, sys; from importlib.metadata import version as v; \
sys.exit(openai.__version__ != '$version' or v('signxml') != '$signxml_version')"
if ! "$python" -c "$check" >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --disable-pip-version-check "openai==$version" "signxml==$signxml_version" >&2
fi
echo "$python"
