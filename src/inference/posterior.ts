/**
 * The surrogate posterior q(θ | x): a featurizer that turns an observation into a context vector
 * and a conditional flow over standardised parameters. Observations enter as [batch, channels,
 * length] (a 1-D simulator output of length L is one channel); data and parameters are
 * standardised with scales fixed per round and saved with the model, and log-densities are
 * reported in the user's units (the flow's density times the Jacobian of `thetaMap`, the support
 * map and the standardisation as one host bijector chain), so importance weights and evidences
 * are exact.
 */
import { type Flow, type FlowParams, maf, nsf } from "../bijectors/flows.js";
import { type HostBijector, hostChain, hostStandardise } from "../bijectors/host.js";
import { fail, NbiError } from "../errors.js";
import { type FeaturizerConfig, resolve } from "../featurizers/registry.js";
import type { Featurizer } from "../featurizers/types.js";
import * as np from "../ops/np.js";
import * as random from "../ops/random.js";
import type { Array } from "../trace/array.js";
import { defaultBackend } from "../trace/backend.js";
import * as tree from "../trace/tree.js";
import { jit } from "../transforms/jit.js";
import { encodePacked, type GappedLightCurves } from "./gaps.js";
import { onCpu, uniforms } from "./host.js";
import { isBounded, mapsExactly, type SupportBounds, supportMap } from "./unbounded.js";

/** nbi's flow hyperparameters (camelCase), plus the transformer type. */
export interface FlowConfig {
  /** Dimension of θ (the number of parameters). */
  nDims: number;
  /** "maf" (default, nbi's affine MAF) or "nsf" (rational-quadratic splines). */
  type?: "maf" | "nsf";
  /** Width of the MADE hidden layers (default 64). */
  flowHidden?: number;
  /** Number of [MADE, permutation] blocks (default 5). */
  numBlocks?: number;
  /** Masked hidden layers per MADE (default 2). */
  hiddenLayers?: number;
  /** Mixture components of the base (default 1: a standard normal). */
  nMog?: number;
  /** Seeds random permutations between blocks (default: reversals). */
  permSeed?: number;
}

/** The surrogate's parameters: a plain pytree of the featurizer's and the flow's. */
export interface PosteriorParams {
  /** The featurizer's parameters (their shape depends on the featurizer). */
  readonly featurizer: unknown;
  /** The flow's parameters. */
  readonly flow: FlowParams;
}

/**
 * Standardisation: per data channel and per parameter. With `thetaLower`/`thetaUpper` the
 * parameters are first mapped from the prior's support to an unbounded space (see unbounded.ts),
 * and `thetaMean`/`thetaStd` standardise that image.
 */
export interface Scales extends SupportBounds {
  /** Mean of each data channel. */
  readonly xMean: Float64Array;
  /** Standard deviation of each data channel. */
  readonly xStd: Float64Array;
  /** Mean of each parameter. */
  readonly thetaMean: Float64Array;
  /** Standard deviation of each parameter. */
  readonly thetaStd: Float64Array;
  /**
   * The scale τ of the flow's standard-normal base noise (absent: 1): the surrogate's spread
   * calibrated at held-out weighted draws after its training (spread.ts). The network draws
   * f(τ·z) and its density is the flow's with that base; training never sees it.
   */
  readonly baseScale?: number;
}

/** The surrogate q(θ | x): a featurizer feeding a conditional flow, and the shapes it expects. */
export interface PosteriorNetwork {
  /** The conditional flow over standardised θ. */
  readonly flow: Flow;
  /** The network from observations to the flow's context. */
  readonly featurizer: Featurizer;
  /** Dimension of θ. */
  readonly nDims: number;
  /** [channels, length] as the featurizer sees one observation. */
  readonly inputShape: readonly [number, number];
  /** Numbers per simulation (channels × length). */
  readonly dataSize: number;
  /** log q(θs | xs) in standardised units: xs [B, C, L], θs [B, d] → [B]. Traceable. */
  logProbStd(params: PosteriorParams, xs: Array, thetas: Array): Array;
  /** Context vectors [B, F] for standardised observations [B, C, L]. Traceable. */
  context(params: PosteriorParams, xs: Array): Array;
  /** True when the flow's base is a standard normal (flows from a config without nMog). */
  readonly normalBase: boolean;
  /**
   * The gapped observation model the network encodes for (see gaps.ts): its featurizer sees 3C
   * channels, and the host functions here take observations packed (values with NaN where
   * missing, then sigmas: 2 × dataSize numbers each).
   */
  readonly gaps?: GappedLightCurves;
}

