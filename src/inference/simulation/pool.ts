/**
 * A pool of worker threads running a simulator module. Each worker gets a few tasks at a time and
 * runs them in order, so when a worker dies the first of its unfinished tasks is the one that was
 * running: that θ is retried once on a fresh worker and then recorded as crashed; the others go
 * back to the queue untouched. With a timeout, a simulation running longer is recorded as timed
 * out and its worker terminated and replaced; the tasks queued behind it go back to the queue.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { isAbsolute } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { NbiError } from "../../errors.js";
import { messageOf, type ResultCollector } from "./collect.js";
import { type PoolPlan, setModuleRunner, type WorkerSimulatorSpec } from "./runner.js";
import { WORKER_SOURCE } from "./worker.js";

type WorkerMessage =
  | { type: "ready" }
  | { type: "loadError"; message: string }
  | { type: "returned"; index: number; value: unknown }
  | { type: "threw"; index: number; message: string };

interface Slot {
  readonly worker: Worker;
  /** Tasks sent and not yet answered, in the order the worker runs them. */
  readonly outstanding: number[];
  ready: boolean;
  closing: boolean;
  /** When the first outstanding task started running (performance.now()). */
  startedAt: number;
  error?: string;
}

/** Where the module lives, as a file URL; throws an NbiError for a relative or missing path. */
export function moduleUrlOf(spec: WorkerSimulatorSpec): URL {
  const { module } = spec;
  let url: URL;
  if (typeof module === "string" && module.startsWith("file:")) url = new URL(module);
  else if (typeof module === "string" && isAbsolute(module)) url = pathToFileURL(module);
  else {
    throw new NbiError(
      `simulate: simulator.module expected an absolute path or file: URL of an ES module, got ${JSON.stringify(module)}`,
    );
  }
  if (!existsSync(fileURLToPath(url))) {
    throw new NbiError(`simulate: simulator.module expected an existing file, got ${url.href}`);
  }
  return url;
}

/**
 * Runs every index of the plan in the pool, feeding outcomes to `collector`. Resolves true when
 * all are done, false when aborted (workers terminated, finished results already collected);
 * rejects on a fatal error (a worker that cannot load the module, a malformed output).
 */
