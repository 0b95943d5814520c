/**
 * One validator for the fit's settings, whichever way they arrive: `NBI.fit`'s options (the API),
 * the "fit" section of a JSON or module config (which is how the CLI takes them; its flags only
 * say where and how fast a run goes, plus --rounds), and `snpeIS` called directly. Each setting
 * is checked by one rule written once here, and every problem is reported in one message rather
 * than the first one only, so a user fixes a config in one pass.
 *
 * The accumulation is fp-ts's applicative validation: each check is an `Either` whose left is a
 * non-empty list of problems, and `Either`'s validation instance for the non-empty-array semigroup
 * concatenates the lefts of independent checks instead of stopping at the first. fp-ts is used
 * because the user's design card names it and because this is exactly what that abstraction is
 * for; the rest of the library throws `NbiError`s, so `orThrow` is the boundary.
 */
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as RA from "fp-ts/lib/ReadonlyArray.js";
import * as RNEA from "fp-ts/lib/ReadonlyNonEmptyArray.js";
import { describe, NbiError } from "../errors.js";

/** Problems found, each a sentence such as `nSims expected an integer ≥ 2, got 1`. */
export type Problems = RNEA.ReadonlyNonEmptyArray<string>;
/** A checked value, or every problem found on the way to it. */
export type Validated<T> = E.Either<Problems, T>;

/** The applicative that accumulates problems (see the module comment). */
const validation = E.getApplicativeValidation(RNEA.getSemigroup<string>());

/** One problem, as a failed check. */
export const problem = (text: string): Validated<never> => E.left(RNEA.of(text));

/** Checks every item and keeps every problem (not only the first failing item's). */
export function validateAll<A, B>(
  items: readonly A[],
  check: (item: A) => Validated<B>,
): Validated<readonly B[]> {
  return pipe(items, RA.traverse(validation)(check));
}

/** The value, or an NbiError `<where>: <problem>; <problem>; …` naming every problem. */
export function orThrow<T>(where: string, checked: Validated<T>): T {
  if (E.isLeft(checked)) throw new NbiError(`${where}: ${checked.left.join("; ")}`);
  return checked.right;
}

/** A setting's rule: what it must be, in words, and the test. */
interface Rule {
  readonly expected: string;
  readonly ok: (value: unknown) => boolean;
}

const integer = (least: number, expected = `an integer ≥ ${least}`): Rule => ({
  expected,
  ok: (v) => Number.isInteger(v) && (v as number) >= least,
});
const finite: Rule = {
  expected: "a number",
  ok: (v) => typeof v === "number" && Number.isFinite(v),
};
const nonNegative: Rule = {
  expected: "a number ≥ 0",
  ok: (v) => typeof v === "number" && Number.isFinite(v) && v >= 0,
};
const oneOf = (choices: readonly string[]): Rule => {
  const quoted = choices.map((c) => JSON.stringify(c));
  return {
    expected: `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`,
    ok: (v) => typeof v === "string" && choices.includes(v),
  };
};

/** The sequential losses `fit` takes (see `RoundOptions.loss`). */
export const SEQUENTIAL_LOSSES = ["auto", "nll", "apt", "gated", "select", "weighted-nll"] as const;
/** The proposals of sequential rounds `fit` takes (see `RoundOptions.proposal`). */
export const PROPOSAL_KINDS = ["auto", "surrogate", "truncated", "mixture"] as const;
/** Where the surrogate's flow lives (see `RoundOptions.flowSpace`). */
export const FLOW_SPACES = ["unbounded", "logit", "theta"] as const;

/**
 * The rule of every plain fit setting (numbers, switches and choices; the observation, noise
 * model, likelihood and callbacks are checked where they are used, against the data's shape).
 */
export const FIT_SETTING_RULES = {
  nSims: integer(2),
  nRounds: integer(1),
  nEpochs: integer(1),
  batchSize: integer(1),
  nReuse: {
    expected: 'an integer ≥ −1 (−1: all rounds) or "auto"',
    ok: (v) => v === "auto" || (Number.isInteger(v) && (v as number) >= -1),
  },
  earlyStopPatience: integer(1),
  emaHalfLife: nonNegative,
  atoms: integer(1),
  lr: finite,
  minLr: finite,
  fVal: finite,
  neffStop: finite,
  fAcceptMin: finite,
  earlyStopTrain: { expected: "true or false", ok: (v) => typeof v === "boolean" },
  calibrateSpread: { expected: "true or false", ok: (v) => typeof v === "boolean" },
  adaptRounds: { expected: "true or false", ok: (v) => typeof v === "boolean" },
  loss: oneOf(SEQUENTIAL_LOSSES),
  proposal: oneOf(PROPOSAL_KINDS),
  flowSpace: oneOf(FLOW_SPACES),
  truncationEps: {
    expected: "a number in (0, 1), e.g. 1e-4",
    ok: (v) => typeof v === "number" && v > 0 && v < 1,
  },
  resume: oneOf(["never", "ifSame", "force"]),
} as const satisfies Record<string, Rule>;

/** A plain fit setting's name. */
export type FitSettingName = keyof typeof FIT_SETTING_RULES;

const isRuled = (key: string): key is FitSettingName => Object.hasOwn(FIT_SETTING_RULES, key);

/** How `checkFitSettings` names things for its caller. */
export interface SettingsContext {
  /** The settings this caller accepts (its other keys are unknown). */
  readonly known: readonly string[];
  /** A setting's name in messages (e.g. "fit.nSims" in a config). */
  readonly label?: (key: string) => string;
  /** The problems of the unknown keys, given all of them at once. */
  readonly unknown: (keys: readonly string[]) => Problems;
}

/**
 * Checks an options object: its unknown keys (one problem list from `context.unknown`) and every
 * known plain setting against its rule. Every problem is kept.
 *
 * @example
 * ```ts
 * const checked = checkFitSettings({ nSims: 1, lr: "fast" }, { known: ["nSims", "lr"], unknown: (k) => [`unknown ${k}`] });
 * // Left(["nSims expected an integer ≥ 2, got 1", 'lr expected a number, got "fast"'])
 * ```
 */
export function checkFitSettings(
  options: Readonly<Record<string, unknown>>,
  context: SettingsContext,
): Validated<void> {
  const label = context.label ?? ((k: string) => k);
  const keys = Object.keys(options).filter((k) => options[k] !== undefined);
  const unknown = keys.filter((k) => !context.known.includes(k));
  const checks: Validated<void>[] = keys
    .filter((k) => context.known.includes(k) && isRuled(k))
    .map((k) => {
      const rule: Rule = FIT_SETTING_RULES[k as FitSettingName];
      return rule.ok(options[k])
        ? E.right(undefined)
        : problem(`${label(k)} expected ${rule.expected}, got ${describe(options[k])}`);
    });
  if (unknown.length > 0) checks.unshift(E.left(context.unknown(unknown)));
  return pipe(
    validateAll(checks, (c) => c),
    E.map(() => undefined),
  );
}

/** Levenshtein distance, for did-you-mean hints. */
function editDistance(a: string, b: string): number {
  const row = globalThis.Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * The known name closest to `name` (snake_case and case folded first), if close enough.
 *
 * @example
 * ```ts
 * inference.didYouMean("n_sims", ["nSims", "nRounds"]); // "nSims"
 * ```
 */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  const camel = name.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());
  const exact = known.find((k) => k.toLowerCase() === camel.toLowerCase());
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const distance = editDistance(camel.toLowerCase(), k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
