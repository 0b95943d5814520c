/**
 * Durable file replacement: every file a run depends on (store chunks, θ, the manifest,
 * checkpoints, model.json, nbi-config.json) is written under a temporary name, flushed to disk
 * (fsync), renamed into place, and the folder's entry flushed too, so a crash or a power cut
 * leaves either the old file or the new one, never a half-written or empty file.
 */
import { open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";

let tempCounter = 0;

/** The temporary names `writeFileAtomic` uses: `<name>.tmp-<pid>-<n>`. */
export const TEMP_FILE = /\.tmp-\d+-\d+$/;

/**
 * Writes `data` to `path` atomically and durably: a temporary file beside it, fsync, rename, then
 * fsync of the folder (best effort: some file systems refuse to open folders).
 *
 * @example
 * ```ts
 * await inference.writeFileAtomic("runs/sine/notes.json", JSON.stringify({ ok: true }));
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${tempCounter++}`;
  const handle = await open(temp, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncFolder(dirname(path));
}

/** fsync of a folder, so a rename into it survives a power cut; ignored where unsupported. */
async function syncFolder(folder: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(folder, "r");
    await handle.sync();
  } catch {
    // Windows and some network file systems cannot open or sync a folder.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
