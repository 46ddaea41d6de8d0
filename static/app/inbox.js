// The agent inbox: renders the list and the open conversation from the page's state, then
// keeps both live over one websocket. After a reconnect it asks for the events after the
// last id it applied; the server re-sends a window before that id (late committers), so
// every event is applied at most once by id.

const state = JSON.parse(document.getElementById("inbox-state").textContent);
const t = state.i18n;
const $ = (selector, root = document) => root.querySelector(selector);

const list = $("[data-list]");
const listEmpty = $("[data-list-empty]");
const thread = $("[data-thread]");
const composer = $("[data-composer]");
const liveStatus = $("[data-live-status]");

const conversations = new Map(state.conversations.map((c) => [c.id, c]));
const shownMessages = new Map(); // id → the message as shown in the open thread
// Events already reflected in the page: the catch-up window re-sends them, we skip them.
const appliedEvents = new Set(state.seenEventIds);
let lastEventId = state.lastEventId;
let current = state.conversation; // the open conversation's snapshot, or null
let mode = "reply";

// --- Formatting -----------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone: state.timezone, hour: "2-digit", minute: "2-digit",
});
const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone: state.timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
const dayKey = new Intl.DateTimeFormat("en-CA", { timeZone: state.timezone, dateStyle: "short" });

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return dayKey.format(date) === dayKey.format(new Date()) ? timeFormat.format(date) : dateFormat.format(date);
}

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => values[key] ?? "");
}

function el(tag, attrs = {}, ...children) {
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

function contactLabel(name, contactId) {
  // Events carry the contact's own name or ""; the fallback is shown in the reader's language.
  return name || format(t.visitor, { id: contactId });
}

function initials(name) {
  // First letter or digit of the first two words: "Visitor #2" → "V2", "Анна Петрова" → "АП".
  const letters = (name || "").split(/\s+/).map((w) => (w.match(/[\p{L}\p{N}]/u) || [""])[0]).filter(Boolean);
  return letters.slice(0, 2).join("").toUpperCase() || "?";
}

// --- The list -------------------------------------------------------------------------------

function belongsInList(c) {
  if (c.deleted || c.visible === false || c.status !== state.status) return false;
  if (state.view === "mine") return c.assignee_id === state.me;
  if (state.view === "unassigned") return !c.assignee_id;
  return true;
}

function conversationUrl(id) {
  return `/inbox/${id}/?view=${state.view}&status=${state.status}`;
}

function renderRow(c) {
  const unread = c.unread > 0 ? el("span", { class: "badge", "data-testid": "unread" }, String(c.unread)) : null;
  const assignee = c.assignee_name ? c.assignee_name : t.unassigned;
  const name = contactLabel(c.contact_name, c.contact_id);
  return el("li", { dataset: { id: c.id }, class: current && current.id === c.id ? "selected" : "" },
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
}

function renderList() {
  const rows = [...conversations.values()]
    .filter(belongsInList)
    .sort((a, b) => (b.last_activity_at || "").localeCompare(a.last_activity_at || "") || b.id - a.id);
  list.replaceChildren(...rows.map(renderRow));
  listEmpty.hidden = rows.length > 0;
}

function upsertConversation(snapshot, visible) {
  const known = conversations.get(snapshot.id);
  const merged = { unread: 0, ...known, ...snapshot, visible };
  conversations.set(snapshot.id, merged);
  return merged;
}

// --- The open conversation ------------------------------------------------------------------

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
  const name = m.direction === "in" && current ? contactLabel(m.author_name, current.contact_id) : m.author_name;
  const author = m.kind === "note" ? `${name} · ${t.note}` : name;
  // Delete sits in the head (shown on hover); Restore under a deleted message. Never on system lines.
  const deletable = m.kind !== "system" && !m.deleted && state.can.deleteMessages;
  const restorable = m.kind !== "system" && m.deleted && state.can.restore;
  return el("li", { class: `message ${kind}${m.deleted ? " deleted" : ""}`, dataset: { id: m.id }, "data-testid": "message", "data-kind": kind },
    el("div", { class: "bubble" },
      el("div", { class: "message-head" },
        el("span", { class: "author" }, author),
        el("span", { class: "head-right" },
          deletable ? messageButton("delete", t.delete) : null,
          el("time", { datetime: m.created_at }, when(m.created_at)))),
      messageBody(m),
      restorable ? el("div", { class: "message-tools" }, messageButton("restore", t.restore)) : null));
}

function appendMessage(m) {
  if (!thread || shownMessages.has(m.id)) return;
  shownMessages.set(m.id, m);
  thread.append(renderMessage(m));
  thread.scrollTop = thread.scrollHeight;
}

function updateMessage(m) {
  // A message was deleted or restored: redraw it in place.
  if (!thread) return;
  const known = shownMessages.get(m.id);
  if (!known) { appendMessage(m); return; }
  const merged = { ...known, ...m };
  // The deletion event never carries the text: who may see it keeps the copy they have,
  // everyone else forgets it.
  if (m.deleted && !m.body) merged.body = state.can.seeDeleted ? known.body : "";
  shownMessages.set(m.id, merged);
  const node = thread.querySelector(`li[data-id="${m.id}"]`);
  if (node) node.replaceWith(renderMessage(merged));
}

function renderHeader() {
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
  for (const row of list.children) row.classList.toggle("selected", Number(row.dataset.id) === current.id);
}

let readTimer = null;
function markReadSoon() {
  if (!current || document.hidden) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    api(`/api/v1/conversations/${current.id}/read`, {}).catch(() => {});
    const c = conversations.get(current.id);
    if (c) { c.unread = 0; renderList(); }
  }, 300);
}

