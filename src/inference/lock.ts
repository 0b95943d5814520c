/**
 * One writer at a time per run folder: a lock file created with O_EXCL (`open(path, "wx")`), so
 * of two processes only one can create it. It holds who took it (pid, host, start time, what for).
 * A lock whose process is gone (same host, pid no longer running) is stale and is taken over; a
 * lock from another host cannot be checked and is respected, with the way to remove it by hand.
 *
 * Held locks are removed when released, and also when the process exits (an `exit` handler), so
 * errors and the CLI's signal handling (a first SIGINT aborts and unwinds, a second exits) leave
 * no lock behind; a SIGKILL does, and the next run finds it stale.
 */
import { unlinkSync } from "node:fs";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { NbiError } from "../errors.js";

/** What a lock file holds. */
export interface LockOwner {
  readonly pid: number;
  readonly host: string;
  /** ISO time the lock was taken. */
  readonly started: string;
  /** What holds it ("fit", "simulate shard 3/8", "save"). */
  readonly purpose: string;
}

/** A held lock: `release()` removes the lock file (once; later calls do nothing). */
export interface RunLock {
  readonly path: string;
  readonly owner: LockOwner;
  release(): Promise<void>;
}

const held = new Map<string, LockOwner>();
let exitHook = false;

function removeHeldOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const path of held.keys()) {
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    }
  });
}

/** True when a process with this pid runs on this host (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function describeOwner(owner: Partial<LockOwner>): string {
  return `${owner.purpose ?? "a process"} (pid ${owner.pid ?? "?"} on ${owner.host ?? "?"}, since ${owner.started ?? "?"})`;
}

/**
 * Takes the lock file `path` for `purpose`, or throws an NbiError naming the holder. A stale lock
 * (its pid no longer runs on this host) is replaced. `reentrant`: a lock this process already
 * holds is shared (released by its first holder) instead of refused.
 *
 * @example
 * ```ts
 * const lock = await acquireLock("runs/sine/store/nbi.lock", "fit");
 * try { ... } finally { await lock.release(); }
 * ```
 */
export async function acquireLock(
  path: string,
  purpose: string,
  options: { reentrant?: boolean } = {},
): Promise<RunLock> {
  const mine = held.get(path);
  if (mine && options.reentrant) {
    // This process holds it already (the CLI's fit, now saving): nothing to take or release.
    return { path, owner: mine, release: async () => undefined };
  }
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    purpose,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, "wx");
      try {
        await handle.writeFile(`${JSON.stringify(owner)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      removeHeldOnExit();
      held.set(path, owner);
      let released = false;
      return {
        path,
        owner,
        release: async () => {
          if (released) return;
          released = true;
          held.delete(path);
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    let other: Partial<LockOwner> = {};
    try {
      other = JSON.parse(text) as Partial<LockOwner>;
    } catch {
      // Half-written by a process that died between create and write: treat as stale below.
    }
    const sameHost = other.host === owner.host;
    // An empty lock is being written right now, or was left by a process that died between
    // creating and writing it: stale only once it has been empty for a while.
    const emptyFor = async () =>
      Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0);
    const stale =
      (sameHost && typeof other.pid === "number" && !alive(other.pid)) ||
      (typeof other.pid !== "number" && text.trim() === "" && (await emptyFor()) > 10_000);
    if (stale) {
      // Remove only the lock we judged stale: a fresh one taken meanwhile has other contents.
      const again = await readFile(path, "utf8").catch(() => undefined);
      if (again === text) await unlink(path).catch(() => undefined);
      continue;
    }
    const self = sameHost && other.pid === process.pid;
    throw new NbiError(
      `${path}: the run folder is in use by ${describeOwner(other)}; one writer at a time` +
        (self
          ? " (this very process: wait for its other call to finish)"
          : sameHost
            ? "; wait for it to finish or stop it"
            : `; if that process is gone, delete ${path}`),
    );
  }
  throw new NbiError(`${path}: could not take the run folder's lock (it kept changing hands)`);
}
