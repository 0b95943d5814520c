/**
 * A calibration result as text: a table of SBC statistics per parameter, the HPD coverage at the
 * quoted levels, TARP, and the verdict. What `nbi calibrate` prints.
 */
import type { CalibrationResult } from "./result.js";
import { formatPValue } from "./verdict.js";

const pad = (s: string, n: number) => s.padEnd(n);
const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const pValueCell = (p: number) =>
  p === 0 ? "<1e-300" : p < 1e-3 ? p.toExponential(1) : p.toPrecision(2);

/**
 * The result as lines of text (no trailing newline).
 *
 * @example
 * ```ts
 * console.log(formatCalibration(await engine.calibrate({ nTest: 200 })));
 * ```
 */
export function formatCalibration(result: CalibrationResult): string {
  const lines: string[] = [];
  lines.push(
    `calibration: ${result.nTest} test pairs × ${result.nSamples} posterior draws` +
      (result.failed.total > 0 ? ` (${result.failed.total} failed simulations left out)` : ""),
  );
  const width = Math.max(9, ...result.labels.map((l) => l.length)) + 2;
  lines.push(
    `${pad("parameter", width)}${pad("SBC χ²", 10)}${pad("p", 10)}${pad("mean rank", 16)}rank variance`,
  );
  for (const p of result.sbc.parameters) {
    lines.push(
      pad(p.label, width) +
        pad(`${p.chiSquare.toFixed(1)}/${p.dof}`, 10) +
        pad(pValueCell(p.pValue), 10) +
        pad(`${p.meanRank.toFixed(3)} ± ${p.meanRankSe.toFixed(3)}`, 16) +
        `${p.rankVariance.toFixed(4)} (uniform ${p.expectedVariance.toFixed(4)})`,
    );
  }
  const levels = result.coverage.atLevels
    .map((c) => `${Math.round(100 * c.level)}% → ${pct(c.coverage)} ± ${pct(c.se)}`)
    .join(", ");
  lines.push(
    `HPD coverage: ${levels}; ${formatPValue(result.coverage.pValue)} (KS), area ${result.coverage.area >= 0 ? "+" : "−"}${Math.abs(result.coverage.area).toFixed(3)}`,
  );
  lines.push(
    `TARP: largest gap ${result.tarp.ksStatistic.toFixed(3)}, ${formatPValue(result.tarp.pValue)} (KS), ATC ${result.tarp.atc >= 0 ? "+" : "−"}${Math.abs(result.tarp.atc).toFixed(3)}`,
  );
  const { verdict } = result;
  if (verdict.calibrated) lines.push(`verdict: ${verdict.summary}`);
  else {
    // One finding per line: the summary strings them together, which reads badly on a terminal.
    const n = verdict.findings.length;
    lines.push(`verdict: not calibrated, ${n} finding${n === 1 ? "" : "s"}:`);
    for (const f of verdict.findings) lines.push(`  - ${f.message}`);
  }
  return lines.join("\n");
}
