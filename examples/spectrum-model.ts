/** The emission-line spectrum problem (it lives with the CLI's demos, so `nbi demo` works installed). */
export * from "../src/cli/demo-models/spectrum.js";
