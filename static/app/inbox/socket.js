// One websocket keeps the list and the open conversation live. After a reconnect it asks for
// the events after the last id it applied; the server re-sends a window before that id (late
// committers), so every event is applied at most once by id.

import { $, emit, state, store, t } from "./core.js";
import { renderList, upsertConversation } from "./list.js";
import { appendMessage, markReadSoon, renderHeader, updateMessage } from "./thread.js";

const liveStatus = $("[data-live-status]");
// Events already reflected in the page: the catch-up window re-sends them, we skip them.
const appliedEvents = new Set(state.seenEventIds);
let lastEventId = state.lastEventId;
let socket = null;
let retry = 0;
let pingTimer = null;

function applyEvent(event) {
  if (appliedEvents.has(event.id)) return;
  appliedEvents.add(event.id);
  lastEventId = Math.max(lastEventId, event.id);
  const snapshot = event.payload.conversation;
  const c = upsertConversation(snapshot, event.visible);
  const isOpen = store.current && store.current.id === snapshot.id;
  if (event.type === "message.created") {
    const m = event.payload.message;
    if (isOpen) {
      appendMessage(m);
      markReadSoon();
    } else if (m.direction === "in") {
      c.unread = (c.unread || 0) + 1;
    }
  } else if (["message.deleted", "message.restored", "message.edited", "attachment.updated"].includes(event.type) && isOpen) {
    updateMessage(event.payload.message);
  }
  if (isOpen) {
    store.current = { ...store.current, ...snapshot, visible: event.visible };
    renderHeader();
  }
  emit("event", event, c);
}

function applyAll(events) {
  for (const event of events) applyEvent(event);
  renderList();
}

function setLive(ok) {
  if (!liveStatus) return;
  liveStatus.hidden = false;
  liveStatus.textContent = ok ? t.live : t.reconnecting;
  liveStatus.classList.toggle("ok", ok);
  document.body.dataset.live = ok ? "yes" : "no";
}

/** Send a message over the socket when it is open (typing notices and the like); else drop it. */
export function send(data) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
}

export function connect() {
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
      pingTimer = setInterval(() => send({ type: "ping", after: lastEventId }), (data.ping_seconds || 25) * 1000);
      emit("message", data); // features read what the hello carries (colleagues' presence)
    } else if (data.type === "event") applyAll([data.event]);
    // How far the log is, sent after every event this page may see up to it: resume from there.
    else if (data.type === "position") lastEventId = Math.max(lastEventId, data.event_id);
    else if (data.type === "catchup") {
      if (data.reset) location.reload(); // too much was missed: start from a fresh page
      else { applyAll(data.events); setLive(true); }
    } else if (data.type === "error") console.warn("inbox socket:", data.message);
    else emit("message", data);
  });
  socket.addEventListener("close", (event) => {
    clearInterval(pingTimer);
    setLive(false);
    if (event.code === 4401) { location.href = `/login/?next=${encodeURIComponent(location.pathname + location.search)}`; return; }
    const delay = Math.min(15000, 1000 * 2 ** retry++) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  });
}

export const inspect = { get lastEventId() { return lastEventId; }, get socket() { return socket; } };
