import { describe, expect, it } from "vitest";
import * as dist from "../../src/bijectors/distributions.js";
import * as bij from "../../src/bijectors/index.js";
import { np, random } from "../../src/index.js";
import { testBackends, useTestBackend } from "../helpers/backends.js";

const f64 = { dtype: "float64" as const };
const close = (a: number, b: number, tol: number): void => {
  expect(Math.abs(a - b)).toBeLessThan(tol);
};

describe.each(testBackends())("distributions (%s)", (backend) => {
  useTestBackend(backend);

  it("normal: log-density formula, sample shape and moments", async () => {
    const d = dist.normal(np.array([1, -2]), np.array([0.5, 3]));
    expect(d.batchShape).toEqual([2]);
    const lp = await d.logProb(np.array([[1.5, 1]])).data();
    close(lp[0]!, -0.5 - Math.log(0.5) - 0.5 * Math.log(2 * Math.PI), 1e-5);
    close(lp[1]!, -0.5 - Math.log(3) - 0.5 * Math.log(2 * Math.PI), 1e-5);
    const s = d.sample(random.key(0), [20000]);
    expect(s.shape).toEqual([20000, 2]);
    const m = await np.mean(s, { axis: 0 }).data();
    const sd = await np.std(s, { axis: 0 }).data();
    close(m[0]!, 1, 0.02);
    close(m[1]!, -2, 0.1);
    close(sd[0]!, 0.5, 0.02);
    close(sd[1]!, 3, 0.1);
  });

  it("independent sums the event axis", async () => {
    const base = dist.normal(np.zeros([3]), 1);
    const d = dist.independent(base);
    expect(d.eventShape).toEqual([3]);
    const x = np.array([
      [0.1, -0.2, 0.3],
      [1, 2, 3],
    ]);
    const a = await d.logProb(x).data();
    const b = await np.sum(base.logProb(x), { axis: -1 }).data();
    close(a[0]!, b[0]!, 1e-6);
    close(a[1]!, b[1]!, 1e-6);
  });

  it("mixtureOfGaussians: density by hand, sample mean", async () => {
    const w = [0.3, 0.7];
    const d = dist.mixtureOfGaussians(
      np.log(np.array(w)),
      np.array([
        [-2, 0],
        [3, 1],
      ]),
      np.array([
        [1, 0.5],
        [0.5, 2],
      ]),
    );
    const x = [0.5, -0.3];
    const normalPdf = (v: number, m: number, s: number) =>
      Math.exp(-0.5 * ((v - m) / s) ** 2) / (s * Math.sqrt(2 * Math.PI));
    const want =
      w[0]! * normalPdf(x[0]!, -2, 1) * normalPdf(x[1]!, 0, 0.5) +
      w[1]! * normalPdf(x[0]!, 3, 0.5) * normalPdf(x[1]!, 1, 2);
    close((await d.logProb(np.array([x])).data())[0]!, Math.log(want), 1e-4);
    const m = await np.mean(d.sample(random.key(2), [20000]), { axis: 0 }).data();
    close(m[0]!, 0.3 * -2 + 0.7 * 3, 0.05);
    close(m[1]!, 0.7, 0.05);
  });
});

// dist.uniform checks hi > lo on the host values it was given (numbers, CPU arrays).
describe.each(testBackends())("distributions, uniform on %s", (backend) => {
  useTestBackend(backend);

  it("uniform: support, −∞ outside, samples inside", async () => {
    const d = dist.uniform(-1, 3);
    expect(await d.support!.lo.data()).toEqual(Float32Array.from([-1]));
    const lp = await d.logProb(np.array([-2, 0, 2.9, 3])).data();
    expect(lp[0]).toBe(-Infinity);
    close(lp[1]!, -Math.log(4), 1e-6);
    close(lp[2]!, -Math.log(4), 1e-6);
    expect(lp[3]).toBe(-Infinity);
    const s = await d.sample(random.key(1), [5000]).data();
    expect(Math.min(...s)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...s)).toBeLessThan(3);
    expect(() => dist.uniform(2, 1)).toThrow(/uniform: hi expected values greater than lo/);
  });
});

// float64 exists on the CPU backend only (WGSL has no float64).
describe("transformed distributions (cpu, float64)", () => {
  useTestBackend("cpu");
  it("exp of a normal is the log-normal", () => {
    const d = dist.transformed(dist.independent(dist.normal(np.zeros([1], f64), 1)), bij.exp());
    const y = 2.5;
    const want = -Math.log(y) - 0.5 * Math.log(2 * Math.PI) - 0.5 * Math.log(y) ** 2;
    close(d.logProb(np.array([[y]], f64)).item(), want, 1e-12);
  });
  it("sampleAndLogProb matches logProb at the samples", () => {
    const b = bij.chain([
      bij.affine(np.array([1, -1], f64), np.array([0.3, -0.2], f64)),
      bij.tanh(),
    ]);
    const d = dist.transformed(dist.independent(dist.normal(np.zeros([2], f64), 1)), b);
    const [s, lp] = d.sampleAndLogProb(random.key(3), [100]);
    const again = d.logProb(s).dataSync();
    lp.dataSync().forEach((v, i) => {
      close(v, again[i]!, 1e-9);
    });
  });
  it("a bounded prior pushed through invert(bounded) is a density on the reals that integrates to 1", () => {
    const prior = dist.independent(dist.uniform(np.array([-2], f64), np.array([5], f64)));
    const d = dist.transformed(
      prior,
      bij.invert(bij.bounded(np.array([-2], f64), np.array([5], f64))),
    );
    const n = 4001;
    const grid = np.reshape(np.linspace(-30, 30, n, f64), [n, 1]);
    const p = np.exp(d.logProb(grid)).dataSync();
    let s = 0;
    for (const v of p) s += v;
    close(s * (60 / (n - 1)), 1, 1e-6);
  });
});
