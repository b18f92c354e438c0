// @ts-check
/**
 * The warning page. It keeps no state: the listed URL is its own address after
 * "#", put there by the browser's redirect rule or by the service worker, and
 * the verdict comes from the service worker. Every value is set as text, never
 * as HTML.
 */

const blocked = location.hash.slice(1);
const page = /** @type {HTMLElement} */ (document.getElementById("page"));

/** @param {string} id */
function element(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/** @param {any} message */
async function ask(message) {
  const answer = await chrome.runtime.sendMessage(message);
  if (answer && answer.error) throw new Error(answer.error);
  return answer;
}

/** Back past the listed page (the service worker steps over it, cached or not). @param {Event} event */
function goBack(event) {
  if (!event.isTrusted) return;
  ask({ type: "back", url: blocked }).catch(() => (history.length > 1 ? history.back() : location.replace("about:blank")));
}

const OPENED_AT = performance.now();
const MIN_MS = 1000; // Proceed is no answer to a click meant for the page before (a pop-under)

/** A person's click on this page, not one made by script nor one landing as it opened. @param {Event} event */
function aPersonsClick(event) {
  return event.isTrusted && performance.now() - OPENED_AT >= MIN_MS;
}

/** Shown disabled for the first second, so that a click meant for the page before does nothing. @param {HTMLButtonElement} button */
function armLater(button) {
  button.disabled = true;
  setTimeout(() => (button.disabled = false), Math.max(0, MIN_MS - (performance.now() - OPENED_AT)));
}

/**
 * On to the address the service worker lets through (the navigation gate sends every address it
 * cannot decide at once here first), unless this tab was sent on to it moments ago: then the
 * browser sent it back (its rules are a sync behind the proxy), and the page says so instead.
 */
function goOn() {
  const mark = `linkwarn-onward:${blocked}`;
  if (Date.now() - Number(sessionStorage.getItem(mark) ?? 0) < 10_000) return false;
  sessionStorage.setItem(mark, String(Date.now()));
  location.replace(blocked);
  return true;
}

async function show() {
  if (window.top !== window) {
    // Framed by some page: never a person's decision on a page of its own (the service worker
    // refuses a framed page's messages too).
    element("title").textContent = "linkwarn's warning cannot be shown inside another page";
    return;
  }
  element("url").textContent = blocked;
  element("back").addEventListener("click", goBack);
  if (!/^https?:\/\//.test(blocked)) {
    element("title").textContent = "No address to check";
    return;
  }
  let result;
  try {
    let onward;
    ({ result, opens: onward } = await ask({ type: "verdict", url: blocked }));
    if (onward && goOn()) return;
  } catch (error) {
    element("title").textContent = "This address could not be checked";
    element("note").textContent = String(error instanceof Error ? error.message : error);
    element("note").hidden = false;
    return;
  }
  const blocking = result.action === "block";
  page.dataset.state = result.listed ? result.action : "clear";
  if (!result.listed || (result.action !== "block" && result.action !== "warn")) {
    element("title").textContent = "This address is not listed";
    element("note").textContent = "It was listed when you opened it, or the lists changed since.";
    element("note").hidden = false;
    const open = /** @type {HTMLButtonElement} */ (element("proceed"));
    open.textContent = "Open it";
    open.hidden = false;
    open.addEventListener("click", () => location.replace(blocked));
    return;
  }
  document.title = blocking ? "linkwarn: blocked" : "linkwarn: warning";
  element("title").textContent = blocking
    ? "This page is blocked: it is a known copy of leaked material"
    : "Warning: this page is a known copy of leaked material";
  element("reason").textContent = result.reason || "No reason was given.";
  // No empty label: a hashed entry publishes no address, and an offline answer may know no list.
  element("entry").textContent = result.entry ?? "an entry whose address is not published (hashed)";
  element("list").textContent = result.list ?? "not known here";
  element("facts").hidden = false;
  if (result.error) {
    // The proxy refused this one address (its own error, not an outage): decided here instead.
    element("note").textContent =
      `The linkwarn proxy refused to check this address (${result.error.code}: ${result.error.message}), ` +
      "so this is what the extension decided from the lists it holds.";
    element("note").hidden = false;
  } else if (result.offline) {
    element("note").textContent =
      "The linkwarn proxy could not be reached, so this is what the extension already knew about the address.";
    element("note").hidden = false;
  }
  if (result.may_proceed) {
    const proceed = /** @type {HTMLButtonElement} */ (element("proceed"));
    const minutes = Math.max(1, Math.round((result.proceed_ttl_seconds ?? 900) / 60));
    proceed.textContent = `Proceed anyway (for ${minutes} minutes)`;
    proceed.hidden = false;
    armLater(proceed);
    proceed.addEventListener("click", async (event) => {
      if (!aPersonsClick(event)) return;
      proceed.disabled = true;
      const answer = await ask({ type: "proceed", url: blocked });
      if (answer.ok) location.replace(blocked);
      else {
        element("note").textContent = answer.error;
        element("note").hidden = false;
      }
    });
  }
  element("report-box").hidden = false;
  const send = /** @type {HTMLButtonElement | null} */ (element("report").querySelector("button[type=submit], button:not([type])"));
  if (send) armLater(send);
  element("report").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!aPersonsClick(event)) return;
    const comment = /** @type {HTMLTextAreaElement} */ (element("comment")).value;
    let answer;
    try {
      answer = await ask({ type: "report", url: blocked, comment });
    } catch (error) {
      answer = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    const result = element("report-result");
    result.dataset.ok = String(Boolean(answer.ok));
    result.textContent = answer.ok
      ? "Thank you, your report was sent. IT will review whether this address is listed by mistake."
      : `The report could not be sent: ${answer.error}`;
  });
  await ask({ type: "shown", url: blocked });
}

void show();
