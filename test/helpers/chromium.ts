/**
 * Where the browser tests find Chromium (Debian's, as .ci/run installs it, or NBI_CHROMIUM) and
 * how they launch it: as DESIGN.md's WebGPU section says, enough for an adapter, and no network
 * chatter.
 */
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.NBI_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

export const haveChromium = existsSync(CHROMIUM);
