/**
 * `nbi simulate CONFIG --round R (--prepare | --shard i/N)`: fans one round's simulations out
 * over processes or machines that share the run folder (a Slurm array job, say).
 *
 * - `--prepare` writes the round's θ into the store, drawn exactly as the engine would draw it:
 *   round 0 from the prior with the round's key; a later round from the surrogate trained on the
 *   rounds before it (which it trains first, from their stored simulations).
 * - `--shard i/N` simulates the rows i, i + N, i + 2N, ... of the round that are not stored yet,
 *   with the per-row seeds the engine would pass, into chunks named after the shard
 *   (`chunk-s003-NNNNNN.*.npy`), so shards never collide.
 *
 * `nbi fit CONFIG` then finds the round's simulations stored and goes straight to training; the
 * result is identical to an unsharded fit with the same seed and `adaptRounds: false` (an
 * unsharded fit with a likelihood draws later rounds in adaptive stages, which shards cannot run
 * ahead of: --prepare draws such a round in one batch and says so).
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { NbiError } from "../errors.js";
import { loadCheckpoint } from "../inference/checkpoint.js";
import { fingerprintChanges, fitKey, LOCK_FILE } from "../inference/engine.js";
import { keyAt } from "../inference/host.js";
import { acquireLock } from "../inference/lock.js";
import { initPosterior } from "../inference/posterior.js";
import { simulationSeeds } from "../inference/simulation/rows.js";
import { simulate } from "../inference/simulation/simulate.js";
import { type Checkpoint, drawRound, roundKeyOf, sequentialOptions } from "../inference/snpe.js";
import { openStore, type SimulationStore, type StoreMeta } from "../inference/store.js";
import {
  GLOBAL_HELP,
  interruptSignal,
  intOption,
  parse,
  positionals,
  stringOption,
  UsageError,
} from "./common.js";
import { loadConfig, type RunConfig, STORE_DIR, saveRun, storeMeta } from "./config.js";
import { overridesOf, RUN_OPTIONS } from "./fit.js";
import { Reporter } from "./report.js";
import { engineFor, fitOptions, roundsOf } from "./run.js";

export const SIMULATE_HELP = `Usage: nbi simulate CONFIG --round R --prepare
       nbi simulate CONFIG --round R --shard i/N

Runs one round's simulations in pieces, on as many machines as share the run folder.

  --prepare     draws the round's parameters into the store, as 'nbi fit' would: round 0
                from the prior; a later round from the surrogate of the rounds before it
                (trained here first, from their stored simulations). Run it once per round,
                before the shards.
  --shard i/N   simulates shard i of N (0 ≤ i < N): the round's rows i, i+N, i+2N, ... that
                are not stored yet. Run the N shards anywhere, at once or one by one; a shard
                that is killed resumes where it stopped.

Then 'nbi fit CONFIG' trains on the stored simulations (or '--prepare' the next round).
For each round R of the fit:

  nbi simulate CONFIG --round R --prepare
  nbi simulate CONFIG --round R --shard i/N     (for i = 0 .. N-1, e.g. a Slurm array)
  nbi fit CONFIG                                (after the last round)

Options:
      --round R       the round (default 0)
      --prepare       draw the round's parameters
      --shard i/N     simulate one shard (default 0/1: the whole round)
      --path DIR      the run folder (default: the config's "path")
      --workers N     simulator worker threads (default: the config's, or the core count)
      --backend B     cpu, webgpu or auto (for --prepare's training and draws)
      --sim-timeout S stop a simulation after S seconds (worker simulators), counted as
                      timed out

--prepare records the run's fingerprint (prior, simulator, seed, nSims, ...) in the store; a
shard or a later step run with a config that does not match it stops and names what changed.
Each shard holds its own lock (store/nbi-sNNN.lock): a shard cannot run twice at once.

${GLOBAL_HELP}`;

export async function simulateCommand(argv: readonly string[]): Promise<number> {
  const args = parse("simulate", argv, {
    ...RUN_OPTIONS,
    round: { type: "string", short: "r" },
    prepare: { type: "boolean" },
    shard: { type: "string" },
  });
  if (args.help) {
    process.stdout.write(`${SIMULATE_HELP}\n`);
    return 0;
  }
  const [configPath] = positionals("simulate", args.positionals, ["CONFIG"]);
  const round = intOption("simulate", "round", args.values.round, 0) ?? 0;
  const shardText = stringOption(args.values.shard);
  if (args.values.prepare && shardText !== undefined) {
    throw new UsageError("give either --prepare or --shard i/N, not both", "simulate");
  }
  const shard = shardText === undefined ? { index: 0, count: 1 } : parseShard(shardText);
  const reporter = new Reporter(args.flags);
  const run = await loadConfig(configPath!, overridesOf("simulate", args.values));
  if (round >= roundsOf(run)) {
    throw new UsageError(
      `--round ${round} is beyond the config's rounds (fit.nRounds = ${roundsOf(run)}: rounds 0 to ${roundsOf(run) - 1})`,
      "simulate",
    );
  }
  if (args.values.prepare) {
    await mkdir(run.runDir, { recursive: true });
    const lock = await acquireLock(join(run.runDir, LOCK_FILE), "nbi simulate --prepare");
    try {
      await prepareRound(run, round, reporter, configPath!);
    } finally {
      await lock.release();
    }
  } else await simulateShard(run, round, shard, reporter, configPath!);
  return 0;
}

/**
 * The config must be the one the store was prepared with: its fingerprint (what `nbi fit` would
 * record) is compared with the store's, and recorded when the store has none (`record`).
 */
