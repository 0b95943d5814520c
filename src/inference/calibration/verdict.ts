/**
 * The verdict of a calibration: what the statistics say, in words, with sizes. A user reading
 * "over-confident: the 90% highest-density region covers 71% of true parameters (expected
 * 90% ± 1.3%)" knows what is wrong and how badly without reading a p-value table.
 *
 * Each test runs at the familywise significance divided by the number of tests (Bonferroni over
 * three SBC tests per parameter, HPD coverage and TARP), so a calibrated posterior is flagged by
 * chance in at most `significance` of calibrations.
 */
import type { HpdCoverage, LevelCoverage } from "./coverage.js";
import type { SbcParameter, SbcResult } from "./sbc.js";
import type { TarpResult } from "./tarp.js";

/** What a finding says is wrong. */
export type FindingKind =
  /** Regions or ranks say the posterior is too narrow. */
  | "over-confident"
  /** Too wide (conservative). */
  | "under-confident"
  /** One parameter's draws sit on one side of the truth. */
  | "biased"
  /** HPD regions cover too little, and a bias found by SBC can account for it. */
  | "misplaced"
  /** A departure from uniformity without a clear direction. */
  | "non-uniform";

/** One thing the statistics found, in words. */
export interface Finding {
  /** What was found: bias, over- or under-confidence, or ranks that are not uniform. */
  readonly kind: FindingKind;
  /** The test that found it: SBC ranks, HPD expected coverage or TARP. */
  readonly test: "sbc" | "hpd" | "tarp";
  /** The parameter concerned (SBC findings). */
  readonly parameter?: string;
  /** The p-value behind it. */
  readonly pValue: number;
  /** The finding in words, with its size. */
  readonly message: string;
}

/** The verdict: calibrated or not, one summary line, and the findings behind it. */
export interface Verdict {
  /** True when no test rejected calibration at the adjusted threshold. */
  readonly calibrated: boolean;
  /** One line: the main findings, or what calibration looks like here. */
  readonly summary: string;
  /** Every finding, joint tests (HPD) first, then SBC by p-value, then TARP. */
  readonly findings: readonly Finding[];
  /** The familywise significance level. */
  readonly significance: number;
  /** The per-test threshold (significance / number of tests). */
  readonly threshold: number;
}

/** Inputs of `calibrationVerdict`. */
export interface VerdictInput {
  readonly sbc: SbcResult;
  readonly coverage: HpdCoverage;
  readonly tarp: TarpResult;
  /** Familywise significance level (default 0.05). */
  readonly significance?: number;
  /** Test pairs requested and the ones whose simulation failed (left out). */
  readonly requested?: number;
  readonly failed?: number;
}

const percent = (v: number, digits = 1) => `${(100 * v).toFixed(digits)}%`;
const levelText = (v: number) => `${+(100 * v).toFixed(1)}%`;

/** A p-value as text: three significant digits, or an exponent when tiny. */
export function formatPValue(p: number): string {
  if (!Number.isFinite(p)) return String(p);
  if (p === 0) return "p < 1e-300";
  return p < 1e-3 ? `p = ${p.toExponential(1)}` : `p = ${p.toPrecision(2)}`;
}

/** The quoted level whose coverage is furthest from nominal (90% unless another is clearly worse). */
function worstLevel(atLevels: readonly LevelCoverage[]): LevelCoverage {
  let worst = atLevels.find((c) => c.level === 0.9) ?? atLevels[0]!;
  const gap = (c: LevelCoverage) => Math.abs(c.coverage - c.level);
  for (const c of atLevels) if (gap(c) > gap(worst) + 0.01) worst = c;
  return worst;
}

function regionText(c: LevelCoverage, note?: string): string {
  return (
    `the ${levelText(c.level)} highest-density region covers ${percent(c.coverage)} of true parameters ` +
    `(expected ${levelText(c.level)} ± ${percent(c.se)}${note ? `; ${note}` : ""})`
  );
}

