// Marks on messages that no person sent or that changed nothing: a quick answer's automatic
// reply, and a message a blocked contact wrote (kept for the record, it notified nobody).

import { el, on, t } from "./core.js";

function mark(m, node) {
  const label = m.automatic ? t.automaticReply : m.while_blocked ? t.receivedWhileBlocked : null;
  if (!label) return;
  node.classList.add(m.automatic ? "automatic" : "while-blocked");
  node.querySelector(".message-head").prepend(
    el("span", { class: "mark", "data-testid": m.automatic ? "automatic-mark" : "blocked-mark" }, label));
}

export function startMarks() {
  on("messageNode", mark);
}
