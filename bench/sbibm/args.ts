/** Command-line flags of the sbibm scripts (run.ts, reference.ts, score-draws.ts). */

/**
 * The value after `--name` in argv; `fallback` when the flag is absent (an error when there is no
 * fallback), and an error naming the flag when it has no value.
 */
export function flagValue(argv: readonly string[], name: string, fallback?: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}