/**
 * Numbers per observation as the host functions here take it: dataSize, or twice that for a
 * network with the gapped observation model (values, then sigmas).
 */
export function observationSize(net: PosteriorNetwork): number {
  return net.gaps ? 2 * net.dataSize : net.dataSize;
}

const FLOW_KEYS = ["nDims", "type", "flowHidden", "numBlocks", "hiddenLayers", "nMog", "permSeed"];

/** Builds the flow from a config (camelCase; nbi's snake_case keys get a hint). */
export function flowFromConfig(config: FlowConfig, contextDim: number): Flow {
  if (typeof config !== "object" || config === null) {
    fail("NBI", "flow", "a flow config such as { nDims: 3, flowHidden: 64, numBlocks: 5 }", config);
  }
  for (const k of Object.keys(config)) {
    if (!FLOW_KEYS.includes(k)) {
      const camel = k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      const hint = FLOW_KEYS.includes(camel) ? ` (did you mean ${camel}?)` : "";
      throw new NbiError(
        `NBI: flow.${k} is not a flow option${hint}; expected some of ${FLOW_KEYS.join(", ")}`,
      );
    }
  }
  const { type = "maf", ...options } = config;
  if (type === "maf") return maf({ ...options, contextDim });
  if (type === "nsf") return nsf({ ...options, contextDim });
  return fail("NBI", "flow.type", '"maf" or "nsf"', type);
}

/**
 * The surrogate network for observations of `dataShape` ([L] or [C, L]) and `nDims` parameters.
 * With `gaps` (the gapped observation model) the featurizer takes 3 channels per data channel.
 *
 * @example
 * ```ts
 * const net = inference.posteriorNetwork({ nDims: 3 }, { type: "resnet-gru", dimIn: 1, depth: 3 }, [200]);
 * net.inputShape; // [1, 200]
 * ```
 */
export function posteriorNetwork(
  flowSpec: FlowConfig | Flow,
  featurizerSpec: FeaturizerConfig | Featurizer,
  dataShape: readonly number[],
  gaps?: GappedLightCurves,
): PosteriorNetwork {
  if (dataShape.length < 1 || dataShape.length > 2 || dataShape.some((d) => !(d >= 1))) {
    fail("NBI", "dataShape", "[length] or [channels, length]", dataShape);
  }
  const inputShape: [number, number] =
    dataShape.length === 1 ? [1, dataShape[0]!] : [dataShape[0]!, dataShape[1]!];
  const featurizer = resolve(featurizerSpec);
  const custom = typeof (flowSpec as Flow).logProb === "function";
  const flow = custom
    ? (flowSpec as Flow)
    : flowFromConfig(flowSpec as FlowConfig, featurizer.dimOut);
  const normalBase = !custom && ((flowSpec as FlowConfig).nMog ?? 1) <= 1;
  if (flow.contextDim !== featurizer.dimOut) {
    throw new NbiError(
      `NBI: flow.contextDim expected the featurizer's dimOut (${featurizer.dimOut}), got ${flow.contextDim}`,
    );
  }
  const context = (params: PosteriorParams, xs: Array) => featurizer.apply(params.featurizer, xs);
  return {
    flow,
    featurizer,
    nDims: flow.nDims,
    inputShape,
    dataSize: inputShape[0] * inputShape[1],
    context,
    normalBase,
    logProbStd: (params, xs, thetas) => flow.logProb(params.flow, thetas, context(params, xs)),
    ...(gaps ? { gaps } : {}),
  };
}

/**
 * Fresh parameters on the default backend. Initialisers read values on the host, so they run on
 * the CPU and the result moves to the default backend.
 *
 * @example
 * ```ts
 * const net = inference.posteriorNetwork({ nDims: 2 }, { type: "mlp", dimIn: 50, dimOut: 16 }, [50]);
 * const params = await inference.initPosterior(net, inference.hostKey(0)); // { featurizer, flow }
 * ```
 */
