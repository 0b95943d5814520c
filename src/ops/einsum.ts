/**
 * `einsum` for one or two operands, lowered to transpose + reshape + one batched matmul (so its
 * gradient is the matmul's: no large intermediates). Index letters that repeat within one operand
 * (diagonals, traces) are refused with a clear error.
 */
import { fail } from "../errors.js";
import type { Array, ArrayLike } from "../trace/array.js";
import * as np from "./numpy.js";

function parse(spec: string, nOperands: number): { inputs: string[]; output: string } {
  const clean = spec.replace(/\s+/g, "");
  const [lhs, rhs] = clean.split("->") as [string, string | undefined];
  const inputs = lhs.split(",");
  if (inputs.length !== nOperands) {
    fail("einsum", "spec", `${nOperands} comma-separated operand subscripts`, spec);
  }
  for (const s of [...inputs, rhs ?? ""]) {
    if (!/^[a-zA-Z]*$/.test(s)) fail("einsum", "spec", "letters only (no ellipsis)", spec);
    if (new Set(s).size !== s.length) {
      fail(
        "einsum",
        "spec",
        "no index repeated within one operand (diagonals are not supported)",
        spec,
      );
    }
  }
  let output = rhs;
  if (output === undefined) {
    const counts = new Map<string, number>();
    for (const c of inputs.join("")) counts.set(c, (counts.get(c) ?? 0) + 1);
    output = [...counts.entries()]
      .filter(([, n]) => n === 1)
      .map(([c]) => c)
      .sort()
      .join("");
  }
  const all = inputs.join("");
  for (const c of output)
    if (!all.includes(c)) fail("einsum", "spec", `output index ${c} to appear in an input`, spec);
  return { inputs, output };
}

function sizes(subs: string, x: Array, map: Map<string, number>, spec: string): void {
  if (subs.length !== x.ndim)
    fail("einsum", "spec", `${x.ndim} indices for an operand of rank ${x.ndim}`, spec);
  [...subs].forEach((c, i) => {
    const d = x.shape[i]!;
    const prev = map.get(c);
    if (prev !== undefined && prev !== d && prev !== 1 && d !== 1) {
      fail("einsum", "spec", `index ${c} to have one size`, `${prev} and ${d}`);
    }
    map.set(c, prev === undefined || prev === 1 ? d : prev);
  });
}

/** Sums away the indices of `subs` not in `keep`. */
function sumOut(x: Array, subs: string, keep: string): [Array, string] {
  const axes = [...subs].flatMap((c, i) => (keep.includes(c) ? [] : [i]));
  if (axes.length === 0) return [x, subs];
  return [np.sum(x, { axis: axes }), [...subs].filter((c) => keep.includes(c)).join("")];
}

function permuteTo(x: Array, subs: string, order: string): Array {
  return np.transpose(
    x,
    [...order].map((c) => subs.indexOf(c)),
  );
}

/**
 * Einstein summation over one or two operands, e.g. `einsum("bij,bjk->bik", a, b)`.
 *
 * @example
 * ```ts
 * const a = np.ones([4, 2, 3]);
 * const b = np.ones([4, 3, 5]);
 * np.einsum("bij,bjk->bik", a, b).shape; // [4, 2, 5]
 * np.einsum("ij->j", np.eye(3)).tolist(); // column sums: [1, 1, 1]
 * ```
 */
export function einsum(spec: string, ...operands: ArrayLike[]): Array {
  if (operands.length < 1 || operands.length > 2) {
    fail("einsum", "operands", "one or two arrays", operands.length);
  }
  const { inputs, output } = parse(spec, operands.length);
  const size = new Map<string, number>();
  const xs = operands.map((o, i) => {
    const a = np.asArray(o);
    sizes(inputs[i]!, a, size, spec);
    return a;
  });
  if (xs.length === 1) {
    const [x, subs] = sumOut(xs[0]!, inputs[0]!, output);
    return permuteTo(x, subs, output);
  }
  const [sa, sb] = inputs as [string, string];
  const [a, subsA] = sumOut(xs[0]!, sa, output + sb);
  const [b, subsB] = sumOut(xs[1]!, sb, output + sa);
  const batch = [...subsA].filter((c) => subsB.includes(c) && output.includes(c)).join("");
  const contract = [...subsA].filter((c) => subsB.includes(c) && !output.includes(c)).join("");
  const freeA = [...subsA].filter((c) => !subsB.includes(c)).join("");
  const freeB = [...subsB].filter((c) => !subsA.includes(c)).join("");
  const prod = (s: string) => [...s].reduce((p, c) => p * size.get(c)!, 1);
  // Broadcast size-1 batch/contract axes so both operands agree before folding.
  const full = (x: Array, subs: string, order: string) =>
    np.broadcastTo(
      permuteTo(x, subs, order),
      [...order].map((c) => size.get(c)!),
    );
  const left = np.reshape(full(a, subsA, batch + freeA + contract), [
    prod(batch),
    prod(freeA),
    prod(contract),
  ]);
  const right = np.reshape(full(b, subsB, batch + contract + freeB), [
    prod(batch),
    prod(contract),
    prod(freeB),
  ]);
  const product = np.matmul(left, right);
  const natural = batch + freeA + freeB;
  const unfolded = np.reshape(
    product,
    [...natural].map((c) => size.get(c)!),
  );
  return permuteTo(unfolded, natural, output);
}
