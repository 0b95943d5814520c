/** Reading observations from CSV: headers, columns, comments, and errors that say where. */
import { describe, expect, it } from "vitest";
import { observations, parseCsv, samplesTable } from "../../src/cli/data.js";

describe("CSV observations", () => {
  it("reads numbers row by row, skipping comments and blank lines", () => {
    const read = parseCsv("# fluxes\n1, 2\n\n3;4\n5 6\n", "x.csv");
    expect(Array.from(read.values)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(read.shape).toEqual([3, 2]);
    // Three observations of 2 values, or one of 6.
    expect(observations(read, 2, "x.csv").map((o) => Array.from(o))).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(observations(read, 6, "x.csv")).toHaveLength(1);
    expect(() => observations(read, 4, "x.csv")).toThrow(
      "x.csv: expected 4 numbers per observation (the model's data size), got 6 in 3 rows × 2 columns",
    );
  });

  it("picks a column by header name or index, and needs one when columns are named", () => {
    const text = "wavelength,flux,err\n6500,1.5,0.1\n6501,1.7,0.1\n";
    expect(Array.from(parseCsv(text, "s.csv", "flux").values)).toEqual([1.5, 1.7]);
    expect(Array.from(parseCsv(text, "s.csv", "2").values)).toEqual([0.1, 0.1]);
    expect(() => parseCsv(text, "s.csv", undefined, "--column")).toThrow(
      "s.csv has 3 named columns (wavelength, flux, err): choose the data column with --column",
    );
    expect(() => parseCsv(text, "s.csv", "fluxx")).toThrow(
      's.csv: column "fluxx" not found; the file has columns "wavelength", "flux", "err"',
    );
    expect(() => parseCsv("1,2\n3,x\n", "b.csv")).toThrow(
      'b.csv:2: expected numbers, got "x" (column 2)',
    );
  });

  it("reads nan and empty cells as missing values only where the caller allows them", () => {
    const text = "t,flux,err\n0,1.5,0.1\n1,nan,\n2,NaN,NAN\n3,,0.2\n4, 2.5 ,0.3\n";
    const flux = parseCsv(text, "lc.csv", "flux", undefined, { missing: true });
    expect(Array.from(flux.values)).toEqual([1.5, Number.NaN, Number.NaN, Number.NaN, 2.5]);
    expect(flux.lines).toEqual([2, 3, 4, 5, 6]);
    expect(flux.columns).toEqual(["flux"]);
    const err = parseCsv(text, "lc.csv", "err", undefined, { missing: true });
    expect(Array.from(err.values)).toEqual([0.1, Number.NaN, Number.NaN, 0.2, 0.3]);
    // Without a header: a first row with a missing value is data, not a header.
    const bare = parseCsv("nan 2 3\n4 NaN 6\n", "b.csv", undefined, undefined, { missing: true });
    expect(bare.columns).toBeUndefined();
    expect(Array.from(bare.values)).toEqual([Number.NaN, 2, 3, 4, Number.NaN, 6]);
    // Other text is still an error, and says what a missing value may look like.
    expect(() =>
      parseCsv("1,2\n3,n/a\n", "c.csv", undefined, undefined, { missing: true }),
    ).toThrow(
      'c.csv:2: expected numbers (or "nan" or an empty cell for a missing value), got "n/a" (column 2)',
    );
    // Every other reader (training data, a config's observation) stays strict.
    expect(() => parseCsv(text, "lc.csv", "flux")).toThrow(
      'lc.csv:3: expected numbers, got "nan" (column 2)',
    );
    expect(() => parseCsv("1,2,3\n1,,3\n", "e.csv")).toThrow(
      'e.csv:2: expected numbers, got "" (column 2)',
    );
  });

  it("lays out draws and weights with an observation column when there are several", () => {
    const one = { samples: Float64Array.of(1, 2, 3, 4), weights: Float64Array.of(0.25, 0.75) };
    const t = samplesTable([one, { ...one, obs: 1 }], ["a", "b"]);
    expect(t.columns).toEqual(["obs", "a", "b", "weight"]);
    expect(Array.from(t.data.subarray(0, 8))).toEqual([0, 1, 2, 0.25, 0, 3, 4, 0.75]);
  });
});
