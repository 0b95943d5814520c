#!/usr/bin/env bash
# Runs on the GPU machine (see pack.sh): unpacks node and dawn.node, installs the Vulkan loader
# and libglvnd when the machine lacks them, then the WebGPU checks and benchmarks, each under its
# own time limit so that one that hangs leaves the others their time (the device tool allows one
# short run). Output also goes to $OUT. `run.sh profile` records CPU profiles of the WebGPU runs instead.
set -uo pipefail
out="${OUT:-/tmp/device-out}"
mkdir -p "$out"
log="$out/device-webgpu.log"
# NVIDIA's Vulkan driver (libGLX_nvidia) needs libglvnd's libraries beside the loader.
if ! ldconfig -p | grep -q 'libvulkan.so.1' || ! ldconfig -p | grep -q 'libGLX.so.0'; then
  for f in .device/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES="$nvidia_icd"
kit=/tmp/nbi-kit
rm -rf "$kit" && cp -r .device/kit "$kit"
xz -dc .device/node.xz > "$kit/node" && chmod +x "$kit/node"
xz -dc .device/dawn.node.xz > "$kit/node_modules/webgpu/dist/linux-x64/dawn.node"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ "${1:-}" = profile ]; then
  # CPU profiles (node --cpu-prof) of where WebGPU's time goes on the host side: the ResNet-GRU
  # step at the sine's size and the array-core benchmark's WebGPU column; the .cpuprofile files
  # come back in $OUT (summarise them with any cpuprofile reader).
  cd "$kit"
  {
    timeout 200 ./node --cpu-prof --cpu-prof-dir "$out" --cpu-prof-name featurizers.cpuprofile \
      featurizers.mjs --webgpu-only --small-only
    timeout 120 ./node --cpu-prof --cpu-prof-dir "$out" --cpu-prof-name run.cpuprofile run.mjs
  } 2>&1 | tee "$out/device-profile.log"
  exit 0
fi
{
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv
  "$kit/node" --version
  cd "$kit"
  step() { local limit=$1; shift; echo "== $* (limit ${limit} s)"; timeout "$limit" "$@" || echo "== exit $?"; }
  step 90 ./node check.mjs
  # The ResNet-GRU on WebGPU, both sizes, beside PyTorch on the same GPU (plain python3 there
  # holds a CUDA PyTorch).
  step 150 env NBI_PYTHON=python3 ./node featurizers.mjs --webgpu-only
  step 60 ./node maf.mjs --backend webgpu --sizes small,big --steps 30
  step 60 ./node run.mjs
  step 60 ./node maf.mjs --backend cpu --sizes small,big --modes jit --steps 30
} 2>&1 | tee "$log"
