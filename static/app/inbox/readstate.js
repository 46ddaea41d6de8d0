// Read state kept in step: the sidebar's counts follow the events, and reading a conversation
// in one tab clears its badges in the employee's other tabs (a "read" notice from the server).

import { api, on, state, store } from "./core.js";
import { renderList } from "./list.js";

const REFRESH_AFTER_MS = 500; // a burst of events costs one request

let timer = null;

/** Ask the server for the sidebar's counts again (soon, once for a burst of changes). */
export function refreshCounts() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    try {
      const counts = await api(`/api/v1/conversations/counts?status=${state.status}`, null, { method: "GET" });
      for (const [view, count] of Object.entries(counts)) {
        const node = document.querySelector(`[data-view-count="${view}"]`);
        if (!node) continue;
        node.textContent = String(count);
        if (view === "mentions") node.classList.toggle("unread", count > 0);
      }
    } catch {
      // Offline for a moment: the next change asks again.
    }
  }, REFRESH_AFTER_MS);
}

on("event", (event, c) => {
  const message = event.payload.message;
  if (event.type === "message.created") {
    const isOpen = store.current && store.current.id === c.id;
    // Remember which customer messages made the badge, to recount it when read elsewhere.
    if (message.direction === "in" && !isOpen) (c.liveUnread ||= []).push(message.id);
    if (event.actor_id === state.me) {
      // Writing in a conversation reads it (the server moved the marker to this message).
      c.unread = 0;
      c.liveUnread = [];
      c.mention_unread = false;
      refreshCounts();
    } else if (event.payload.mentions) {
      refreshCounts();
    }
    return;
  }
  refreshCounts(); // assigned, snoozed, woken, resolved, deleted…: lists change size
});

on("message", (data) => {
  if (data.type !== "read") return;
  const c = store.conversations.get(data.conversation_id);
  if (c) {
    c.liveUnread = (c.liveUnread || []).filter((id) => id > data.last_read_message_id);
    c.unread = c.liveUnread.length;
    if ((c.last_mention_message_id || 0) <= data.last_read_message_id) c.mention_unread = false;
    renderList();
  }
  refreshCounts();
});
