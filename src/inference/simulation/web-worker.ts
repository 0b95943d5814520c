/**
 * Simulators in Web Workers: the browser's counterpart of the worker-thread pool. The page gives
 * the URL of a module worker; each copy receives batches of θ by `postMessage` and answers with
 * the outputs. A worker module serves its simulator with `serveSimulator`:
 *
 *     // sim-worker.js
 *     import { serveSimulator } from "nbi/browser";
 *     serveSimulator((theta, { seed }) => sine(theta, seed));
 *
 * Messages: from the worker first `{ ready: true }` (its module loaded), then to it
 * `{ tasks: [{ index, theta: Float64Array, seed }] }` and back `{ results: [{ index, x } | { index,
 * error }] }`. A worker that dies (an error event) before it is ready rejects the run (its module
 * did not load); one that dies later has its outstanding θ marked crashed and is replaced.
 */
import { NbiError } from "../../errors.js";
import { messageOf, type Outcome } from "./collect.js";
import { type ModuleRunner, setModuleRunner, type WorkerSimulatorSpec } from "./runner.js";
import type { SimulatorFn } from "./simulate.js";

interface Task {
  readonly index: number;
  readonly theta: Float64Array;
  readonly seed: number;
}
type Result = { index: number; x: ArrayLike<number> } | { index: number; error: string };

// The slice of the Worker API used here (the package compiles without the DOM library).
interface PageWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  onmessage: ((event: { data: { results: Result[] } | { ready: true } }) => void) | null;
  onerror: ((event: { message?: string; preventDefault?: () => void }) => void) | null;
}
type WorkerConstructor = new (url: string, options: { type: "module" }) => PageWorker;

const runWebWorkers: ModuleRunner = (spec, plan, collector) => {
  const WorkerClass = (globalThis as { Worker?: WorkerConstructor }).Worker;
  if (WorkerClass === undefined) {
    throw new NbiError(
      `simulate: simulator.workerUrl expected a runtime with Web Workers, got none for ${spec.module}`,
    );
  }
  const { theta, paramDim, indices, seeds, signal } = plan;
  const hardware = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  const target = Math.max(1, Math.min(plan.workers ?? hardware ?? 2, indices.length));
  const queue = Array.from(indices);
  let head = 0;
  let remaining = indices.length;
  const live = new Set<PageWorker>();

  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      for (const w of live) w.terminate();
      live.clear();
      finish();
    };
    const onAbort = () => settle(() => resolve(false));
    signal?.addEventListener("abort", onAbort);
    const record = (index: number, outcome: Outcome) => {
      try {
        collector.add(index, outcome);
      } catch (error) {
        settle(() => reject(error));
        return;
      }
      if (--remaining === 0) settle(() => resolve(true));
    };

    const start = () => {
      const worker = new WorkerClass(spec.module, { type: "module" });
      let outstanding: number[] = [];
      let ready = false;
      const dispatch = () => {
        if (settled || head >= queue.length) return;
        // Small batches keep each worker busy without leaving others idle at the end.
        const batch = Math.max(1, Math.min(16, Math.floor((queue.length - head) / (2 * target))));
        const tasks: Task[] = [];
        for (let k = 0; k < batch && head < queue.length; k++) {
          const index = queue[head++]!;
          tasks.push({
            index,
            theta: theta.slice(index * paramDim, (index + 1) * paramDim),
            seed: seeds ? seeds[index]! : index,
          });
        }
        outstanding = tasks.map((t) => t.index);
        worker.postMessage({ tasks });
      };
      worker.onmessage = ({ data }) => {
        if ("ready" in data) {
          ready = true;
          dispatch();
          return;
        }
        for (const r of data.results) {
          outstanding = outstanding.filter((i) => i !== r.index);
          record(
            r.index,
            "error" in r ? { kind: "threw", message: r.error } : { kind: "returned", value: r.x },
          );
        }
        if (outstanding.length === 0) dispatch();
      };
      worker.onerror = (event) => {
        event.preventDefault?.();
        live.delete(worker);
        worker.terminate();
        const message = `the Web Worker ${spec.module} failed: ${event.message ?? "error event"}`;
        const lost = outstanding;
        outstanding = [];
        for (const index of lost) record(index, { kind: "crashed", message });
        if (!settled && (!ready || (lost.length === 0 && live.size === 0))) {
          // Its module did not load (or the last worker died idle): stop, do not respawn forever.
          const what = ready ? message : `${message} before it was ready (its module did not load)`;
          settle(() => reject(new NbiError(`simulate: ${what}`)));
        } else if (!settled) start();
      };
      live.add(worker);
    };
    if (remaining === 0) return settle(() => resolve(true));
    for (let w = 0; w < target; w++) start();
  });
};

/**
 * A simulator run in `workers` module Web Workers from `url` (default: the browser's core count);
 * pass it as the engine's simulator. The worker module calls `serveSimulator`.
 */
export function webWorkerSimulator(url: string | URL, workers?: number): WorkerSimulatorSpec {
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new NbiError(`webWorkerSimulator: url expected a string or URL, got ${String(url)}`);
  }
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) {
    throw new NbiError(`webWorkerSimulator: workers expected a positive integer, got ${workers}`);
  }
  // Registered on use, so loading nbi/browser changes nothing until a worker simulator is made.
  setModuleRunner((spec, plan, collector) =>
    runWebWorkers(spec, { ...plan, workers: plan.workers ?? workers }, collector),
  );
  return { module: String(url) };
}

/** Inside a worker module: answers the engine's batches with `simulator`'s outputs. */
export function serveSimulator(simulator: SimulatorFn): void {
  const scope = globalThis as unknown as {
    onmessage: ((event: { data: { tasks: Task[] } }) => void) | null;
    postMessage(message: unknown): void;
  };
  scope.onmessage = async ({ data }) => {
    const results: Result[] = [];
    for (const task of data.tasks) {
      try {
        const x = await simulator(task.theta, { index: task.index, seed: task.seed });
        results.push({ index: task.index, x: Array.from(x) });
      } catch (error) {
        results.push({ index: task.index, error: messageOf(error) });
      }
    }
    scope.postMessage({ results });
  };
  scope.postMessage({ ready: true });
}