async function checkFingerprint(
  store: SimulationStore,
  run: RunConfig,
  configPath: string,
  record: boolean,
): Promise<void> {
  const fingerprint = await engineFor(run).fitFingerprint(fitOptions(run, {}));
  const stored = await store.fingerprint();
  if (stored !== undefined && (await store.rounds()).length > 0) {
    const changes = fingerprintChanges(stored, fingerprint);
    if (changes.length > 0) {
      throw new NbiError(
        `${configPath}: the store ${store.dir} holds simulations made with another setup: ${changes.join("; ")}; ` +
          "run the config that prepared it, or start afresh in another --path (or with 'nbi fit --fresh')",
      );
    }
  }
  if (record && stored === undefined) await store.writeFingerprint(fingerprint);
}

function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) {
    throw new UsageError(
      `--shard expected i/N with 0 ≤ i < N (e.g. $SLURM_ARRAY_TASK_ID/32), got ${JSON.stringify(text)}`,
      "simulate",
    );
  }
  return { index, count };
}

/** The writer name of shard i of N: s000, s001, ... (wide enough for N). */
export function shardWriter(index: number, count: number): string {
  return `s${String(index).padStart(Math.max(3, String(count - 1).length), "0")}`;
}

/** Writes round R's θ (and the draw's record) into the store, as the engine's runRound does. */
export async function prepareRound(
  run: RunConfig,
  round: number,
  reporter: Reporter,
  configPath: string,
): Promise<void> {
  const nSims = run.fit.nSims;
  if (round > 0 && !run.xObs) {
    throw new NbiError(
      `${configPath}: round ${round} needs an observation (an amortized fit has one round); add "observation" to the config`,
    );
  }
  await saveRun(run);
  const { meta, net } = await storeMeta(run);
  const store = await openStore(join(run.runDir, STORE_DIR), meta);
  await checkFingerprint(store, run, configPath, true);
  if (await stoppedBefore(store, round, reporter, configPath)) return;
  const existing = await store.roundParams(round);
  if (existing) {
    reporter.result(
      `round ${round} is already drawn (${existing.length / meta.paramDim} θ in ${store.roundDir(round)}); run its shards`,
    );
    reporter.event("summary", {
      command: "simulate",
      prepare: true,
      round,
      n: existing.length / meta.paramDim,
      already: true,
    });
    return;
  }
  const checkpoints: Checkpoint[] = [];
  if (round > 0) {
    // The proposal of round R is the surrogate after round R − 1: train up to there first, from
    // simulations that must all be stored (this command never simulates).
    for (let r = 0; r < round; r++) {
      const stored = await store.roundParams(r);
      if (!stored) {
        throw new NbiError(
          `round ${r} has not been drawn yet: run 'nbi simulate ${configPath} --round ${r} --prepare' and its shards first`,
        );
      }
      const pending = (await store.readRound(r)).done.reduce((s, d) => s + (d ? 0 : 1), 0);
      if (pending > 0) {
        throw new NbiError(
          `round ${r} still has ${pending} of ${stored.length / meta.paramDim} simulations to run: ` +
            `run its shards ('nbi simulate ${configPath} --round ${r} --shard i/N') before preparing round ${round}`,
        );
      }
    }
    const engine = engineFor(run);
    reporter.info(
      `training ${round === 1 ? "round 0" : `rounds 0 to ${round - 1}`} to draw round ${round}`,
    );
    const fit = await engine.fit(fitOptions(run, await reporter.fitHooks(), round));
    if (fit.history.length < round || fit.stopped !== "completed all rounds") {
      // Remembered in the store, so this round's shards and later --prepare steps of a job chain
      // succeed doing nothing, and the chain reaches its final `nbi fit`.
      const mark: StoppedMark = { afterRound: fit.history.length - 1, reason: fit.stopped };
      await store.writeJson(round, STOPPED, mark);
      await stoppedBefore(store, round, reporter, configPath);
      return;
    }
    // The round's proposal may mix every earlier round's surrogate (RoundOptions.proposal).
    const template = await initPosterior(net, fitKey(run.seed));
    for (let r = 0; r < round; r++)
      checkpoints.push(
        await loadCheckpoint(join(store.roundDir(r), "checkpoint.safetensors"), template),
      );
  }
  // A fit with a likelihood draws later rounds in adaptive stages (fit.adaptRounds), each stage's
  // draws weighed on the simulations of the stages before: nothing a shard could run ahead of.
  if (round > 0 && run.fit.noise !== undefined && run.fit.adaptRounds !== false) {
    reporter.warn(
      `round ${round} is drawn from the surrogate in one batch for its shards; an unsharded fit ` +
        "draws it in adaptive stages, which need each stage's simulations before the next is " +
        'drawn. Set "adaptRounds": false in the config\'s fit section for sharded and unsharded ' +
        "fits to draw alike.",
    );
  }
  // The engine's own draw (snpe.ts drawRound), with the engine's run key.
  const { theta, ...draws } = await drawRound({
    net,
    prior: run.prior,
    key: fitKey(run.seed),
    round,
    nSims,
    ...(round > 0
      ? {
          checkpoints,
          xObs: Float32Array.from(run.xObs!),
          proposal: sequentialOptions(run.fit, net).proposal,
        }
      : {}),
  });
  // The engine's order (snpe.ts runRound step 1): the draw's record, then θ.
  await store.writeJson(round, "draws", draws);
  await store.writeRoundParams(round, theta);
  reporter.result(`round ${round}: ${nSims} θ drawn into ${store.roundDir(round)}`);
  reporter.event("summary", { command: "simulate", prepare: true, round, n: nSims, ...draws });
}

