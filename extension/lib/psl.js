// @ts-check
/**
 * The registrable domain of a host, from the Public Suffix List the proxy
 * serves (`GET /v1/psl`: tldextract's bundled snapshot, private section
 * included, international labels in their ASCII form), decided exactly as the
 * proxy's `registrable_domain` does (canonical.py, through tldextract):
 *
 * - labels are matched from the right along the longest chain of rules;
 * - where no rule names the next label but a wildcard (`*.ck`) does, it takes
 *   that label too, unless an exception (`!www.ck`) names it;
 * - the registrable domain is one label more than the suffix, "" when the host
 *   is itself a suffix; under a suffix the list does not know (`.test`, an
 *   intranet name) the last label counts as the suffix.
 *
 * Pure: `SuffixList.fromRules` refuses anything that is not a list of rules.
 */

const RULE = /^(?:\*\.|!)?[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

/** @typedef {{children: Map<string, Node>, end: boolean}} Node */

export class SuffixList {
  /** @param {Node} root @param {number} size */
  constructor(root, size) {
    this.root = root;
    this.size = size;
  }

  /**
   * @param {unknown} rules  the `rules` of `GET /v1/psl`
   * @returns {SuffixList}
   */
  static fromRules(rules) {
    if (!Array.isArray(rules) || rules.length === 0) throw new Error("the suffix list is not a non-empty list of rules");
    /** @type {Node} */
    const root = { children: new Map(), end: false };
    for (const rule of rules) {
      if (typeof rule !== "string" || !RULE.test(rule)) throw new Error(`not a suffix rule: ${JSON.stringify(rule)}`);
      let node = root;
      for (const label of rule.split(".").reverse()) {
        let child = node.children.get(label);
        if (!child) {
          child = { children: new Map(), end: false };
          node.children.set(label, child);
        }
        node = child;
      }
      node.end = true;
    }
    return new SuffixList(root, rules.length);
  }

  /**
   * The index of the first label of the public suffix in *labels*, or -1 when none is known.
   * @param {string[]} labels
   */
  suffixIndex(labels) {
    let node = this.root;
    let suffixAt = labels.length;
    let at = labels.length;
    for (let i = labels.length - 1; i >= 0; i--) {
      const label = labels[i].replace(/[A-Z]+/g, (s) => s.toLowerCase());
      const child = node.children.get(label);
      if (child) {
        at--;
        node = child;
        if (node.end) suffixAt = at;
        continue;
      }
      if (node.children.has("*")) return node.children.has(`!${label}`) ? at : at - 1;
      break;
    }
    return suffixAt === labels.length ? -1 : suffixAt;
  }

  /**
   * The eTLD+1 of a canonical *host*, "" when it is itself a public suffix.
   * @param {string} host
   */
  registrableDomain(host) {
    // tldextract reads the host as a URL's authority: a port-like tail, and then trailing dots, go.
    let name = host;
    if (name.startsWith("[") && name.includes("]")) name = name.slice(0, name.indexOf("]") + 1);
    else name = name.split(":", 1)[0].replace(/\.+$/, "");
    const labels = name.split(".");
    const at = this.suffixIndex(labels);
    if (at < 0) return host.split(".").slice(-2).join(".");
    const suffix = labels.slice(at).join(".");
    const domain = at > 0 ? labels[at - 1] : "";
    return suffix && domain ? `${domain}.${suffix}` : "";
  }
}