export async function initPosterior(net: PosteriorNetwork, key: Array): Promise<PosteriorParams> {
  const params = onCpu(() => {
    const [kf, kq] = random.splitList(key, 2);
    return { featurizer: net.featurizer.init(kf!), flow: net.flow.init(kq!) } as PosteriorParams;
  });
  return moveParams(params, defaultBackend().name);
}

/** Copies every leaf of a parameter tree to a backend. */
export async function moveParams<T>(params: T, backend: "cpu" | "webgpu"): Promise<T> {
  const [leaves, def] = tree.flatten(params);
  const moved = await Promise.all(leaves.map((l) => np.toBackend(l as Array, backend)));
  return tree.unflatten(def, moved) as T;
}

/** Reads an array back to the host as float64. */
export async function toHost64(x: Array): Promise<Float64Array> {
  const d = await x.data();
  return d instanceof Float64Array ? d : Float64Array.from(d as ArrayLike<number>);
}

/**
 * Standardisation fitted to a dataset: per-channel over all samples and positions; per θ dim, of
 * θ's unbounded image when `bounds` (the prior's support) has finite ends.
 */
export function fitScales(
  x: Float32Array,
  thetaRaw: Float64Array,
  inputShape: readonly [number, number],
  nDims: number,
  weights?: Float64Array,
  bounds?: SupportBounds,
): Scales {
  const support =
    bounds && isBounded(bounds)
      ? {
          thetaLower: Float64Array.from(bounds.thetaLower!),
          thetaUpper: Float64Array.from(bounds.thetaUpper!),
          ...(bounds.boundedMap ? { boundedMap: bounds.boundedMap } : {}),
        }
      : undefined;
  const theta = support ? supportMap(support).forwardAndLogDet(thetaRaw, nDims).value : thetaRaw;
  const [C, L] = inputShape;
  const n = theta.length / nDims;
  const xMean = new Float64Array(C);
  const xVar = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const base = i * C * L + c * L;
      for (let l = 0; l < L; l++) {
        const v = x[base + l]!;
        s += v;
        s2 += v * v;
      }
    }
    const m = s / (n * L);
    xMean[c] = m;
    xVar[c] = Math.max(s2 / (n * L) - m * m, 0);
  }
  const thetaMean = new Float64Array(nDims);
  const thetaStd = new Float64Array(nDims);
  let wSum = 0;
  for (let i = 0; i < n; i++) wSum += weights ? weights[i]! : 1;
  for (let j = 0; j < nDims; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += (weights ? weights[i]! : 1) * theta[i * nDims + j]!;
    const m = s / wSum;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const d = theta[i * nDims + j]! - m;
      v += (weights ? weights[i]! : 1) * d * d;
    }
    thetaMean[j] = m;
    thetaStd[j] = Math.sqrt(v / wSum) || 1;
  }
  return {
    xMean,
    xStd: xVar.map((v) => Math.sqrt(v) || 1),
    thetaMean,
    thetaStd,
    ...(support ?? {}),
  };
}

/**
 * The map T from θ (user's units) to the flow's coordinates s: the support map, then the
 * standardisation of its image, as one host bijector chain. A surrogate's density is
 * q(θ | x) = q_s(T(θ) | x) · |det ∂T/∂θ|, the log-det summed by the chain (bijectors/host.ts).
 *
 * @example
 * ```ts
 * const { value, logDet } = inference.thetaMap(checkpoint.scales).forwardAndLogDet(theta, d);
 * ```
 */
export function thetaMap(scales: Scales): HostBijector {
  return hostChain([hostStandardise(scales.thetaMean, scales.thetaStd), supportMap(scales)]);
}

/** θ rows as the flow sees them: T(θ) in float32 (see `thetaMap`) and log |det ∂T/∂θ| per row. */
export function standardiseTheta(
  scales: Scales,
  theta: Float64Array,
  d: number,
): { ts: Float32Array; logJac: Float64Array } {
  const { value, logDet } = thetaMap(scales).forwardAndLogDet(theta, d);
  return { ts: Float32Array.from(value), logJac: logDet };
}