function sbcFindings(p: SbcParameter, threshold: number): Finding[] {
  const out: Finding[] = [];
  const biased = p.meanPValue < threshold;
  if (biased) {
    const low = p.meanRank < 0.5;
    out.push({
      kind: "biased",
      test: "sbc",
      parameter: p.label,
      pValue: p.meanPValue,
      message:
        `biased in ${p.label}: ranks skewed ${low ? "low" : "high"} (mean normalised rank ` +
        `${p.meanRank.toFixed(2)}, expected 0.50 ± ${p.meanRankSe.toFixed(2)}): the posterior ` +
        `${low ? "overestimates" : "underestimates"} ${p.label}, its draws lying ` +
        `${low ? "above" : "below"} the true value ${percent(low ? 1 - p.meanRank : p.meanRank, 0)} of the time`,
    });
  }
  // A shifted rank distribution also changes the ranks' variance: a spread signal weaker than
  // the shift is the shift's echo, not a finding of its own.
  const spread =
    p.variancePValue < threshold && (!biased || Math.abs(p.varianceZ) > Math.abs(p.meanZ));
  if (spread) {
    const wide = p.rankVariance > p.expectedVariance;
    const sd = (p.rankVariance - p.expectedVariance) / p.varianceZ;
    out.push({
      kind: wide ? "over-confident" : "under-confident",
      test: "sbc",
      parameter: p.label,
      pValue: p.variancePValue,
      message:
        `${wide ? "over" : "under"}-confident in ${p.label}: ranks ${wide ? "pile up at both ends" : "bunch in the middle"} ` +
        `(rank variance ${p.rankVariance.toFixed(3)}, expected ${p.expectedVariance.toFixed(3)} ± ${Math.abs(sd).toFixed(3)})`,
    });
  }
  if (out.length === 0 && p.pValue < threshold) {
    out.push({
      kind: "non-uniform",
      test: "sbc",
      parameter: p.label,
      pValue: p.pValue,
      message:
        `ranks of ${p.label} not uniform (χ² ${p.chiSquare.toFixed(1)} on ${p.dof} degrees of freedom, ` +
        `${formatPValue(p.pValue)}) without a clear bias or spread`,
    });
  }
  return out;
}

/**
 * The verdict of SBC, HPD coverage and TARP results, in words with sizes.
 *
 * @example
 * ```ts
 * const v = calibrationVerdict({ sbc: s, coverage: hpd, tarp: t });
 * v.summary; // "over-confident: the 90% highest-density region covers 44.0% of true parameters (expected 90% ± 1.3%); ..."
 * ```
 */
export function calibrationVerdict(input: VerdictInput): Verdict {
  const { sbc, coverage, tarp } = input;
  const significance = input.significance ?? 0.05;
  const tests = 3 * sbc.parameters.length + 2;
  const threshold = significance / tests;
  const sbcOnes = sbc.parameters
    .flatMap((p) => sbcFindings(p, threshold))
    .sort((a, b) => a.pValue - b.pValue);
  const findings: Finding[] = [];
  if (coverage.pValue < threshold) {
    const worst = worstLevel(coverage.atLevels);
    const low = coverage.area < 0;
    const biasedIn = sbcOnes.filter((f) => f.kind === "biased").map((f) => f.parameter!);
    const narrow = sbcOnes.some((f) => f.kind === "over-confident");
    const test = `KS ${formatPValue(coverage.pValue)}`;
    if (low && biasedIn.length > 0 && !narrow) {
      findings.push({
        kind: "misplaced",
        test: "hpd",
        pValue: coverage.pValue,
        message: `regions misplaced: ${regionText(worst, test)}, which the bias in ${biasedIn.join(", ")} can account for`,
      });
    } else {
      findings.push({
        kind: low ? "over-confident" : "under-confident",
        test: "hpd",
        pValue: coverage.pValue,
        message: `${low ? "over-confident" : "under-confident (conservative)"}: ${regionText(worst, test)}`,
      });
    }
  }
  findings.push(...sbcOnes);
  if (tarp.pValue < threshold) {
    // The area above ½ has a direction only when it is clearly away from 0: a bias tilts
    // TARP's curve without widening or narrowing anything.
    const direction = Math.abs(tarp.atc) < 0.03 ? 0 : Math.sign(tarp.atc);
    const atc = `area above ½ ${tarp.atc >= 0 ? "+" : "−"}${Math.abs(tarp.atc).toFixed(3)}`;
    findings.push({
      kind: direction === 0 ? "non-uniform" : direction > 0 ? "under-confident" : "over-confident",
      test: "tarp",
      pValue: tarp.pValue,
      message:
        `${findings.length > 0 ? "TARP agrees: its" : "TARP: the"} coverage curve leaves the diagonal ` +
        `by up to ${tarp.ksStatistic.toFixed(2)} (${formatPValue(tarp.pValue)}; ${atc}` +
        `${direction > 0 ? ": regions too wide" : direction < 0 ? ": regions too narrow" : ""})`,
    });
  }
  const failed = input.failed ?? 0;
  const failedNote =
    failed > 0
      ? ` (${failed} of ${input.requested ?? coverage.nTest + failed} test simulations failed and were left out)`
      : "";
  let summary: string;
  if (findings.length === 0) {
    const at90 = coverage.atLevels.find((c) => c.level === 0.9) ?? coverage.atLevels[0]!;
    const smallest = Math.min(...sbc.parameters.map((p) => p.pValue));
    summary =
      `calibrated: ${regionText(at90)}; SBC ranks uniform for ${sbc.parameters.map((p) => p.label).join(", ")} ` +
      `(smallest χ² ${formatPValue(smallest)}); TARP ${formatPValue(tarp.pValue)}; ` +
      `${coverage.nTest} test pairs`;
  } else {
    summary = `${findings.map((f) => f.message).join("; ")}; ${coverage.nTest} test pairs`;
  }
  return {
    calibrated: findings.length === 0,
    summary: summary + failedNote,
    findings,
    significance,
    threshold,
  };
}
