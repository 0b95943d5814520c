/// <reference types="@webgpu/types" preserve="true" />
/**
 * WebGPU device acquisition. Browsers (and Deno) have `navigator.gpu`; in Node the npm package
 * `webgpu` (Dawn's Node bindings) provides the same API. When no adapter comes back the error
 * says why (no Vulkan driver, Mesa too old for Dawn, package missing) and how to fix it.
 */
import { NbiError } from "../../errors.js";

export interface GpuDeviceInfo {
  /** Where the GPU API came from. */
  api: "navigator.gpu" | "dawn (npm webgpu)";
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (lavapipe/llvmpipe, SwiftShader, WARP, fallback adapters). */
  software: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  info: GpuDeviceInfo;
  /**
   * The GPU object and adapter, held for the device's lifetime: Dawn's Node bindings destroy the
   * instance when its GPU object is garbage collected, and a later event poll then crashes.
   */
  keepAlive: [GPU, GPUAdapter];
}

let pending: Promise<GpuContext> | null = null;

/** Acquires (once) the WebGPU device; later calls return the same one. */
export function acquireDevice(): Promise<GpuContext> {
  if (!pending) {
    pending = acquire();
    // A failed attempt is not cached: the user may install a driver and try again.
    pending.catch(() => {
      pending = null;
    });
  }
  return pending;
}

const LINUX_FIX =
  "On Debian 12 install Mesa's CPU Vulkan driver (lavapipe) from bookworm-backports: " +
  '`echo "deb http://deb.debian.org/debian bookworm-backports main" > ' +
  "/etc/apt/sources.list.d/backports.list; apt-get update; apt-get install -y -t " +
  "bookworm-backports mesa-vulkan-drivers` (Dawn needs Mesa 24 or newer), and set " +
  'XDG_RUNTIME_DIR to a writable folder. Or stay on the CPU backend: np.useBackend("cpu").';

async function acquire(): Promise<GpuContext> {
  let gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let api: GpuDeviceInfo["api"] = "navigator.gpu";
  if (!gpu) {
    api = "dawn (npm webgpu)";
    let mod: { create(options: string[]): GPU };
    try {
      // A variable specifier keeps bundlers for the browser from pulling in the Node addon.
      const name = "webgpu";
      mod = (await import(name)) as { create(options: string[]): GPU };
    } catch (e) {
      throw new NbiError(
        'useBackend: backend "webgpu" expected a WebGPU implementation, got none: there is no ' +
          "navigator.gpu and the npm package `webgpu` (Dawn) could not be loaded " +
          `(${(e as Error).message}). Install it with \`npm install webgpu\`, or use np.useBackend("cpu").`,
      );
    }
    gpu = mod.create([]);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new NbiError(noAdapterMessage(api));
  // Ask for the adapter's own compute limits: the defaults (e.g. 128 invocations per workgroup on
  // compatibility-mode adapters) would reject kernels that the adapter can run.
  const requiredLimits: Record<string, number> = {};
  for (const name of COMPUTE_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === "number") requiredLimits[name] = v;
  }
  const device = await adapter.requestDevice({ requiredLimits });
  watchErrors(device);
  const a = adapter.info;
  const text = `${a.vendor} ${a.architecture} ${a.device} ${a.description}`;
  // An adapter that tells nothing about itself (compatibility-mode adapters without developer
  // features) counts as software: "auto" must not take an unknown adapter for a hardware GPU.
  const software =
    (a as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader|software|warp|microsoft basic render/i.test(text) ||
    text.trim() === "";
  return {
    device,
    keepAlive: [gpu, adapter],
    info: {
      api,
      vendor: a.vendor,
      architecture: a.architecture,
      device: a.device,
      description: a.description,
      software,
    },
  };
}

const COMPUTE_LIMITS = [
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupStorageSize",
  "maxStorageBuffersPerShaderStage",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
];

let pendingError: string | undefined;

/**
 * GPU validation errors (a rejected pipeline, an out-of-memory buffer) are reported
 * asynchronously, never thrown; results computed after one are garbage. Keep the first one so
 * the next readback throws instead of returning wrong numbers.
 */
function watchErrors(device: GPUDevice): void {
  const record = (e: Event) => {
    const err = (e as GPUUncapturedErrorEvent).error;
    pendingError ??= err?.message ?? String(err);
  };
  if (typeof device.addEventListener === "function") {
    device.addEventListener("uncapturederror", record);
  } else {
    (device as { onuncapturederror: ((e: Event) => void) | null }).onuncapturederror = record;
  }
}

/** The first GPU error since the last call, if any (and forgets it). */
export function takeDeviceError(): string | undefined {
  const e = pendingError;
  pendingError = undefined;
  return e;
}

/** Why no adapter came back, as far as can be told from the outside, and the fix. */
function noAdapterMessage(api: GpuDeviceInfo["api"]): string {
  const head = `useBackend: backend "webgpu" expected a GPU adapter, got none from ${api}. `;
  if (api === "navigator.gpu") {
    return (
      head +
      "The browser has WebGPU but offered no adapter (blocklisted GPU or disabled WebGPU); in " +
      'headless Chromium pass --enable-unsafe-webgpu. Or use np.useBackend("cpu").'
    );
  }
  const proc = (globalThis as { process?: { platform?: string } }).process;
  if (proc?.platform !== "linux") {
    return `${head}Check that the GPU driver is installed and up to date, or use np.useBackend("cpu").`;
  }
  const reason = linuxDiagnosis();
  return `${head}${reason} ${LINUX_FIX}`;
}

function linuxDiagnosis(): string {
  // Synchronous probes through `process.getBuiltinModule` (Node >= 20.16) keep this module
  // free of static Node imports, so it still bundles for browsers.
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } })
    .process?.getBuiltinModule;
  if (!getBuiltin) return "No Vulkan adapter was found.";
  const fs = getBuiltin("node:fs") as typeof import("node:fs");
  const cp = getBuiltin("node:child_process") as typeof import("node:child_process");
  const dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
  const icds = dirs.flatMap((d) => {
    try {
      return fs.readdirSync(d);
    } catch {
      return [];
    }
  });
  if (icds.length === 0)
    return "No Vulkan driver is installed (no ICD files in /usr/share/vulkan/icd.d).";
  let mesa = "";
  try {
    mesa = cp
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query format, not JS
      .execFileSync("dpkg-query", ["-W", "-f=${Version}", "mesa-vulkan-drivers"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      })
      .trim();
  } catch {
    // not a Debian system, or the package is absent
  }
  const major = Number.parseInt(mesa, 10);
  if (mesa && major < 24) {
    return `Vulkan drivers are installed, but Mesa ${mesa} is too old: Dawn refuses Mesa before 24.`;
  }
  return (
    `Vulkan drivers are installed (${icds.join(", ")}${mesa ? `; Mesa ${mesa}` : ""}) but none ` +
    "gave an adapter (no GPU device node accessible, or the driver failed to load)."
  );
}