/** The flow's draws (n × d) back in the user's units: T⁻¹ (see `thetaMap`). */
export function destandardiseTheta(scales: Scales, s: ArrayLike<number>, d: number): Float64Array {
  return thetaMap(scales).inverse(Float64Array.from(s), d);
}

/** A trained surrogate: its parameters and the standardisation they were trained with. */
export interface Checkpoint {
  /** The network's parameters. */
  readonly params: PosteriorParams;
  /** The data and parameter scales of the round that trained them. */
  readonly scales: Scales;
}

/**
 * The surrogate q(θ | x) as one value: the network, its trained parameters and the
 * standardisation they were trained with. The host-level functions below take it.
 */
export interface Surrogate {
  /** The network (featurizer and flow). */
  readonly net: PosteriorNetwork;
  /** Its trained parameters. */
  readonly params: PosteriorParams;
  /** The data and parameter scales they were trained with. */
  readonly scales: Scales;
}

/**
 * The surrogate of a network and a checkpoint.
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint); // { net, params, scales }
 * const logQ = await inference.surrogateLogProb(surrogate, xObs, theta);
 * ```
 */
export function surrogateOf(net: PosteriorNetwork, checkpoint: Checkpoint): Surrogate {
  return { net, params: checkpoint.params, scales: checkpoint.scales };
}

// ---------------------------------------------------------------------------------------------
// Host-level evaluation: observations and θ in the user's units, as float64 on the host.

interface Compiled {
  /** log q(θs | context) in standardised θ: ctx [n, F], ts [n, d] → [n]. */
  flowLogProb: (p: PosteriorParams, ctx: Array, ts: Array) => Array;
  context: (p: PosteriorParams, xs: Array) => Array;
  /** n standardised samples for a context [n, F]. */
  sample: (p: PosteriorParams, key: Array, n: number, ctx: Array) => Array;
  /** The base point u = f⁻¹(θs) as Σu² [n], and log |det ∂u/∂θs| [n] (normal-base flows). */
  latent: (p: PosteriorParams, ctx: Array, ts: Array) => readonly [Array, Array];
  /** n standardised samples with the base noise scaled by tau (normal-base flows). */
  sampleScaled: (p: PosteriorParams, key: Array, n: number, ctx: Array, tau: Array) => Array;
}
const compiledCache = new WeakMap<PosteriorNetwork, Compiled>();

function compiled(net: PosteriorNetwork): Compiled {
  let c = compiledCache.get(net);
  if (!c) {
    c = {
      flowLogProb: jit((p: PosteriorParams, ctx: Array, ts: Array) =>
        net.flow.logProb(p.flow, ts, ctx),
      ),
      context: jit((p: PosteriorParams, xs: Array) => net.context(p, xs)),
      sample: jit(
        (p: PosteriorParams, key: Array, n: number, ctx: Array) =>
          net.flow.sample(p.flow, key, n, ctx),
        { staticArgnums: [2] },
      ),
      latent: jit((p: PosteriorParams, ctx: Array, ts: Array) => {
        const [u, ld] = net.flow.bijector(p.flow).inverseAndLogDet(ts, ctx);
        return [np.sum(np.square(u), { axis: -1 }), ld] as const;
      }),
      sampleScaled: jit(
        (p: PosteriorParams, key: Array, n: number, ctx: Array, tau: Array) =>
          net.flow.bijector(p.flow).forward(np.mul(random.normal(key, [n, net.nDims]), tau), ctx),
        { staticArgnums: [2] },
      ),
    };
    compiledCache.set(net, c);
  }
  return c;
}

/**
 * Standardised observations [m, C, L] on the default backend from m raw observations; for a
 * network with the gapped observation model, m packed observations encoded as [m, 3C, L].
 */
export function standardiseX(
  net: PosteriorNetwork,
  scales: Scales,
  x: Float32Array | Float64Array,
): Array {
  if (net.gaps) return encodePacked(x, net.inputShape, scales.xMean, scales.xStd);
  const [C, L] = net.inputShape;
  const m = x.length / net.dataSize;
  const out = new Float32Array(x.length);
  for (let i = 0; i < m; i++)
    for (let c = 0; c < C; c++)
      for (let l = 0; l < L; l++) {
        const j = i * C * L + c * L + l;
        out[j] = (x[j]! - scales.xMean[c]!) / scales.xStd[c]!;
      }
  return np.reshape(np.array(out, { dtype: "float32" }), [m, C, L]);
}

