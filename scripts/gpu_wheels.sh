#!/usr/bin/env bash
# The wheels the lent GPU machine lacks, downloaded here into .whl/ (git-ignored) for benchmarks/gpu_check.sh to
# install offline there. That machine has Python 3.12, torch (CUDA), transformers, accelerate, peft, numpy, scipy,
# matplotlib, rich, typer, pyyaml and safetensors, and no network; goodhart itself runs from the tree (src/ on
# PYTHONPATH), so only what it imports and the image lacks travels: pydantic (+ its core and helpers), VADER,
# and gensim (the lab world's text lives in its wheel; never imported). trl, datasets, vLLM and Ray are imported
# only by paths the check does not take.
#
#     bash scripts/gpu_wheels.sh            # here, with the package registry; prints the folder's size
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
    pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
    vaderSentiment==3.3.2 gensim==4.4.0
du -sh .whl
