/**
 * Decides once per test run whether the WebGPU suites run: probes for an adapter in a child
 * process (so a crashing or hanging driver cannot take the runner down) and hands the answer to
 * the workers through `provide`/`inject` (see test/helpers/backends.ts). Set NBI_TEST_WEBGPU=0 to
 * skip WebGPU on purpose.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    webgpuAvailable: boolean;
  }
}

export default function setup(project: TestProject): void {
  if (!process.env.XDG_RUNTIME_DIR) {
    process.env.XDG_RUNTIME_DIR = "/tmp/xdg-runtime";
    mkdirSync(process.env.XDG_RUNTIME_DIR, { recursive: true });
  }
  let ok = false;
  let reason: string;
  if (process.env.NBI_TEST_WEBGPU === "0") {
    reason = "NBI_TEST_WEBGPU=0";
  } else {
    const probe = fileURLToPath(new URL("./probe.ts", import.meta.url));
    const run = spawnSync(process.execPath, ["--import", "tsx", probe], {
      encoding: "utf8",
      timeout: 30_000,
    });
    try {
      const line = run.stdout.trim().split("\n").pop() ?? "";
      ({ ok, reason } = JSON.parse(line) as { ok: boolean; reason: string });
    } catch {
      reason = `the adapter probe failed (${run.error?.message ?? `exit ${run.status}`})`;
    }
  }
  if (!ok) {
    console.log(
      `WebGPU suites skipped: ${reason.replace(/\s+/g, " ")} ` +
        "(to enable them install Mesa lavapipe as .ci/run does, or run on a machine with a GPU)",
    );
  }
  project.provide("webgpuAvailable", ok);
}
