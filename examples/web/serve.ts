/**
 * Builds the web demo (main.ts and its simulator worker, sim-worker.ts) with esbuild for the
 * browser and serves it on 127.0.0.1:
 *
 *     npx tsx examples/web/serve.ts            # then open http://127.0.0.1:8080/
 *     PORT=9000 npx tsx examples/web/serve.ts
 *
 * A page needs http(s) rather than file: for module workers, and a secure context (localhost
 * counts) for navigator.gpu. test/browser/web-engine.test.ts uses `buildPage` and `servePage`.
 */
import { copyFile, mkdtemp, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Bundles the page into `outdir`: index.html, main.js and sim-worker.js. */
export async function buildPage(outdir: string): Promise<void> {
  await build({
    entryPoints: [join(here, "main.ts"), join(here, "sim-worker.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outdir,
    logLevel: "silent",
  });
  await copyFile(join(here, "index.html"), join(outdir, "index.html"));
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

/** Serves the files of `dir` on 127.0.0.1:`port` (0: any free port); resolves with its URL. */
export async function servePage(dir: string, port = 0): Promise<{ server: Server; url: string }> {
  const root = normalize(dir + sep);
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const file = normalize(join(root, path === "/" ? "index.html" : decodeURIComponent(path)));
    const type = TYPES[extname(file)];
    const body = file.startsWith(root) && type ? await readFile(file).catch(() => null) : null;
    res.writeHead(body ? 200 : 404, { "content-type": body ? type! : "text/plain" });
    res.end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const outdir = await mkdtemp(join(tmpdir(), "nbi-web-"));
  await buildPage(outdir);
  const { url } = await servePage(outdir, Number(process.env.PORT ?? 8080));
  console.log(`nbi web demo built in ${outdir}; open ${url} (Ctrl-C stops)`);
}
