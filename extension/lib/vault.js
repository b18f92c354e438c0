// @ts-check
/**
 * One record in IndexedDB: what `ListMirror` keeps between service-worker runs
 * (the prefix set is megabytes of bytes, which chrome.storage.local would hold
 * as text, under its quota). No permission is needed for it.
 */

const DATABASE = "linkwarn";
const STORE = "mirror";
const KEY = "lists";

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest} act
 * @returns {Promise<any>}
 */
async function run(mode, act) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const request = act(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

/** @returns {Promise<import("./matcher.js").Saved | undefined>} */
export function load() {
  return run("readonly", (store) => store.get(KEY));
}

/** @param {import("./matcher.js").Saved} saved */
export async function save(saved) {
  await run("readwrite", (store) => store.put(saved, KEY));
}