const CHUNK = 8192;

/**
 * log q(θ | x) in the user's units. `xObs` is one observation (shared by all θ) or one per θ.
 * −Infinity where the flow's density is not finite.
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint);
 * const logQ = await inference.surrogateLogProb(surrogate, xObs, theta); // one per row of θ
 * ```
 */
export async function surrogateLogProb(
  surrogate: Surrogate,
  xObs: Float32Array | Float64Array,
  theta: Float64Array,
): Promise<Float64Array> {
  const { net, params, scales } = surrogate;
  const d = net.nDims;
  const n = theta.length / d;
  const size = observationSize(net);
  const shared = xObs.length === size;
  const fns = compiled(net);
  const tau = scales.baseScale ?? 1;
  const sharedCtx = shared ? fns.context(params, standardiseX(net, scales, xObs)) : undefined;
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += CHUNK) {
    const m = Math.min(CHUNK, n - start);
    const { ts, logJac } = standardiseTheta(scales, theta.subarray(start * d, (start + m) * d), d);
    const ctx = sharedCtx
      ? np.broadcastTo(sharedCtx, [m, sharedCtx.shape[1]!])
      : fns.context(
          params,
          standardiseX(net, scales, xObs.subarray(start * size, (start + m) * size)),
        );
    const tsArr = np.reshape(np.array(ts, { dtype: "float32" }), [m, d]);
    const lp =
      tau === 1
        ? await fns.flowLogProb(params, ctx, tsArr).data()
        : await scaledBaseLogProb(fns, params, ctx, tsArr, tau, d);
    for (let i = 0; i < m; i++) {
      const v = lp[i]! + logJac[i]!;
      out[start + i] = Number.isFinite(v) ? v : Number.NEGATIVE_INFINITY;
    }
  }
  return outsideExactMap(scales, theta, d, out);
}

/** log q in standardised θ for a base of scale τ: log N(u; 0, τ²I) + log |det ∂u/∂θs|. */
async function scaledBaseLogProb(
  fns: Compiled,
  params: PosteriorParams,
  ctx: Array,
  ts: Array,
  tau: number,
  d: number,
): Promise<Float64Array> {
  const [u2, ld] = fns.latent(params, ctx, ts);
  const [sq, logDet] = [await u2.data(), await ld.data()];
  const out = new Float64Array(sq.length);
  for (let i = 0; i < out.length; i++) out[i] = scaledNormalLogPdf(sq[i]!, tau, d) + logDet[i]!;
  return out;
}

/** log N(u; 0, τ²I) in d dimensions from Σu². */
function scaledNormalLogPdf(sq: number, tau: number, d: number): number {
  return (-0.5 * sq) / (tau * tau) - d * Math.log(tau) - 0.5 * d * Math.log(2 * Math.PI);
}

/** −∞ at rows the support's map cannot take exactly (see `mapsExactly`): the flow's density there is not the one evaluated. */
function outsideExactMap(
  scales: Scales,
  theta: Float64Array,
  d: number,
  logQ: Float64Array,
): Float64Array {
  const exact = mapsExactly(scales, theta, d);
  for (let i = 0; i < logQ.length; i++) if (!exact[i]) logQ[i] = Number.NEGATIVE_INFINITY;
  return logQ;
}

/**
 * n draws from q(θ | x) for each of m observations (xObs holds m × dataSize numbers): float64,
 * [m, n, d] row-major in the user's units. The featurizer runs once per observation and the flow
 * once per chunk of draws with the contexts repeated, so many observations cost one pass.
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint);
 * const draws = await inference.surrogateSample(surrogate, inference.hostKey(1), xObs, 1000); // 1000 × d
 * ```
 */
