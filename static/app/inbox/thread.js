// The open conversation: its messages, its header and the buttons that act on it.

import { $, api, contactLabel, el, emit, followEnd, format, keepAtEnd, state, store, t, when } from "./core.js";
import { markSelected, renderList, upsertConversation } from "./list.js";

const thread = $("[data-thread]");
const shownMessages = new Map(); // id → the message as shown in the open thread

function messageBody(m) {
  // A deleted message: struck through, with who and when, for those who may see deleted
  // messages; only "Message deleted" for everyone else (the server sent them no text).
  if (!m.deleted) return [el("div", { class: "body" }, m.body)];
  if (!state.can.seeDeleted) return [el("div", { class: "body", "data-testid": "deleted-placeholder" }, t.deleted)];
  return [
    m.body ? el("div", { class: "body struck" }, m.body) : el("div", { class: "body" }, t.deleted),
    el("div", { class: "deleted-note", "data-testid": "deleted-note" },
      format(t.deletedBy, { name: m.deleted_by_name || "", time: when(m.deleted_at) })),
  ];
}

function messageButton(verb, label) {
  return el("button", {
    type: "button", class: `message-tool tool-${verb}`, "data-message-action": verb, "data-testid": `message-${verb}`,
  }, label);
}

function renderMessage(m) {
  const kind = m.kind === "note" ? "note" : m.kind === "system" ? "system" : m.direction === "in" ? "inbound" : "outbound";
  const current = store.current;
  const name = m.direction === "in" && current ? contactLabel(m.author_name, current.contact_id) : m.author_name;
  const author = m.kind === "note" ? `${name} · ${t.note}` : name;
  // Delete sits in the head (shown on hover); Restore under a deleted message. Never on system lines.
  const deletable = m.kind !== "system" && !m.deleted && state.can.deleteMessages;
  const restorable = m.kind !== "system" && m.deleted && state.can.restore;
  const node = el("li", { class: `message ${kind}${m.deleted ? " deleted" : ""}`, dataset: { id: m.id }, "data-testid": "message", "data-kind": kind },
    el("div", { class: "bubble" },
      el("div", { class: "message-head" },
        el("span", { class: "author" }, author),
        el("span", { class: "head-right" },
          deletable ? messageButton("delete", t.delete) : null,
          el("time", { datetime: m.created_at }, when(m.created_at)),
          m.edited_at ? el("span", {
            class: "edited-mark", "data-testid": "message-edited", title: format(t.editedAt, { time: when(m.edited_at) }),
          }, t.edited) : null)),
      messageBody(m),
      restorable ? el("div", { class: "message-tools" }, messageButton("restore", t.restore)) : null));
  emit("messageNode", m, node);
  return node;
}

export function appendMessage(m) {
  if (!thread || shownMessages.has(m.id)) return;
  shownMessages.set(m.id, m);
  keepAtEnd(thread, () => thread.append(renderMessage(m)));
}

export function updateMessage(m) {
  // A message was deleted, restored or edited: redraw it in place.
  if (!thread) return;
  const known = shownMessages.get(m.id);
  if (!known) { appendMessage(m); return; }
  const merged = { ...known, ...m };
  // The deletion event never carries the text: who may see it keeps the copy they have,
  // everyone else forgets it.
  if (m.deleted && !m.body) merged.body = state.can.seeDeleted ? known.body : "";
  shownMessages.set(m.id, merged);
  const node = thread.querySelector(`li[data-id="${m.id}"]`);
  if (node) {
    node.replaceWith(renderMessage(merged));
    followEnd(thread); // redrawn taller (a fetched file, a delivery line): the end stays in view
  }
}

/** Change a message already in the thread (its delivery status, …) and redraw it; others are ignored. */
export function patchMessage(id, changes) {
  if (shownMessages.has(id)) updateMessage({ id, ...changes });
}

export function renderHeader() {
  const current = store.current;
  if (!current) return;
  const status = current.status === "snoozed" && current.snoozed_until
    ? format(t.snoozedUntil, { time: when(current.snoozed_until) })
    : t[current.status];
  $("[data-thread-status]").textContent = status;
  $("[data-thread-assignee]").textContent = current.assignee_name
    ? format(t.assignedTo, { name: current.assignee_name }) : t.unassigned;
  $("[data-thread-title]").textContent = contactLabel(current.contact_name, current.contact_id);
  const can = state.can;
  $('[data-action="assign-me"]').hidden = current.assignee_id === state.me || !can.reply;
  $('[data-action="resolve"]').hidden = current.status === "resolved" || !can.resolve;
  $('[data-action="reopen"]').hidden = current.status !== "resolved" || !can.resolve;
  $('[data-action="delete-conversation"]').hidden = current.deleted || !can.deleteConversation;
  const gone = $("[data-gone]");
  gone.hidden = current.visible !== false;
  gone.textContent = current.deleted ? t.trashed : t.gone;
  markSelected();
  emit("header", current);
}

/** Take a snapshot the server answered with as the open conversation's new state. */
export function showSnapshot(snapshot) {
  store.current = { ...store.current, ...snapshot };
  upsertConversation(snapshot, true);
  renderHeader();
  renderList();
}

let readTimer = null;
export function markReadSoon() {
  const current = store.current;
  if (!current || document.hidden) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    api(`/api/v1/conversations/${current.id}/read`, {}).catch(() => {});
    const c = store.conversations.get(current.id);
    if (c) { c.unread = 0; renderList(); }
  }, 300);
}

function setupMessageActions() {
  thread.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-message-action]");
    if (!button) return;
    const verb = button.dataset.messageAction;
    if (verb === "delete" && !confirm(t.confirmDeleteMessage)) return;
    const id = Number(button.closest("li").dataset.id);
    button.disabled = true;
    try {
      updateMessage(await api(`/api/v1/conversations/${store.current.id}/messages/${id}/${verb}`, {}));
    } catch (error) {
      button.disabled = false;
      alert(error.message);
    }
  });
}

/** The header's buttons; features add their own through ``actions``. */
export const actions = {
  "assign-me": () => api(`/api/v1/conversations/${store.current.id}/assign`, { assignee_id: state.me }),
  resolve: () => api(`/api/v1/conversations/${store.current.id}/resolve`, {}),
  reopen: () => api(`/api/v1/conversations/${store.current.id}/reopen`, {}),
  "delete-conversation": () => confirm(t.confirmDeleteConversation)
    ? api(`/api/v1/conversations/${store.current.id}/delete`, {}) : null,
};

function setupActions() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || !(button.dataset.action in actions)) return;
    button.disabled = true;
    try {
      const snapshot = await actions[button.dataset.action](button);
      if (!snapshot) return;
      showSnapshot(snapshot);
      // In the Trash it is no longer anyone's to work on: back to the list.
      if (snapshot.deleted) location.assign(`/inbox/?view=${state.view}&status=${state.status}`);
    } catch (error) {
      alert(error.message);
    } finally {
      button.disabled = false;
    }
  });
}

export function startThread() {
  if (!store.current) return;
  for (const m of state.messages) appendMessage(m);
  renderHeader();
  markReadSoon();
  setupActions();
  setupMessageActions();
  document.addEventListener("visibilitychange", markReadSoon);
}
