// How far each message to the customer got on a channel with an outside API (Telegram, VK, …):
// a line under the bubble, kept live by `delivery.updated` events, with Retry on a message that
// failed or whose send was interrupted. Retry goes through the thread's message actions
// (data-message-action="retry" → POST …/messages/{id}/retry), like Delete and Restore.

import { el, format, on, state, store, t } from "./core.js";
import { patchMessage } from "./thread.js";

const WORDS = { queued: "deliveryQueued", sending: "deliverySending", sent: "deliverySent", unknown: "deliveryUnknown" };

function statusText(delivery) {
  if (delivery.status === "failed") return format(t.deliveryFailed, { error: delivery.last_error });
  // No answer came for a part (the adapter names it); without words, a worker died mid-send.
  if (delivery.status === "unknown" && delivery.last_error) return format(t.deliveryUnknownWhy, { error: delivery.last_error });
  // Queued again after a failure: on its way still, and the agent sees why it is late.
  if (delivery.status === "queued" && delivery.last_error) return format(t.deliveryRetrying, { error: delivery.last_error });
  return t[WORDS[delivery.status]] || delivery.status;
}

function deliveryLine(delivery, deleted) {
  // A deleted message can't be sent again (restore it first); its line still says how far it got.
  const retryable = (delivery.status === "failed" || delivery.status === "unknown") && state.can.reply && !deleted;
  return el("div", { class: `delivery delivery-${delivery.status}`, "data-testid": "delivery", "data-delivery-status": delivery.status },
    el("span", { class: "delivery-status" }, statusText(delivery)),
    retryable
      ? el("button", { type: "button", class: "message-tool tool-retry", "data-message-action": "retry", "data-testid": "message-retry" }, t.retry)
      : null);
}

on("messageNode", (m, node) => {
  if (!m.delivery) return;
  node.querySelector(".bubble").append(deliveryLine(m.delivery, m.deleted));
});

on("event", (event) => {
  if (event.type !== "delivery.updated" || !store.current || event.conversation_id !== store.current.id) return;
  patchMessage(event.payload.message_id, { delivery: event.payload.delivery });
});
