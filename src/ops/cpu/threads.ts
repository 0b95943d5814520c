/**
 * Multi-threaded CPU kernels: a pool of worker threads that run the generated WebAssembly
 * kernels against the same shared memory as the calling thread.
 *
 * A kernel module is instantiated here on a shared `WebAssembly.Memory` where the engine allows
 * it (Node); the calling thread packs the operands into that memory as before, then splits the
 * kernel's calls into per-thread lists over disjoint blocks of output rows, hands one list to
 * each worker through a shared control block, runs the first list itself and waits on
 * `Atomics.wait` until every worker has signalled. Each output element is computed by exactly
 * one thread, by the same kernel code with the same reduction order as on one thread, so the
 * results are bitwise identical for any thread count. Products below `PARALLEL_MIN_WORK`
 * multiply-adds stay on the calling thread (handing off costs tens of microseconds).
 *
 * No static Node imports: `node:worker_threads` and `node:os` are reached through
 * `process.getBuiltinModule`, so the module still bundles for browsers, where everything runs
 * on one thread (Deno's `node:worker_threads` works too). Workers are `unref`ed (they never
 * keep the process alive) and are created lazily, on the first product large enough to split;
 * a worker that cannot start or run a kernel has its share redone on the calling thread, and
 * threads are then turned off for the process.
 */
import { type WasmMemory, wasm } from "./wasm/runtime.js";

/** Fewest multiply-adds a product needs before it is split across threads (2^21). */
export const PARALLEL_MIN_WORK = 1 << 21;

/** Maximum size (64 KiB pages) of a shared kernel memory: the whole 32-bit address space. */
const MAX_PAGES = 65536;
const INITIAL_PAGES = 16;

/** Calls one worker can take per job; longer lists run on the calling thread. */
const MAX_CALLS = 4096;
/** Words per call in the control block: kernel id, function index, 8 arguments. */
const CALL_WORDS = 10;
/**
 * Control-block header words: job generation (-1: exit), done generation, call count, error
 * flag, and the worker's state (0 before it starts, 1 once running, 2 when given up on).
 */
const HEADER = 5;
/** How long to wait for a worker that has not started before running its share here. */
const START_TIMEOUT_MS = 10_000;

interface NodePort {
  postMessage(value: unknown): void;
}

interface NodeWorker {
  postMessage(value: unknown): void;
  unref(): void;
  terminate(): Promise<number>;
  on(event: "error", listener: (error: unknown) => void): void;
}

interface WorkerThreads {
  Worker: new (
    source: string,
    options: { eval: boolean; workerData: unknown; execArgv: string[]; transferList: unknown[] },
  ) => NodeWorker;
  MessageChannel: new () => { port1: NodePort; port2: unknown };
  isMainThread: boolean;
}

type Builtin = (name: string) => unknown;

function builtin(): Builtin | undefined {
  return (globalThis as { process?: { getBuiltinModule?: Builtin } }).process?.getBuiltinModule;
}

/** A generated kernel module, instantiated on its own memory. */
export interface Kernel {
  readonly id: number;
  readonly memory: WasmMemory;
  /** Whether the memory is shared, so that workers can run the kernel too. */
  readonly shared: boolean;
  /** The exported functions, by name. */
  readonly exports: Record<string, unknown>;
  readonly module: object;
  readonly names: readonly string[];
}

let nextKernelId = 0;

/**
 * Instantiates a kernel module (encoded by `encode`, given the shared maximum when the memory is
 * shared) on a fresh memory: shared when worker threads exist, so the pool can run it; plain
 * otherwise (browsers, engines without shared memory).
 */
export function instantiateKernel(
  encode: (sharedMaxPages?: number) => Uint8Array,
  names: readonly string[],
): Kernel {
  const api = wasm!;
  if (workerThreads() !== undefined && typeof SharedArrayBuffer !== "undefined") {
    try {
      const memory = new api.Memory({
        initial: INITIAL_PAGES,
        maximum: MAX_PAGES,
        shared: true,
      });
      const module = new api.Module(encode(MAX_PAGES));
      const inst = new api.Instance(module, { env: { memory } });
      return { id: nextKernelId++, memory, shared: true, exports: inst.exports, module, names };
    } catch {
      // Fall through to a plain memory.
    }
  }
  const memory = new api.Memory({ initial: INITIAL_PAGES });
  const module = new api.Module(encode());
  const inst = new api.Instance(module, { env: { memory } });
  return { id: nextKernelId++, memory, shared: false, exports: inst.exports, module, names };
}

let threadsModule: WorkerThreads | null | undefined;

function workerThreads(): WorkerThreads | undefined {
  if (threadsModule === undefined) {
    threadsModule = null;
    try {
      const mod = builtin()?.("node:worker_threads") as WorkerThreads | undefined;
      if (mod?.Worker) threadsModule = mod;
    } catch {
      // No worker threads here.
    }
  }
  return threadsModule ?? undefined;
}

