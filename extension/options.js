// @ts-check
/** The options page: the API address, token and mode, except what policy fixes. */

import { DEFAULTS, KEYS, effectiveSettings, problemWith } from "./lib/settings.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("form"));
const result = /** @type {HTMLElement} */ (document.getElementById("result"));

/** @param {string} key */
const field = (key) => /** @type {HTMLInputElement | HTMLSelectElement} */ (form.elements.namedItem(key));

async function load() {
  /** @type {Record<string, unknown>} */
  let managed = {};
  try {
    managed = await chrome.storage.managed.get(null);
  } catch {
    // no managed storage in this browser
  }
  const local = await chrome.storage.local.get([...KEYS]);
  const { settings, locked, problems } = effectiveSettings(managed, local);
  for (const key of KEYS) {
    field(key).value = key === "apiToken" && locked.includes(key) ? "••••••••" : settings[key];
    field(key).disabled = locked.includes(key);
  }
  /** @type {HTMLElement} */ (document.getElementById("policy")).hidden = locked.length === 0;
  if (problems.length) result.textContent = `Ignored: ${problems.join("; ")}`;
  const delivery = /** @type {{ok: boolean, error: string | null} | undefined} */ ((await chrome.storage.local.get("delivery")).delivery);
  const shown = /** @type {HTMLElement} */ (document.getElementById("delivery"));
  shown.hidden = !delivery || delivery.ok;
  if (delivery && !delivery.ok) shown.textContent = `Warnings and proceeds are not reaching IT's log: ${delivery.error}`;
  document.body.dataset.ready = "true";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  /** @type {Record<string, string>} */
  const values = {};
  /** @type {string[]} */
  const problems = [];
  for (const key of KEYS) {
    if (field(key).disabled) continue;
    const value = field(key).value.trim() || (key === "apiToken" ? "" : DEFAULTS[key]);
    const problem = problemWith(key, value);
    if (problem) problems.push(problem);
    else values[key] = value;
  }
  if (problems.length) {
    result.textContent = `Not saved: ${problems.join("; ")}`;
    return;
  }
  await chrome.storage.local.set(values);
  result.textContent = "Saved.";
});

void load();
