/**
 * The one error type of the library. Messages name the function, the argument, what was
 * expected and what was given, so a user can fix the call without reading the source.
 *
 * @example
 * ```ts
 * try {
 *   bijectors.permute([0, 0]);
 * } catch (e) {
 *   if (e instanceof NbiError) console.log(e.message); // "permute: perm expected a permutation of 0..1, got [0, 0]"
 * }
 * ```
 */
export class NbiError extends Error {
  /** An error with this message (`name` is "NbiError"). */
  constructor(message: string) {
    super(message);
    this.name = "NbiError";
  }
}

/** Throws an NbiError in the standard shape: `fn: argument expected ..., got ...`. */
export function fail(fn: string, argument: string, expected: string, got: unknown): never {
  throw new NbiError(`${fn}: ${argument} expected ${expected}, got ${describe(got)}`);
}

/** As `fail`, with `got` already written as text (e.g. "3 numbers"). */
export function failText(fn: string, argument: string, expected: string, got: string): never {
  throw new NbiError(`${fn}: ${argument} expected ${expected}, got ${got}`);
}

/** A short, readable description of any value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (globalThis.Array.isArray(value)) {
    const inner = value.slice(0, 8).map(describe).join(", ");
    return `[${inner}${value.length > 8 ? ", ..." : ""}]`;
  }
  if (typeof value === "object") {
    const maybe = value as { shape?: unknown; dtype?: unknown };
    if (globalThis.Array.isArray(maybe.shape) && typeof maybe.dtype === "string") {
      return `an array of shape [${maybe.shape.join(", ")}] and dtype ${maybe.dtype}`;
    }
    const name = (value as object).constructor?.name;
    return name && name !== "Object" ? `a ${name}` : "an object";
  }
  return typeof value;
}