/** The mark --prepare leaves in round-RRR/ when the fit stopped before round R. */
const STOPPED = "stopped";
interface StoppedMark {
  readonly afterRound: number;
  readonly reason: string;
}

/** True (after saying so) when the fit stopped before `round`: there is nothing to simulate. */
async function stoppedBefore(
  store: SimulationStore,
  round: number,
  reporter: Reporter,
  configPath: string,
): Promise<boolean> {
  for (let r = 0; r <= round; r++) {
    const mark = await store.readJson<StoppedMark>(r, STOPPED);
    if (mark) {
      reporter.result(
        `the fit stopped after round ${mark.afterRound} (${mark.reason}): round ${round} is not needed; ` +
          `finish with 'nbi fit ${configPath}'`,
      );
      reporter.event("summary", { command: "simulate", round, stopped: mark.reason });
      return true;
    }
  }
  return false;
}

/** Simulates the shard's rows of round R that are not stored yet, under the shard's writer name. */
async function simulateShard(
  run: RunConfig,
  round: number,
  shard: { index: number; count: number },
  reporter: Reporter,
  configPath: string,
): Promise<void> {
  const dir = join(run.runDir, STORE_DIR);
  const hint = `run 'nbi simulate ${configPath} --round ${round} --prepare' first`;
  let manifest: StoreMeta;
  try {
    manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as StoreMeta;
  } catch {
    throw new NbiError(`no simulation store in ${dir}: ${hint}`);
  }
  // The config must describe the stored model: openStore compares dimension and labels.
  const meta = { paramDim: run.prior.dim, dataShape: manifest.dataShape, labels: run.prior.labels };
  const writer = shardWriter(shard.index, shard.count);
  // One process per shard: two copies of a shard would simulate the same rows twice.
  const lock = await acquireLock(
    join(dir, `nbi-${writer}.lock`),
    `nbi simulate shard ${shard.index}/${shard.count}`,
  );
  try {
    await simulateShardLocked(run, round, shard, reporter, configPath, dir, meta, writer);
  } finally {
    await lock.release();
  }
}

