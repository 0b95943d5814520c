/**
 * The sine simulator in a module Web Worker: the page's engine sends it batches of θ and it
 * answers with noiseless light curves (the unit noise is added at training time and is the
 * likelihood's, as in the Node demo). Bundled beside main.ts (see serve.ts).
 *
 * Each worker also counts what it simulated on a BroadcastChannel, so the page can show (and its
 * test check) that every simulation ran off the main thread.
 */
import { serveSimulator } from "../../src/browser.js";
import { sine } from "../../src/cli/demo-models/sine.js";

/** The channel main.ts listens on; each message: { simulated: how many this batch held }. */
const SIM_CHANNEL = "nbi-sine-simulations";

const channel = new BroadcastChannel(SIM_CHANNEL);
let pending = 0;

serveSimulator((theta) => {
  pending++;
  // One message per batch of tasks (a timer fires after the batch's microtasks).
  if (pending === 1) {
    setTimeout(() => {
      channel.postMessage({ simulated: pending });
      pending = 0;
    }, 0);
  }
  return sine(theta);
});
