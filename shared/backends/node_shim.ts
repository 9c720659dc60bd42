/**
 * Node compatibility for npm:@tensorflow/tfjs-node-gpu under Deno. tfjs-node calls the `util.is*`
 * predicates that Node deprecated long ago (`util.isNullOrUndefined` on the first op, `util.isArray` when it
 * packs op attributes); Deno's `node:util` leaves most of them out. They are added to the very object that
 * `require("util")` returns, and only where missing, so nothing else changes.
 */
import util from "node:util";

type Predicate = (value: unknown) => boolean;

/** The legacy predicates, with Node's own definitions (lib/util.js before their removal in Node 23). */
const LEGACY_PREDICATES: Record<string, Predicate> = {
  isArray: Array.isArray,
  isBoolean: (value) => typeof value === "boolean",
  isFunction: (value) => typeof value === "function",
  isNull: (value) => value === null,
  isNullOrUndefined: (value) => value === null || value === undefined,
  isNumber: (value) => typeof value === "number",
  isObject: (value) => value !== null && typeof value === "object",
  isPrimitive: (value) => value === null || (typeof value !== "object" && typeof value !== "function"),
  isString: (value) => typeof value === "string",
  isSymbol: (value) => typeof value === "symbol",
  isUndefined: (value) => value === undefined,
};

/** Adds the missing predicates to `node:util`; returns the names it added. Safe to call more than once. */
export function installNodeShim(): string[] {
  const target = util as unknown as Record<string, unknown>;
  const added: string[] = [];
  for (const [name, predicate] of Object.entries(LEGACY_PREDICATES)) {
    if (typeof target[name] !== "function") {
      target[name] = predicate;
      added.push(name);
    }
  }
  return added;
}
