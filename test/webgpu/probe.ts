/** Run in a child process by global-setup.ts: prints {ok, reason} for the WebGPU adapter. */
import { acquireDevice } from "../../src/ops/webgpu/device.js";

try {
  const ctx = await acquireDevice();
  const i = ctx.info;
  console.log(JSON.stringify({ ok: true, reason: `${i.api}: ${i.description || i.device}` }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, reason: (e as Error).message }));
}
process.exit(0);
