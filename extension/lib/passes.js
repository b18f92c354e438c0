// @ts-check
/**
 * Proceed passes: after "Proceed anyway" on a warn entry, that entry lets this
 * browser through until the pass expires, as the proxy's pass does for its client.
 * Stored as {entryKey: {expression, expires}} (expires in milliseconds).
 */

/** @typedef {{expression: string | null, expires: number, ruleId: number | null}} Pass */

/**
 * @param {Record<string, Pass>} passes
 * @param {string} entryKey
 * @param {number} [now]
 */
export function hasPass(passes, entryKey, now = Date.now()) {
  const pass = passes[entryKey];
  return pass !== undefined && pass.expires > now;
}

/**
 * The passes still valid, and the browser rules of those that expired.
 * @param {Record<string, Pass>} passes
 * @param {number} [now]
 * @returns {{live: Record<string, Pass>, expiredRuleIds: number[]}}
 */
export function prunePasses(passes, now = Date.now()) {
  /** @type {Record<string, Pass>} */
  const live = {};
  /** @type {number[]} */
  const expiredRuleIds = [];
  for (const [key, pass] of Object.entries(passes)) {
    if (pass.expires > now) live[key] = pass;
    else if (pass.ruleId !== null) expiredRuleIds.push(pass.ruleId);
  }
  return { live, expiredRuleIds };
}

/** Pass rules take ids from here up, clear of the list's own rules. */
export const FIRST_PASS_RULE_ID = 1_000_000;

/**
 * The lowest rule id at or above FIRST_PASS_RULE_ID no pass uses.
 * @param {Record<string, Pass>} passes
 */
export function freePassRuleId(passes) {
  const used = new Set(Object.values(passes).map((p) => p.ruleId));
  let id = FIRST_PASS_RULE_ID;
  while (used.has(id)) id++;
  return id;
}
