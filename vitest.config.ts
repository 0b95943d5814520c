import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Probes once for a WebGPU adapter; the WebGPU suites run only where one exists.
    globalSetup: ["test/webgpu/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
