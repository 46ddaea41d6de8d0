// @mentions in internal notes: an autocomplete in the note box, the ids sent along with the
// note, a notice for whoever was mentioned, the Mentions view and the "@" mark on rows.

import { $, contactLabel, el, format, on, state, store, t } from "./core.js";
import { composerState, keyHandlers, payloadExtensions, textarea } from "./composer.js";
import { ordering, viewFilters } from "./list.js";
import { toast } from "./toasts.js";

const MAX_QUERY = 40;
const MAX_SHOWN = 8;

function candidates() {
  const { employees, teams } = state.mentionable;
  return [
    ...employees.map((e) => ({ kind: "employee", id: e.id, name: e.name })),
    ...teams.map((x) => ({ kind: "team", id: x.id, name: x.name })),
  ];
}

/**
 * Where "@Name" stands in the text (in any case), for each of the named. Longer names first,
 * and each match blanked out, so "@Bob Agent" isn't also a mention of "@Bob".
 */
export function findMentions(text, named) {
  const found = [];
  // Lower case only when that keeps every offset where it was (it nearly always does).
  const fold = text.toLowerCase().length === text.length;
  let rest = fold ? text.toLowerCase() : text;
  for (const item of [...named].sort((a, b) => b.name.length - a.name.length)) {
    const token = fold ? `@${item.name}`.toLowerCase() : `@${item.name}`;
    for (let i = rest.indexOf(token); i >= 0; i = rest.indexOf(token, i + 1)) {
      const before = i === 0 ? " " : rest[i - 1];
      const after = rest[i + token.length] || " ";
      if (/[\p{L}\p{N}_@]/u.test(before) || /[\p{L}\p{N}_]/u.test(after)) continue;
      found.push({ ...item, start: i, end: i + token.length });
      rest = rest.slice(0, i) + " ".repeat(token.length) + rest.slice(i + token.length);
    }
  }
  return found.sort((a, b) => a.start - b.start);
}

// --- Sending: the ids of those the note names ----------------------------------------------------

payloadExtensions.push((payload, mode) => {
  if (mode !== "note") return;
  const found = findMentions(payload.body, candidates());
  if (!found.length) return;
  const ids = (kind) => [...new Set(found.filter((f) => f.kind === kind).map((f) => f.id))];
  payload.mentions = { employees: ids("employee"), teams: ids("team") };
});

// --- The autocomplete -------------------------------------------------------------------------------

let menu = null;
let options = [];
let active = 0;
let query = null; // { start, text }: the "@…" being typed

function currentQuery() {
  if (composerState.mode !== "note") return null;
  const before = textarea.value.slice(0, textarea.selectionStart);
  const at = before.lastIndexOf("@");
  if (at < 0 || (at > 0 && !/\s/.test(before[at - 1]))) return null;
  const text = before.slice(at + 1);
  if (text.length > MAX_QUERY || /[\n@]/.test(text)) return null;
  return { start: at, text };
}

function matches(text) {
  const q = text.toLocaleLowerCase();
  return candidates()
    // "ag" finds "Bob Agent", "bob a" too: any word the name has may start the query.
    .filter((c) => c.name.toLocaleLowerCase().split(/\s+/).some((_, i, words) => words.slice(i).join(" ").startsWith(q)))
    .slice(0, MAX_SHOWN);
}

function closeMenu() {
  if (menu) menu.remove();
  menu = null;
  query = null;
  textarea.removeAttribute("aria-activedescendant");
}

function drawMenu() {
  if (!menu) {
    menu = el("ul", { class: "menu mention-menu", role: "listbox", id: "mention-menu", "data-testid": "mention-menu" });
    menu.addEventListener("mousedown", (event) => {
      const item = event.target.closest("[data-index]");
      if (!item) return;
      event.preventDefault(); // keep the focus in the note box
      choose(Number(item.dataset.index));
    });
    textarea.closest("form").append(menu);
  }
  menu.replaceChildren(...options.map((c, i) => el("li", {
    role: "option", id: `mention-option-${i}`, "aria-selected": i === active ? "true" : "false",
    class: i === active ? "active" : "", dataset: { index: i }, "data-testid": "mention-option",
  }, el("span", {}, c.name), c.kind === "team" ? el("span", { class: "menu-kind" }, t.mentionTeam) : null)));
  textarea.setAttribute("aria-activedescendant", `mention-option-${active}`);
}

