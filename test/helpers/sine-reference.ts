/** The sine problem's exact posterior lives with the benchmark that also needs its KL. */
export { type SineReference, sineReference } from "../../bench/sine-reference.js";