export function runPool(
  spec: WorkerSimulatorSpec,
  plan: PoolPlan,
  collector: ResultCollector,
): Promise<boolean> {
  const url = moduleUrlOf(spec);
  const exportName = spec.exportName ?? "default";
  const typescript = /\.[cm]?tsx?$/.test(url.pathname);
  const workerData = {
    moduleUrl: url.href,
    exportName,
    typescript,
    tsxBases: [fileURLToPath(url), `${process.cwd()}/`, fileURLToPath(import.meta.url)],
  };
  const { theta, paramDim, indices, seeds, signal } = plan;
  const queue = Array.from(indices);
  let head = 0;
  let remaining = indices.length;
  const crashes = new Map<number, number>();
  let idleDeaths = 0;
  const slots = new Set<Slot>();
  const target = Math.min(plan.workers, indices.length);
  const timeoutMs = plan.timeoutMs;

  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    let watchdog: ReturnType<typeof setInterval> | undefined;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      if (watchdog !== undefined) clearInterval(watchdog);
      signal?.removeEventListener("abort", onAbort);
      const exits = [...slots].map((s) => {
        s.closing = true;
        return s.worker.terminate();
      });
      Promise.allSettled(exits).then(finish);
    };
    const fatal = (error: unknown): void => settle(() => reject(error));
    const onAbort = (): void => settle(() => resolve(false));
    const queued = (): number => queue.length - head;

    const dispatch = (slot: Slot): void => {
      if (settled || !slot.ready || slot.outstanding.length > 1 || queued() === 0) return;
      // Small batches keep the worker busy between messages; they shrink near the end so no
      // worker sits on a backlog while others idle.
      const batch = Math.max(1, Math.min(16, Math.floor(queued() / (2 * target))));
      if (slot.outstanding.length === 0) slot.startedAt = performance.now();
      const tasks = [];
      for (let k = 0; k < batch && queued() > 0; k++) {
        const index = queue[head++]!;
        slot.outstanding.push(index);
        tasks.push({
          index,
          theta: theta.slice(index * paramDim, (index + 1) * paramDim),
          seed: seeds ? seeds[index]! : index,
        });
      }
      slot.worker.postMessage(tasks);
    };

    const record = (index: number, outcome: Parameters<ResultCollector["add"]>[1]): void => {
      try {
        collector.add(index, outcome);
      } catch (error) {
        fatal(error);
        return;
      }
      remaining--;
      if (collector.chunkError !== undefined) fatal(collector.chunkError);
      else if (remaining === 0) settle(() => resolve(true));
    };

    const requeueFront = (items: number[]): void => {
      // Retries go first so a crashing θ is settled early rather than at the very end.
      queue.splice(head, 0, ...items);
    };

    const spawn = (): void => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      const slot: Slot = {
        worker,
        outstanding: [],
        ready: false,
        closing: false,
        startedAt: performance.now(),
      };
      slots.add(slot);
      worker.on("message", (message: WorkerMessage) => {
        if (settled) return;
        switch (message.type) {
          case "ready":
            slot.ready = true;
            dispatch(slot);
            return;
          case "loadError":
            fatal(
              new NbiError(`simulate: cannot load the simulator ${url.href}: ${message.message}`),
            );
            return;
          default: {
            slot.outstanding.shift();
            slot.startedAt = performance.now(); // the worker goes straight on to the next task
            const outcome =
              message.type === "threw"
                ? ({ kind: "threw", message: message.message } as const)
                : ({ kind: "returned", value: message.value } as const);
            record(message.index, outcome);
            dispatch(slot);
          }
        }
      });
      worker.on("error", (error) => {
        slot.error = messageOf(error);
      });
      worker.on("exit", (code) => {
        slots.delete(slot);
        if (settled || slot.closing) return;
        const why = slot.error ?? `the worker exited with code ${code}`;
        if (!slot.ready) {
          fatal(new NbiError(`simulate: the worker loading ${url.href} died: ${why}`));
          return;
        }
        const [inFlight, ...unstarted] = slot.outstanding;
        requeueFront(unstarted);
        if (inFlight !== undefined) {
          const tries = (crashes.get(inFlight) ?? 0) + 1;
          crashes.set(inFlight, tries);
          if (tries >= 2) record(inFlight, { kind: "crashed", message: why });
          else requeueFront([inFlight]);
        } else if (++idleDeaths > 2 * target + 8) {
          // Deaths with no θ to blame (the module's own timers): replacing forever would hang.
          fatal(
            new NbiError(`simulate: workers running ${url.href} keep dying while idle: ${why}`),
          );
        }
        if (settled) return;
        if (remaining > 0) spawn();
        for (const other of slots) dispatch(other);
      });
    };

    /** Stops simulations past the timeout: their θ is counted, their worker replaced. */
    const checkTimeouts = (): void => {
      if (settled || timeoutMs === undefined) return;
      const now = performance.now();
      for (const slot of [...slots]) {
        if (settled) return;
        if (slot.closing || !slot.ready || slot.outstanding.length === 0) continue;
        if (now - slot.startedAt <= timeoutMs) continue;
        const [late, ...unstarted] = slot.outstanding;
        slot.closing = true;
        slots.delete(slot);
        void slot.worker.terminate();
        requeueFront(unstarted);
        record(late!, {
          kind: "timeout",
          message: `the simulation ran past simTimeoutMs = ${timeoutMs} ms and was stopped`,
        });
        if (settled) return;
        if (remaining > 0) spawn();
        for (const other of slots) dispatch(other);
      }
    };

    if (signal?.aborted) {
      resolve(false);
      return;
    }
    if (timeoutMs !== undefined) {
      watchdog = setInterval(checkTimeouts, Math.max(10, Math.min(250, timeoutMs / 4)));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    if (remaining === 0) {
      resolve(true);
      return;
    }
    for (let k = 0; k < target; k++) spawn();
  });
}

// simulate.ts imports no Node built-in: loading this module is what runs `{ module }` simulators
// in worker threads (the engine and the package's Node entry load it).
setModuleRunner((spec, plan, collector) =>
  runPool(spec, { ...plan, workers: plan.workers ?? availableParallelism() }, collector),
);
