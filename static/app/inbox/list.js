// The conversation list: which conversations belong in the chosen view and tab, in order.

import { $, contactLabel, el, emit, initials, state, store, t, when } from "./core.js";

const list = $("[data-list]");
const listEmpty = $("[data-list-empty]");

// Views that features add (e.g. "mentions"): name → does a conversation belong in it?
export const viewFilters = {};

function belongsInList(c) {
  if (c.deleted || c.visible === false || c.status !== state.status) return false;
  if (state.view in viewFilters) return viewFilters[state.view](c);
  if (state.view === "mine") return c.assignee_id === state.me;
  if (state.view === "unassigned") return !c.assignee_id;
  return true;
}

export function conversationUrl(id) {
  return `/inbox/${id}/?view=${state.view}&status=${state.status}`;
}

function renderRow(c) {
  const unread = c.unread > 0 ? el("span", { class: "badge", "data-testid": "unread" }, String(c.unread)) : null;
  const assignee = c.assignee_name ? c.assignee_name : t.unassigned;
  const name = contactLabel(c.contact_name, c.contact_id);
  const current = store.current;
  const row = el("li", { dataset: { id: c.id }, class: current && current.id === c.id ? "selected" : "" },
    el("a", { href: conversationUrl(c.id), "data-testid": "conversation-row" },
      el("span", { class: "avatar", "aria-hidden": "true" }, initials(name)),
      el("span", { class: "row-main" },
        el("span", { class: "row-top" },
          el("strong", { class: "row-name" }, name),
          el("time", { datetime: c.last_activity_at }, when(c.last_activity_at))),
        el("span", { class: "row-bottom" },
          el("span", { class: "row-preview" }, c.preview || ""),
          unread),
        el("span", { class: "row-meta" }, `${c.channel_name || c.channel_kind} · ${assignee}`)),
    ));
  emit("row", c, row);
  return row;
}

// Newest activity first; a feature may replace the order (e.g. priority first), and a view
// may have an order of its own (byView: e.g. Mentions, newest mention first).
export const ordering = {
  compare: (a, b) => (b.last_activity_at || "").localeCompare(a.last_activity_at || "") || b.id - a.id,
  byView: {},
};

export function renderList() {
  const compare = ordering.byView[state.view] || ordering.compare;
  const rows = [...store.conversations.values()].filter(belongsInList).sort(compare);
  list.replaceChildren(...rows.map(renderRow));
  listEmpty.hidden = rows.length > 0;
}

export function markSelected() {
  for (const row of list.children) row.classList.toggle("selected", Number(row.dataset.id) === store.current?.id);
}

export function upsertConversation(snapshot, visible) {
  const known = store.conversations.get(snapshot.id);
  const merged = { unread: 0, ...known, ...snapshot, visible };
  store.conversations.set(snapshot.id, merged);
  return merged;
}
