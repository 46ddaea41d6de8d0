// Canned responses: "/" at the start of a word in the reply box opens a menu of the saved
// replies (the company's and one's own), filtered as one types; arrows, Enter or a click
// insert the text with its placeholders filled by the server for this conversation.

import { $, api, el, on, store, t } from "./core.js";
import { composerState, keyHandlers, textarea } from "./composer.js";

const menu = el("ul", { class: "canned-menu", role: "listbox", "data-testid": "canned-menu", hidden: true });
let responses = null; // loaded when the menu first opens, dropped when the contact changes
let loading = null;
let shown = [];
let active = 0;
let token = null; // where "/query" sits in the textarea: { start, end, query }

async function load() {
  if (responses) return responses;
  loading ||= api(`/api/v1/canned-responses/?conversation_id=${store.current.id}`, null, { method: "GET" })
    .then((rows) => { responses = rows; return rows; })
    .finally(() => { loading = null; });
  return loading;
}

function tokenAtCaret() {
  // "/" at the start of the text or after a space, then the shortcut typed so far.
  const caret = textarea.selectionStart;
  if (caret !== textarea.selectionEnd) return null;
  const match = textarea.value.slice(0, caret).match(/(^|\s)\/([\p{L}\p{N}_-]*)$/u);
  if (!match) return null;
  return { start: caret - match[2].length - 1, end: caret, query: match[2].toLowerCase() };
}

function close() {
  menu.hidden = true;
  token = null;
}

function draw() {
  menu.replaceChildren(
    ...shown.map((r, i) => el("li", {
      role: "option", class: i === active ? "active" : "", "aria-selected": i === active ? "true" : "false",
      dataset: { index: i }, "data-testid": "canned-option",
    },
    el("span", { class: "canned-shortcut" }, `/${r.shortcut}`),
    el("span", { class: "canned-title" }, r.title),
    r.personal ? el("span", { class: "pill" }, t.cannedPersonal) : null)),
  );
  if (!shown.length) menu.append(el("li", { class: "canned-empty" }, t.cannedEmpty));
  else menu.append(el("li", { class: "canned-hint", "aria-hidden": "true" }, t.cannedHint));
  menu.hidden = false;
  menu.querySelector("li.active")?.scrollIntoView({ block: "nearest" });
}

async function update() {
  token = composerState.mode === "reply" ? tokenAtCaret() : null;
  if (!token) { close(); return; }
  const wanted = token;
  let rows;
  try { rows = await load(); } catch { close(); return; }
  if (token !== wanted) return; // typed on while loading: a newer update draws
  const q = wanted.query;
  // Shortcuts that start with what was typed first, then those that merely contain it.
  shown = [
    ...rows.filter((r) => r.shortcut.startsWith(q)),
    ...rows.filter((r) => !r.shortcut.startsWith(q) && (r.shortcut.includes(q) || r.title.toLowerCase().includes(q))),
  ];
  active = Math.min(active, Math.max(shown.length - 1, 0));
  draw();
}

function insert(index) {
  const chosen = shown[index];
  if (!chosen || !token) return;
  const text = chosen.text ?? chosen.body;
  const { start, end } = token;
  textarea.setRangeText(text, start, end, "end");
  close();
  textarea.focus();
  textarea.dispatchEvent(new Event("input", { bubbles: true })); // the length hint counts it
}

function onKey(event) {
  if (menu.hidden) return false;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (!shown.length) return false;
    const step = event.key === "ArrowDown" ? 1 : -1;
    active = (active + step + shown.length) % shown.length;
    draw();
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && shown.length) {
    insert(active);
  } else if (event.key === "Escape") {
    close();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

export function startCanned() {
  if (!textarea || !store.current) return;
  textarea.closest("form").append(menu);
  keyHandlers.push(onKey);
  textarea.addEventListener("input", () => { active = 0; update(); });
  textarea.addEventListener("click", update);
  textarea.addEventListener("blur", () => setTimeout(close, 150)); // after a click on an option
  menu.addEventListener("mousedown", (event) => {
    const option = event.target.closest("[data-index]");
    if (!option) return;
    event.preventDefault(); // keep the focus (and the caret) in the textarea
    insert(Number(option.dataset.index));
  });
  // The placeholders were filled with the contact as it was: refill after it changes.
  on("event", (event) => {
    if (event.type === "contact.updated" && event.payload.contact?.id === store.current.contact_id) responses = null;
  });
  for (const tab of $("[data-composer]").querySelectorAll("[data-mode]")) tab.addEventListener("click", close);
}