let requested: number | undefined;

function defaultThreads(): number {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const env = proc?.env?.NBI_THREADS;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 1) return n;
  }
  try {
    const os = builtin()?.("node:os") as
      | { availableParallelism?: () => number; cpus: () => unknown[] }
      | undefined;
    if (os) return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  } catch {
    // Not Node.
  }
  return 1;
}

/**
 * The number of threads large CPU kernels (float32 matmul, conv1d) are split across: the value
 * of the last {@link setThreads} call, else the `NBI_THREADS` environment variable, else the
 * number of cores (`os.availableParallelism()`). Always 1 where there are no worker threads (in
 * browsers). Results are bitwise identical for any thread count.
 *
 * @example
 * ```ts
 * import { np } from "nbi";
 * console.log(np.threads()); // e.g. 8 on an 8-core machine
 * ```
 */
export function threads(): number {
  if (workerThreads() === undefined) return 1;
  requested ??= defaultThreads();
  return requested;
}

/**
 * Sets how many threads large CPU kernels are split across (1 keeps everything on the calling
 * thread). Products below about two million multiply-adds always stay on the calling thread.
 * Surplus worker threads are shut down; the results do not depend on the count, bit for bit.
 * Without worker threads (in browsers) this is recorded but everything runs on one thread.
 *
 * @param n - A positive integer.
 * @example
 * ```ts
 * import { np } from "nbi";
 * np.setThreads(2);
 * const c = np.matmul(np.ones([1024, 1024]), np.ones([1024, 1024])); // on 2 threads
 * np.setThreads(1);
 * ```
 */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`setThreads: expected a positive integer, got ${n}`);
  }
  requested = n;
  while (pool.length > n - 1) stopWorker(pool.pop()!);
}

const stats = { parallel: 0, serial: 0 };

/** How many kernel runs were split across threads and how many stayed on one (for tests). */
export function threadStats(): { parallel: number; serial: number } {
  return { ...stats };
}

/**
 * How many threads to split a run of `work` multiply-adds over, given that it divides into
 * `units` independent pieces; counts the decision in {@link threadStats}.
 */
export function threadsFor(kernel: Kernel, work: number, units: number): number {
  const t = Math.min(threads(), units);
  if (t <= 1 || work < PARALLEL_MIN_WORK || !kernel.shared || broken) {
    stats.serial++;
    return 1;
  }
  stats.parallel++;
  return t;
}

/** Splits [0, total) into `parts` ranges whose bounds are multiples of `unit`, sizes balanced. */
export function splitRange(total: number, parts: number, unit: number): [number, number][] {
  const units = Math.ceil(total / unit);
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    const u0 = Math.floor((units * p) / parts);
    const u1 = Math.floor((units * (p + 1)) / parts);
    out.push([Math.min(total, u0 * unit), Math.min(total, u1 * unit)]);
  }
  return out;
}

/** One kernel call: the index of the function in the kernel's `names`, then its i32 arguments. */
export type Call = readonly number[];

function runCalls(kernel: Kernel, calls: readonly Call[]): void {
  const fns = kernel.names.map((n) => kernel.exports[n] as (...args: number[]) => void);
  for (const [f, ...args] of calls) fns[f!]!(...args);
}

/**
 * Runs `lists[t]` on thread t (thread 0 is the caller), each list's calls in order, and returns
 * when all are done. The lists must touch disjoint output memory, and each must give the same
 * result when run again from its start (a list a worker fails to finish is redone here).
 */
