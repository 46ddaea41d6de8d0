// The reply / internal-note box under the open conversation.

import { $, api, format, state, store, t } from "./core.js";
import { appendMessage } from "./thread.js";

const composer = $("[data-composer]");
export const textarea = composer ? composer.querySelector("textarea") : null;
export const composerState = { mode: "reply" };

// Features that take over keys while they show something (a menu of canned answers or of
// names to mention) register here; a handler returning true has handled the key.
export const keyHandlers = [];
// Features that add to what is sent (the ids a note mentions) register here: (payload, mode) => void.
export const payloadExtensions = [];
// Files (static/app/inbox/files.js) make a message without text, hold it back while they
// upload, and are cleared once it is sent: hasContent () => bool, blocker () => reason or
// null, sent () => void.
export const composerHooks = { hasContent: [], blocker: [], sent: [] };

// The message being sent and its Idempotency-Key, kept until the server has answered it.
let pending = null;

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts (https, localhost) only
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function startComposer() {
  if (!composer || !store.current) return;
  const hint = $("[data-composer-hint]");
  const tabs = composer.querySelectorAll("[data-mode]");
  const can = state.can;
  for (const tab of tabs) {
    tab.hidden = tab.dataset.mode === "reply" ? !can.reply : !can.note;
    tab.addEventListener("click", () => {
      composerState.mode = tab.dataset.mode;
      for (const other of tabs) other.classList.toggle("active", other === tab);
      composer.classList.toggle("note-mode", composerState.mode === "note");
      textarea.placeholder = composerState.mode === "note" ? t.notePlaceholder : t.replyPlaceholder;
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
    if (keyHandlers.some((handle) => handle(event))) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = textarea.value.trim();
    if (!body && !composerHooks.hasContent.some((has) => has())) return;
    const blocked = composerHooks.blocker.map((why) => why()).find(Boolean);
    if (blocked) {
      hint.textContent = blocked;
      hint.classList.add("over");
      return;
    }
    const path = composerState.mode === "note" ? "notes" : "reply";
    composer.classList.add("sending");
    try {
      const payload = { body };
      for (const extend of payloadExtensions) extend(payload, composerState.mode);
      const url = `/api/v1/conversations/${store.current.id}/${path}`;
      // One key per message: sending the same message again after a failure (its answer lost
      // to a network error, a 503) reuses it, so the server stores it once and answers with it.
      const attempt = JSON.stringify([url, payload]);
      if (pending?.attempt !== attempt) pending = { attempt, key: newKey() };
      const message = await api(url, payload, { headers: { "Idempotency-Key": pending.key } });
      pending = null;
      appendMessage(message); // the socket's copy of the same message is then ignored by id
      textarea.value = "";
      hint.textContent = "";
      hint.classList.remove("over");
      for (const done of composerHooks.sent) done();
    } catch (error) {
      hint.textContent = format(t.failed, { reason: error.message });
      hint.classList.add("over");
    } finally {
      composer.classList.remove("sending");
    }
  });
}