function update() {
  query = currentQuery();
  options = query ? matches(query.text) : [];
  if (!options.length) { closeMenu(); return; }
  active = Math.min(active, options.length - 1);
  drawMenu();
}

function choose(index) {
  const chosen = options[index];
  if (!chosen || !query) return;
  const end = textarea.selectionStart;
  const inserted = `@${chosen.name} `;
  textarea.setRangeText(inserted, query.start, end, "end");
  closeMenu();
  textarea.focus();
  textarea.dispatchEvent(new Event("input")); // the length hint and typing notices see it too
}

keyHandlers.push((event) => {
  if (!menu) return false;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    active = (active + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
    drawMenu();
  } else if (event.key === "Enter" || event.key === "Tab") {
    choose(active);
  } else if (event.key === "Escape") {
    closeMenu();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
});

if (textarea && store.current) {
  textarea.setAttribute("aria-controls", "mention-menu");
  textarea.addEventListener("input", () => { active = 0; update(); });
  textarea.addEventListener("click", update);
  textarea.addEventListener("blur", () => setTimeout(closeMenu, 150));
  for (const tab of document.querySelectorAll("[data-mode]")) tab.addEventListener("click", closeMenu);
}

// --- In the thread: names in notes stand out --------------------------------------------------------

const everyone = () => [
  ...Object.values(state.teammates).map((name) => ({ name })),
  ...state.teams.map((x) => ({ name: x.name })),
];

on("messageNode", (m, node) => {
  if (m.kind !== "note" || m.deleted) return;
  const body = node.querySelector(".body");
  const found = findMentions(m.body, everyone());
  if (!body || !found.length) return;
  const parts = [];
  let at = 0;
  for (const f of found) {
    parts.push(m.body.slice(at, f.start), el("span", { class: "mention" }, m.body.slice(f.start, f.end)));
    at = f.end;
  }
  parts.push(m.body.slice(at));
  body.replaceChildren(...parts);
});

// --- Being mentioned --------------------------------------------------------------------------------

viewFilters.mentions = (c) => Boolean(c.last_mention_message_id);
ordering.byView.mentions = (a, b) => (b.last_mention_message_id || 0) - (a.last_mention_message_id || 0) || b.id - a.id;

on("event", (event, c) => {
  const mentions = event.payload.mentions;
  if (event.type !== "message.created" || !mentions || event.actor_id === state.me) return;
  const team = mentions.team_ids.find((id) => state.myTeams.includes(id));
  if (!mentions.employee_ids.includes(state.me) && team === undefined) return;
  c.last_mention_message_id = event.payload.message.id;
  const isOpen = store.current && store.current.id === c.id;
  if (!isOpen) c.mention_unread = true;
  if (isOpen && !document.hidden) return;
  const actor = state.teammates[event.actor_id] || t.someone;
  const name = contactLabel(c.contact_name, c.contact_id);
  const teamName = team === undefined ? null : (state.teams.find((x) => x.id === team) || {}).name;
  const text = mentions.employee_ids.includes(state.me)
    ? format(t.mentionedYou, { actor, name })
    : format(t.mentionedTeam, { actor, team: teamName, name });
  toast(text, { href: `/inbox/${c.id}/?view=mentions&status=${c.status}`, kind: "mention" });
});

on("row", (c, row) => {
  if (!c.mention_unread) return;
  $(".row-bottom", row).append(el("span", { class: "mention-badge", "data-testid": "mention-badge", title: t.mentioned }, "@"));
});
