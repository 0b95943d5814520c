#!/usr/bin/env bash
# Builds .device/ (git-ignored), what a GPU machine without Node needs to run the WebGPU checks
# and benchmarks: this machine's node and Dawn's dawn.node (xz-compressed), the checks and the
# benchmarks bundled into single files, and the Vulkan loader and libglvnd packages (the device
# tool's README: its machines may lack libvulkan, and NVIDIA's Vulkan driver needs libGLX). About
# 35 MB. Then, with the device tool:
#   run(command: "bash scripts/device/run.sh", carry: [".device"], timeout_s: 540)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/kit/node_modules/webgpu/dist/linux-x64 .device/gl
xz -T2 -6 -c "$(command -v node)" > .device/node.xz
cp node_modules/webgpu/package.json node_modules/webgpu/index.js .device/kit/node_modules/webgpu/
xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > .device/dawn.node.xz
# Plots' libraries load on first use only; the checks and benchmarks draw nothing.
for entry in scripts/device/check.ts bench/run.ts bench/maf.ts bench/featurizers.ts; do
  npx esbuild "$entry" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --external:webgpu --external:@resvg/resvg-js --external:vega --external:vega-lite \
    --outfile=".device/kit/$(basename "$entry" .ts).mjs"
done
# The PyTorch side of the featurizer benchmark, run by featurizers.mjs from beside it.
cp bench/featurizers_torch.py .device/kit/
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
mkdir -p /tmp/amd64-lists/partial
# shellcheck disable=SC2086
apt-get $o -qq update && (cd .device/gl && apt-get $o -qq download libvulkan1 libegl1 libglvnd0 \
  libopengl0 libgl1 libglx0 libgles2)
du -sh .device