// --- Events ---------------------------------------------------------------------------------

function applyEvent(event) {
  if (appliedEvents.has(event.id)) return;
  appliedEvents.add(event.id);
  lastEventId = Math.max(lastEventId, event.id);
  const snapshot = event.payload.conversation;
  const c = upsertConversation(snapshot, event.visible);
  const isOpen = current && current.id === snapshot.id;
  if (event.type === "message.created") {
    const m = event.payload.message;
    if (isOpen) {
      appendMessage(m);
      markReadSoon();
    } else if (m.direction === "in") {
      c.unread = (c.unread || 0) + 1;
    }
  } else if ((event.type === "message.deleted" || event.type === "message.restored") && isOpen) {
    updateMessage(event.payload.message);
  }
  if (isOpen) {
    current = { ...current, ...snapshot, visible: event.visible };
    renderHeader();
  }
}

function applyAll(events) {
  for (const event of events) applyEvent(event);
  renderList();
}

// --- The socket -----------------------------------------------------------------------------

let socket = null;
let retry = 0;
let pingTimer = null;

function setLive(ok) {
  if (!liveStatus) return;
  liveStatus.hidden = false;
  liveStatus.textContent = ok ? t.live : t.reconnecting;
  liveStatus.classList.toggle("ok", ok);
  document.body.dataset.live = ok ? "yes" : "no";
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/inbox/`);
  socket.addEventListener("open", () => {
    retry = 0;
    socket.send(JSON.stringify({ type: "resume", after: lastEventId }));
  });
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "hello") {
      // The ping keeps presence fresh; on the embedded default it also fetches events that
      // other processes wrote, so it carries the last event id this page has applied.
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping", after: lastEventId }));
      }, (data.ping_seconds || 25) * 1000);
    } else if (data.type === "event") applyAll([data.event]);
    else if (data.type === "catchup") {
      if (data.reset) location.reload(); // too much was missed: start from a fresh page
      else { applyAll(data.events); setLive(true); }
    } else if (data.type === "error") console.warn("inbox socket:", data.message);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(pingTimer);
    setLive(false);
    if (event.code === 4401) { location.href = `/login/?next=${encodeURIComponent(location.pathname + location.search)}`; return; }
    const delay = Math.min(15000, 1000 * 2 ** retry++) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  });
}

// --- Talking to the API ----------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.message || response.statusText);
  return data;
}

function setupComposer() {
  if (!composer) return;
  const textarea = composer.querySelector("textarea");
  const hint = $("[data-composer-hint]");
  const tabs = composer.querySelectorAll("[data-mode]");
  const can = state.can;
  for (const tab of tabs) {
    tab.hidden = tab.dataset.mode === "reply" ? !can.reply : !can.note;
    tab.addEventListener("click", () => {
      mode = tab.dataset.mode;
      for (const other of tabs) other.classList.toggle("active", other === tab);
      composer.classList.toggle("note-mode", mode === "note");
      textarea.placeholder = mode === "note" ? t.notePlaceholder : t.replyPlaceholder;
      textarea.focus();
    });
  }
  if (!can.reply && can.note) tabs[1].click();
  textarea.addEventListener("input", () => {
    const left = state.maxChars - textarea.value.length;
    hint.textContent = left < 200 ? String(left) : "";
    hint.classList.toggle("over", left < 0);
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = textarea.value.trim();
    if (!body) return;
    const path = mode === "note" ? "notes" : "reply";
    composer.classList.add("sending");
    try {
      const message = await api(`/api/v1/conversations/${current.id}/${path}`, { body });
      appendMessage(message); // the socket's copy of the same message is then ignored by id
      textarea.value = "";
      hint.textContent = "";
    } catch (error) {
      hint.textContent = format(t.failed, { reason: error.message });
      hint.classList.add("over");
    } finally {
      composer.classList.remove("sending");
    }
  });
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
      updateMessage(await api(`/api/v1/conversations/${current.id}/messages/${id}/${verb}`, {}));
    } catch (error) {
      button.disabled = false;
      alert(error.message);
    }
  });
}

function setupActions() {
  const actions = {
    "assign-me": () => api(`/api/v1/conversations/${current.id}/assign`, { assignee_id: state.me }),
    resolve: () => api(`/api/v1/conversations/${current.id}/resolve`, {}),
    reopen: () => api(`/api/v1/conversations/${current.id}/reopen`, {}),
    "delete-conversation": () => confirm(t.confirmDeleteConversation)
      ? api(`/api/v1/conversations/${current.id}/delete`, {}) : null,
  };
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const snapshot = await actions[button.dataset.action]();
        if (!snapshot) return;
        current = { ...current, ...snapshot };
        upsertConversation(snapshot, true);
        renderHeader();
        renderList();
        // In the Trash it is no longer anyone's to work on: back to the list.
        if (snapshot.deleted) location.assign(`/inbox/?view=${state.view}&status=${state.status}`);
      } catch (error) {
        alert(error.message);
      } finally {
        button.disabled = false;
      }
    });
  }
}

// --- Start ------------------------------------------------------------------------------------

renderList();
if (current) {
  for (const m of state.messages) appendMessage(m);
  renderHeader();
  markReadSoon();
  setupComposer();
  setupActions();
  setupMessageActions();
  document.addEventListener("visibilitychange", markReadSoon);
}
connect();
window.smartchatInbox = { get lastEventId() { return lastEventId; }, get socket() { return socket; } };