export async function surrogateSample(
  surrogate: Surrogate,
  key: Array,
  xObs: Float32Array | Float64Array,
  n: number,
): Promise<Float64Array> {
  const { net, params, scales } = surrogate;
  const d = net.nDims;
  const m = xObs.length / observationSize(net);
  const fns = compiled(net);
  const ctxAll = fns.context(params, standardiseX(net, scales, xObs)); // [m, F]
  const F = ctxAll.shape[1]!;
  const total = m * n;
  const out = new Float64Array(total * d);
  const perChunk = Math.max(1, Math.floor(CHUNK / n)) * n;
  const tau = scales.baseScale ?? 1;
  let chunkIndex = 0;
  for (let start = 0; start < total; start += perChunk, chunkIndex++) {
    const rows = Math.min(perChunk, total - start);
    const obs = np.array(
      Int32Array.from({ length: rows }, (_, i) => Math.floor((start + i) / n)),
      { dtype: "int32" },
    );
    const ctx = np.reshape(np.take(ctxAll, obs, 0), [rows, F]);
    const k = deviceKey(random.splitAt(key, chunkIndex + 1, chunkIndex));
    const drawn =
      tau === 1
        ? fns.sample(params, k, rows, ctx)
        : fns.sampleScaled(params, k, rows, ctx, np.array(tau, { dtype: "float32" }));
    out.set(destandardiseTheta(scales, await drawn.data(), d), start * d);
  }
  return out;
}

/**
 * The featurizer's outputs (the flow's context vectors) for m raw observations (m × dataSize),
 * float64 on the host, m × dimOut row-major: the space the out-of-distribution check measures in.
 * Runs in chunks of 256 observations so a large training set does not hold every activation.
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint);
 * const features = await inference.surrogateContexts(surrogate, xs); // m × net.featurizer.dimOut
 * ```
 */
export async function surrogateContexts(
  surrogate: Surrogate,
  x: Float32Array | Float64Array,
): Promise<Float64Array> {
  const { net, params, scales } = surrogate;
  const size = observationSize(net);
  const m = x.length / size;
  const F = net.featurizer.dimOut;
  const fns = compiled(net);
  const out = new Float64Array(m * F);
  const chunk = 256;
  for (let start = 0; start < m; start += chunk) {
    const rows = Math.min(chunk, m - start);
    const xs = x.subarray(start * size, (start + rows) * size);
    const ctx = await fns.context(params, standardiseX(net, scales, xs)).data();
    for (let i = 0; i < rows * F; i++) out[start * F + i] = ctx[i]!;
  }
  return out;
}

/** A host (CPU) key as a key array on the default backend. */
export function deviceKey(key: Array): Array {
  return np.array(key.dataSync() as Uint32Array, { dtype: "uint32" });
}

/**
 * A defensive proposal for importance sampling (Hesterberg 1995): the surrogate mixed with a
 * broadened copy of itself, (1 − α) q + α q_τ, where q_τ pushes base noise of scale τ through the
 * same flow. Where the surrogate is too narrow the broad component bounds the weights, so a
 * slightly overconfident surrogate no longer gives a handful of huge weights. Needs a flow with a
 * standard-normal base (nMog = 1).
 */
export interface Defensive {
  /** Share of draws from the broadened component. */
  readonly alpha: number;
  /** Scale of its base noise. */
  readonly tau: number;
}

/**
 * n draws from the proposal: the surrogate, or with `defensive` the mixture (1 − α) q + α q_τ
 * (each draw's component chosen at random, so the draws follow the mixture density exactly).
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint);
 * const theta = await inference.proposalSample(surrogate, inference.hostKey(2), xObs, 1000, inference.DEFAULT_DEFENSIVE);
 * ```
 */
export async function proposalSample(
  surrogate: Surrogate,
  key: Array,
  xObs: Float32Array | Float64Array,
  n: number,
  defensive?: Defensive,
): Promise<Float64Array> {
  const { net, params, scales } = surrogate;
  const [k0, k1, k2] = random.hostSplit(key, 3);
  if (!defensive) return surrogateSample(surrogate, key, xObs, n);
  const d = net.nDims;
  const u = uniforms(k0!, n);
  let nBroad = 0;
  for (const v of u) if (v < defensive.alpha) nBroad++;
  const out = new Float64Array(n * d);
  if (n - nBroad > 0) out.set(await surrogateSample(surrogate, k1!, xObs, n - nBroad));
  if (nBroad > 0) {
    const fns = compiled(net);
    const ctx = fns.context(params, standardiseX(net, scales, xObs));
    const c = np.broadcastTo(ctx, [nBroad, ctx.shape[1]!]);
    const s = await fns
      .sampleScaled(
        params,
        deviceKey(k2!),
        nBroad,
        c,
        np.array(defensive.tau * (scales.baseScale ?? 1), { dtype: "float32" }),
      )
      .data();
    out.set(destandardiseTheta(scales, s, d), (n - nBroad) * d);
  }
  return out;
}

