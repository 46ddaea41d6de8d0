// Typing indicators. Outgoing: while the agent types, a notice every few seconds and one when
// they stop; the server shows a reply being typed to the customer, a note only to colleagues.
// Incoming: "The visitor is typing…" or "Bob is typing a reply…" above the open thread's box.

import { $, el, format, on, store, t } from "./core.js";
import { composerState, textarea } from "./composer.js";
import { send } from "./socket.js";

const SEND_EVERY_MS = 2000; // while typing
const IDLE_MS = 4000; // no key pressed for this long: stopped
const SHOWN_MS = 6000; // an indicator that isn't renewed goes away (a lost "stopped")

// --- Outgoing ---------------------------------------------------------------------------------------

let sentAt = 0;
let sentMode = null;
let idleTimer = null;

function notice(typing, mode) {
  send({ type: "typing", conversation_id: store.current.id, mode, typing });
}

function stopped() {
  clearTimeout(idleTimer);
  if (!sentMode) return;
  notice(false, sentMode);
  sentMode = null;
  sentAt = 0;
}

if (textarea && store.current) {
  textarea.addEventListener("input", () => {
    if (!textarea.value.trim()) { stopped(); return; }
    const mode = composerState.mode;
    if (sentMode && sentMode !== mode) stopped();
    const now = Date.now();
    if (now - sentAt >= SEND_EVERY_MS) {
      notice(true, mode);
      sentAt = now;
      sentMode = mode;
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stopped, IDLE_MS);
  });
  textarea.form.addEventListener("submit", stopped);
  for (const tab of document.querySelectorAll("[data-mode]")) tab.addEventListener("click", stopped);
  // A closed tab sends nothing: the indicator on the other side goes away by itself.
}

// --- Incoming ---------------------------------------------------------------------------------------

const typists = new Map(); // "visitor" or "agent-<id>" → { text, timer }
const line = el("span", { class: "typing-line", "aria-live": "polite", "data-testid": "typing-indicator" });
const tabs = $(".composer-tabs");
if (tabs) tabs.append(line);

function draw() {
  line.textContent = [...typists.values()].map((x) => x.text).join(" · ");
}

function forget(key) {
  clearTimeout(typists.get(key)?.timer);
  typists.delete(key);
  draw();
}

on("message", (data) => {
  if (data.type !== "typing" || !store.current || data.conversation_id !== store.current.id) return;
  const key = data.from === "visitor" ? "visitor" : `agent-${data.employee_id}`;
  forget(key);
  if (!data.typing) return;
  const text = data.from === "visitor"
    ? t.visitorTyping
    : format(data.mode === "note" ? t.agentTypingNote : t.agentTypingReply, { name: data.name });
  typists.set(key, { text, timer: setTimeout(() => forget(key), SHOWN_MS) });
  draw();
});

on("event", (event) => {
  // Their message arrived: whatever they were typing is sent.
  const message = event.payload.message;
  if (event.type !== "message.created" || !store.current || event.conversation_id !== store.current.id) return;
  forget(message.direction === "in" ? "visitor" : `agent-${message.author_employee_id}`);
});

