/**
 * Concrete arrays: arrays with data on a backend, the values the eval interpreter computes with
 * and every kernel takes and returns. They are declared with the backend interface
 * (backend.ts), since each refers to the other; this module is their usual import path. Moving
 * them between backends and scoping their memory is the ops layer's business (ops/backend.ts).
 */
export { ConcreteArray, fromHost } from "./backend.js";