/**
 * log density of the proposal (the surrogate, or the defensive mixture) in the user's units:
 * the q of the importance weights p(x|θ) p(θ) / q(θ).
 *
 * @example
 * ```ts
 * const surrogate = inference.surrogateOf(net, checkpoint);
 * const logQ = await inference.proposalLogProb(surrogate, xObs, theta, inference.DEFAULT_DEFENSIVE);
 * ```
 */
export async function proposalLogProb(
  surrogate: Surrogate,
  xObs: Float32Array | Float64Array,
  theta: Float64Array,
  defensive?: Defensive,
): Promise<Float64Array> {
  return defensive
    ? defensiveLogProb(surrogate, xObs, theta, defensive)
    : surrogateLogProb(surrogate, xObs, theta);
}

/** log((1 − α) q(θ | x) + α q_τ(θ | x)) in the user's units. */
export async function defensiveLogProb(
  surrogate: Surrogate,
  xObs: Float32Array | Float64Array,
  theta: Float64Array,
  defensive: Defensive,
): Promise<Float64Array> {
  const { net, scales } = surrogate;
  const d = net.nDims;
  const n = theta.length / d;
  const { sq, logDet, logJac } = await surrogateLatent(surrogate, xObs, theta);
  const { alpha, tau } = defensive;
  // The calibrated base scale (1 for most surrogates) widens both components alike.
  const base = scales.baseScale ?? 1;
  const broad = base * tau;
  const half = 0.5 * d * Math.log(2 * Math.PI);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = Math.log1p(-alpha) - (0.5 * sq[i]!) / (base * base) - d * Math.log(base) - half;
    const b = Math.log(alpha) - (0.5 * sq[i]!) / (broad * broad) - d * Math.log(broad) - half;
    const m = Math.max(a, b);
    const v = m + Math.log(Math.exp(a - m) + Math.exp(b - m)) + logDet[i]! + logJac[i]!;
    out[i] = Number.isFinite(v) ? v : Number.NEGATIVE_INFINITY;
  }
  return outsideExactMap(scales, theta, d, out);
}

/** Where rows of θ sit in a flow's normal base (`surrogateLatent`). */
export interface LatentPoints {
  /** Σu² of each row's base point u = f⁻¹(θs). */
  readonly sq: Float64Array;
  /** log |det ∂u/∂θs| of each row: the flow's, in standardised θ. */
  readonly logDet: Float64Array;
  /**
   * log |det ∂θs/∂θ| of each row: the standardisation's (and the support's map); logDet +
   * logJac is log |det ∂u/∂θ| in the user's units.
   */
  readonly logJac: Float64Array;
}

/**
 * The base point of each row of θ under the surrogate, for calibrating its spread (spread.ts):
 * Σu² of u = f⁻¹(θs) and the log-determinants from θ to u (the flow's and the
 * standardisation's), whatever the checkpoint's base scale. Needs a normal-base flow.
 *
 * @example
 * ```ts
 * const { sq, logDet } = await inference.surrogateLatent(surrogate, xObs, theta); // one each per row
 * ```
 */
export async function surrogateLatent(
  surrogate: Surrogate,
  xObs: Float32Array | Float64Array,
  theta: Float64Array,
): Promise<LatentPoints> {
  const { net, params, scales } = surrogate;
  const d = net.nDims;
  const n = theta.length / d;
  const fns = compiled(net);
  const ctx = fns.context(params, standardiseX(net, scales, xObs));
  const { ts, logJac } = standardiseTheta(scales, theta, d);
  const [u2, ld] = fns.latent(
    params,
    np.broadcastTo(ctx, [n, ctx.shape[1]!]),
    np.reshape(np.array(ts, { dtype: "float32" }), [n, d]),
  );
  return {
    sq: Float64Array.from(await u2.data()),
    logDet: Float64Array.from(await ld.data()),
    logJac: Float64Array.from(logJac),
  };
}