export function runParallel(kernel: Kernel, lists: readonly (readonly Call[])[]): void {
  const helpers = lists.length - 1;
  if (helpers < 1 || lists.some((l) => l.length > MAX_CALLS) || !ensureWorkers(helpers)) {
    for (const l of lists) runCalls(kernel, l);
    return;
  }
  const used = pool.slice(0, helpers);
  for (let w = 0; w < helpers; w++) {
    const slot = used[w]!;
    if (!slot.known.has(kernel.id)) {
      slot.port.postMessage({
        id: kernel.id,
        module: kernel.module,
        memory: kernel.memory,
        names: kernel.names,
      });
      slot.known.add(kernel.id);
    }
    const ctrl = slot.ctrl;
    const calls = lists[w + 1]!;
    for (let c = 0; c < calls.length; c++) {
      const call = calls[c]!;
      const o = HEADER + c * CALL_WORDS;
      ctrl[o] = kernel.id;
      for (let q = 0; q < call.length; q++) ctrl[o + 1 + q] = call[q]!;
      for (let q = call.length; q < CALL_WORDS - 1; q++) ctrl[o + 1 + q] = 0;
    }
    ctrl[2] = calls.length;
    ctrl[3] = 0;
    slot.gen++;
    Atomics.store(ctrl, 0, slot.gen);
    Atomics.notify(ctrl, 0);
  }
  let error: unknown;
  try {
    runCalls(kernel, lists[0]!);
  } catch (e) {
    error = e;
  }
  for (let w = 0; w < helpers; w++) {
    const slot = used[w]!;
    const ctrl = slot.ctrl;
    for (;;) {
      const done = Atomics.load(ctrl, 1);
      if (done === slot.gen) break;
      if (Atomics.wait(ctrl, 1, done, START_TIMEOUT_MS) !== "timed-out") continue;
      // A worker that never started (it could not load) is given up on: it exits if it ever
      // does start, its share runs here, and no more workers are started.
      if (Atomics.compareExchange(ctrl, 4, 0, 2) === 0) {
        broken = true;
        const at = pool.indexOf(slot);
        if (at >= 0) pool.splice(at, 1);
        void slot.worker.terminate();
        try {
          runCalls(kernel, lists[w + 1]!);
        } catch (e) {
          error ??= e;
        }
        break;
      }
    }
    if (ctrl[3] !== 0) {
      // The worker could not run the kernel (e.g. a runtime whose workers cannot take shared
      // WebAssembly memory): redo its share here and run on one thread from now on.
      broken = true;
      try {
        runCalls(kernel, lists[w + 1]!);
      } catch (e) {
        error ??= e;
      }
    }
  }
  if (broken) shutdownThreads();
  if (error !== undefined) throw error;
}

interface Slot {
  worker: NodeWorker;
  port: NodePort;
  ctrl: Int32Array;
  gen: number;
  known: Set<number>;
}

const pool: Slot[] = [];

// The worker: instantiate kernels as they are sent (read synchronously, since the worker never
// returns to its event loop), then loop: wait for a new job generation, run its calls, signal.
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads");
const ctrl = new Int32Array(workerData.ctrl);
const kernels = [];
if (Atomics.compareExchange(ctrl, 4, 0, 1) !== 0) process.exit(0);
function drain() {
  for (;;) {
    const m = receiveMessageOnPort(workerData.port);
    if (m === undefined) return;
    const { id, module, memory, names } = m.message;
    const inst = new WebAssembly.Instance(module, { env: { memory } });
    kernels[id] = names.map((n) => inst.exports[n]);
  }
}
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  const gen = Atomics.load(ctrl, 0);
  if (gen < 0) break;
  if (gen === seen) continue;
  seen = gen;
  try {
    const n = ctrl[2];
    for (let c = 0; c < n; c++) {
      const o = ${HEADER} + c * ${CALL_WORDS};
      while (kernels[ctrl[o]] === undefined) drain();
      kernels[ctrl[o]][ctrl[o + 1]](
        ctrl[o + 2], ctrl[o + 3], ctrl[o + 4], ctrl[o + 5],
        ctrl[o + 6], ctrl[o + 7], ctrl[o + 8], ctrl[o + 9],
      );
    }
  } catch (e) {
    ctrl[3] = 1;
  }
  Atomics.store(ctrl, 1, gen);
  Atomics.notify(ctrl, 1);
}
`;

let broken = false;

/** Starts workers until there are `count`; false when worker threads are unavailable. */
function ensureWorkers(count: number): boolean {
  if (pool.length >= count) return true;
  const wt = workerThreads();
  if (!wt || broken) return false;
  try {
    while (pool.length < count) {
      const sab = new SharedArrayBuffer((HEADER + MAX_CALLS * CALL_WORDS) * 4);
      // No inherited flags: the worker is plain CommonJS and needs no loader (tsx, --input-type).
      // Kernels go through a port of their own: read synchronously by the worker, which never
      // returns to its event loop (Deno's `parentPort` cannot be read that way).
      const { port1, port2 } = new wt.MessageChannel();
      const worker = new wt.Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { ctrl: sab, port: port2 },
        execArgv: [],
        transferList: [port2],
      });
      worker.unref();
      const slot: Slot = {
        worker,
        port: port1,
        ctrl: new Int32Array(sab),
        gen: 0,
        known: new Set(),
      };
      // A worker that fails to load reports here (once the caller is idle again): stop using
      // threads rather than crash the process. Kernel errors are caught in the worker.
      worker.on("error", () => {
        broken = true;
        const at = pool.indexOf(slot);
        if (at >= 0) pool.splice(at, 1);
      });
      pool.push(slot);
    }
  } catch {
    return false;
  }
  return true;
}

function stopWorker(slot: Slot): void {
  Atomics.store(slot.ctrl, 0, -1);
  Atomics.notify(slot.ctrl, 0);
  void slot.worker.terminate();
}

/** Stops all worker threads (they restart on demand); for tests and orderly shutdown. */
export function shutdownThreads(): void {
  while (pool.length > 0) stopWorker(pool.pop()!);
}

/** How many worker threads are running (besides the calling thread); for tests. */
export function workerCount(): number {
  return pool.length;
}
