// What every part of the inbox shares: the page's state, small DOM and text helpers, the
// API client, and hooks through which features add to the list, the thread and the socket.

export const state = JSON.parse(document.getElementById("inbox-state").textContent);
export const t = state.i18n;
export const $ = (selector, root = document) => root.querySelector(selector);

// The live, mutable part: the list's conversations and the open one.
export const store = {
  conversations: new Map(state.conversations.map((c) => [c.id, c])),
  current: state.conversation, // the open conversation's snapshot, or null
};

// --- Hooks -------------------------------------------------------------------------------------
// "event" (event, conversation): every applied socket event; "message" (data): socket
// messages that are not events (typing, …); "row" (conversation, li): a list row was drawn;
// "header" (conversation): the open conversation's header was drawn.
const hooks = new Map();

export function on(name, fn) {
  if (!hooks.has(name)) hooks.set(name, []);
  hooks.get(name).push(fn);
}

export function emit(name, ...args) {
  for (const fn of hooks.get(name) || []) fn(...args);
}

// --- Formatting -----------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone: state.timezone, hour: "2-digit", minute: "2-digit",
});
const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone: state.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: state.timezone, dateStyle: "short" });

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return dayKey.format(date) === dayKey.format(new Date()) ? timeFormat.format(date) : dateFormat.format(date);
}

export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => values[key] ?? "");
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child); // strings become text nodes: never HTML
  }
  return node;
}

export function contactLabel(name, contactId) {
  // Events carry the contact's own name or ""; the fallback is shown in the reader's language.
  return name || format(t.visitor, { id: contactId });
}

export function initials(name) {
  // First letter or digit of the first two words: "Visitor #2" → "V2", "Анна Петрова" → "АП".
  const letters = (name || "").split(/\s+/).map((w) => (w.match(/[\p{L}\p{N}]/u) || [""])[0]).filter(Boolean);
  return letters.slice(0, 2).join("").toUpperCase() || "?";
}

// --- Talking to the API ----------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(url, body, { method = "POST", headers = {} } = {}) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), ...headers },
    body: method === "GET" ? undefined : JSON.stringify(body ?? {}),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.message || response.statusText);
  return data;
}

// Add to a scrolling thread and follow the newest line only if the reader was already at
// the end: someone reading older messages (or a search result) is not yanked away.
// A thread at its end keeps following it while lines grow after they were added (an image
// that loads, a file the worker fetched, a delivery line): `followEnd` after such a change.
// Only the reader scrolling up, away from the end, stops that. Growth is no such scroll: the
// browser may move the view down for it (scroll anchoring), and a scroll event is dispatched
// late, after more lines may have grown, so its position is compared with the last one seen.
const following = new WeakMap(); // thread → { on: following its end?, top: last scrollTop seen }

function atEnd(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function watch(list) {
  let state = following.get(list);
  if (!state) {
    state = { on: false, top: list.scrollTop };
    following.set(list, state);
    list.addEventListener("scroll", () => {
      if (atEnd(list)) state.on = true;
      else if (list.scrollTop < state.top) state.on = false;
      state.top = list.scrollTop;
    }, { passive: true });
  }
  return state;
}

function toEnd(list) {
  const state = watch(list);
  list.scrollTop = list.scrollHeight;
  state.on = true;
  state.top = list.scrollTop;
}

export function keepAtEnd(list, add) {
  const follow = atEnd(list) || following.get(list)?.on === true;
  add();
  if (follow) toEnd(list);
}

export function followEnd(list) {
  if (list && following.get(list)?.on === true) toEnd(list);
}