async function simulateShardLocked(
  run: RunConfig,
  round: number,
  shard: { index: number; count: number },
  reporter: Reporter,
  configPath: string,
  dir: string,
  meta: StoreMeta,
  writer: string,
): Promise<void> {
  const hint = `run 'nbi simulate ${configPath} --round ${round} --prepare' first`;
  const store = await openStore(dir, meta, { writer });
  await checkFingerprint(store, run, configPath, false);
  const theta = await store.roundParams(round);
  if (!theta) {
    if (await stoppedBefore(store, round, reporter, configPath)) return;
    throw new NbiError(`round ${round} has no θ in ${dir} yet: ${hint}`);
  }
  const d = meta.paramDim;
  const n = theta.length / d;
  if (n !== run.fit.nSims) {
    throw new NbiError(
      `round ${round} in ${dir} holds ${n} θ but ${configPath} asks for fit.nSims = ${run.fit.nSims}: the store was prepared from another config`,
    );
  }
  const { done } = await store.readRound(round);
  const mine: number[] = [];
  let stored = 0;
  for (let i = shard.index; i < n; i += shard.count) {
    if (done[i]) stored++;
    else mine.push(i);
  }
  const label = `round ${round} shard ${shard.index}/${shard.count}`;
  reporter.event("start", {
    command: "simulate",
    round,
    shard: shard.index,
    shards: shard.count,
    todo: mine.length,
    stored,
  });
  reporter.info(`${label}: ${mine.length} simulations to run, ${stored} already stored`);
  // Exactly the seeds the engine passes for this round (snpe.ts runSimulations).
  const seeds = simulationSeeds(keyAt(roundKeyOf(fitKey(run.seed), round), 1), n);
  const bar = reporter.progress(label, mine.length);
  const t0 = performance.now();
  const report =
    mine.length === 0
      ? undefined
      : await simulate(
          run.simulator,
          {
            theta,
            paramDim: d,
            indices: Int32Array.from(mine),
            seeds,
            expectedSize: store.size,
            onChunk: (chunk) => store.appendChunk(round, chunk),
          },
          {
            ...(run.workers !== undefined ? { workers: run.workers } : {}),
            ...(run.simTimeoutMs !== undefined ? { simTimeoutMs: run.simTimeoutMs } : {}),
            signal: interruptSignal(),
            onProgress: (k) => bar.update(k),
          },
        ).finally(() => bar.stop());
  const seconds = (performance.now() - t0) / 1000;
  const failed = report
    ? report.nonFinite + report.threw + report.crashed + (report.timedOut ?? 0)
    : 0;
  const timedOut = report?.timedOut ? `, ${report.timedOut} timed out` : "";
  reporter.result(
    `${label}: ${report?.ok ?? 0} simulated${failed > 0 ? `, ${failed} failed (${report!.nonFinite} non-finite, ${report!.threw} threw, ${report!.crashed} crashed${timedOut})` : ""}` +
      `, ${stored} were stored already; ${seconds.toFixed(1)} s`,
  );
  if (report?.firstError) reporter.warn(`first simulator error: ${report.firstError}`);
  reporter.event("summary", {
    command: "simulate",
    round,
    shard: shard.index,
    shards: shard.count,
    simulated: report?.ok ?? 0,
    failed,
    stored,
    seconds,
    ...(report?.firstError ? { firstError: report.firstError } : {}),
  });
}
