/**
 * Observations in and posterior draws out, as CSV or NPY files.
 *
 * Reading: an NPY file's values in C order; a CSV file's numbers row by row (a first line with a
 * non-numeric cell is a header naming the columns; blank lines and lines starting with # are
 * skipped; cells are separated by commas, semicolons or whitespace). `column` (a header name or a
 * 0-based index) picks one column, e.g. the flux of a "wavelength,flux,err" spectrum; a file with
 * several named columns needs one picked. Without a header, every number counts (one observation,
 * or one per row). Where the caller allows missing values (`nbi predict`'s observation: light
 * curves with gaps), a cell "nan" (any case) or an empty cell reads as NaN and an NPY file's NaN
 * passes through; every other reader keeps to numbers.
 *
 * Writing: CSV with a header line, or NPY (float64, n × columns) with the same columns.
 */
import { readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { NbiError } from "../errors.js";
import { readNpy, writeNpy } from "../io/npy.js";

export interface NumbersRead {
  readonly values: Float64Array;
  /** Rows × columns of a CSV file (after picking a column: rows × 1); NPY: its shape. */
  readonly shape: readonly number[];
  readonly columns?: readonly string[];
  /** A CSV file's line number (1-based) of each data row, for errors that say where. */
  readonly lines?: readonly number[];
}

/** How a reader treats cells that hold no number. */
export interface ReadOptions {
  /** "nan" (any case) and empty cells read as NaN (a missing point); default false. */
  readonly missing?: boolean;
}

const isNumber = (cell: string) => cell !== "" && Number.isFinite(Number(cell));
const isMissing = (cell: string) => cell === "" || /^nan$/i.test(cell);

/** The numbers in a CSV or NPY file (by extension; anything else is read as CSV). */
export async function readNumbers(
  path: string,
  column?: string | number,
  hint?: string,
  options: ReadOptions = {},
): Promise<NumbersRead> {
  if (extname(path).toLowerCase() === ".npy") {
    if (column !== undefined) {
      throw new NbiError(`${path}: a column can only be chosen in a CSV file, not in an NPY file`);
    }
    const array = await readNpy(path).catch((error: Error) => {
      throw error instanceof NbiError ? error : new NbiError(`${path}: ${error.message}`);
    });
    return { values: Float64Array.from(array.data), shape: array.shape };
  }
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new NbiError(
      error.code === "ENOENT"
        ? `${path}: no such file (expected a CSV or NPY file of numbers)`
        : `${path}: ${error.message}`,
    );
  });
  return parseCsv(text, path, column, hint, options);
}

export function parseCsv(
  text: string,
  source: string,
  column?: string | number,
  hint?: string,
  options: ReadOptions = {},
): NumbersRead {
  const missing = options.missing === true;
  const isValue = (cell: string) => isNumber(cell) || (missing && isMissing(cell));
  const lines = text
    .split(/\r?\n/)
    .map((line, i) => ({ line: line.trim(), number: i + 1 }))
    .filter(({ line }) => line !== "" && !line.startsWith("#"));
  const split = (line: string) => line.split(/\s*[,;]\s*|\s+/);
  let header: string[] | undefined;
  if (lines.length > 0 && !split(lines[0]!.line).every(isValue)) {
    header = split(lines[0]!.line).map((h) => h.replace(/^"(.*)"$/, "$1"));
    lines.shift();
  }
  const rows = lines.map(({ line, number }) => {
    const cells = split(line);
    const bad = cells.findIndex((c) => !isValue(c));
    if (bad >= 0) {
      throw new NbiError(
        `${source}:${number}: expected numbers${missing ? ' (or "nan" or an empty cell for a missing value)' : ""}, got ${JSON.stringify(cells[bad])} (column ${bad + 1})`,
      );
    }
    return cells.map((c) => (isNumber(c) ? Number(c) : Number.NaN));
  });
  const rowLines = lines.map(({ number }) => number);
  const width = rows[0]?.length ?? 0;
  const ragged = rows.findIndex((r) => r.length !== width);
  if (ragged >= 0) {
    throw new NbiError(
      `${source}: expected the same number of cells on every row, got ${width} on the first and ${rows[ragged]!.length} on data row ${ragged + 1}`,
    );
  }
  if (rows.length === 0) throw new NbiError(`${source}: expected numbers, found none`);
  if (column === undefined) {
    if (header && width > 1) {
      throw new NbiError(
        `${source} has ${width} named columns (${header.join(", ")}): choose the data column${hint ? ` with ${hint}` : ""}`,
      );
    }
    return {
      values: Float64Array.from(rows.flat()),
      shape: [rows.length, width],
      ...(header ? { columns: header } : {}),
      lines: rowLines,
    };
  }
  const index =
    typeof column === "number" || /^\d+$/.test(column)
      ? Number(column)
      : (header?.indexOf(column) ?? -1);
  if (index < 0 || index >= width) {
    const names = header
      ? `columns ${header.map((h) => JSON.stringify(h)).join(", ")}`
      : `${width} unnamed columns`;
    throw new NbiError(
      `${source}: column ${JSON.stringify(column)} not found; the file has ${names} (give a name or a 0-based index)`,
    );
  }
  return {
    values: Float64Array.from(rows, (r) => r[index]!),
    shape: [rows.length, 1],
    ...(header ? { columns: [header[index]!] } : {}),
    lines: rowLines,
  };
}

/** Splits the numbers read into observations of `size` values, with a clear error otherwise. */
export function observations(read: NumbersRead, size: number, source: string): Float64Array[] {
  const { values } = read;
  if (values.length === 0 || values.length % size !== 0) {
    throw new NbiError(
      `${source}: expected ${size} numbers per observation (the model's data size), got ${values.length}` +
        (read.shape.length === 2 ? ` in ${read.shape[0]} rows × ${read.shape[1]} columns` : ""),
    );
  }
  const m = values.length / size;
  return Array.from({ length: m }, (_, k) => values.slice(k * size, (k + 1) * size));
}

/** Writes rows of numbers with named columns as CSV (any extension but .npy) or NPY. */
export async function writeTable(
  path: string,
  columns: readonly string[],
  data: Float64Array,
): Promise<void> {
  const width = columns.length;
  if (extname(path).toLowerCase() === ".npy") {
    await writeNpy(path, { data, shape: [data.length / width, width] });
    return;
  }
  const lines = [columns.map(csvCell).join(",")];
  for (let i = 0; i < data.length; i += width) {
    lines.push(Array.from(data.subarray(i, i + width), (v) => String(v)).join(","));
  }
  await writeFile(path, `${lines.join("\n")}\n`);
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Samples (n × d) and weights as one table: [obs,] labels..., weight. */
export function samplesTable(
  parts: readonly { samples: Float64Array; weights: Float64Array; obs?: number }[],
  labels: readonly string[],
): { columns: string[]; data: Float64Array } {
  const d = labels.length;
  const withObs = parts.some((p) => p.obs !== undefined);
  const columns = [...(withObs ? ["obs"] : []), ...labels, "weight"];
  const width = columns.length;
  const n = parts.reduce((s, p) => s + p.weights.length, 0);
  const data = new Float64Array(n * width);
  let row = 0;
  for (const p of parts) {
    for (let i = 0; i < p.weights.length; i++, row++) {
      const o = row * width;
      if (withObs) data[o] = p.obs ?? 0;
      data.set(p.samples.subarray(i * d, (i + 1) * d), o + (withObs ? 1 : 0));
      data[o + width - 1] = p.weights[i]!;
    }
  }
  return { columns, data };
}
