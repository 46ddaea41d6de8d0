// Small notices in the corner (a conversation woke up, someone mentioned you). They link to
// the conversation, close by themselves after a while and never steal the keyboard focus.

import { el, t } from "./core.js";

const SHOWN_MS = 10000;
let stack = null;

function container() {
  if (!stack) {
    stack = el("div", { class: "toasts", role: "status", "aria-live": "polite", "data-testid": "toasts" });
    document.body.append(stack);
  }
  return stack;
}

/** Show one notice; ``href`` makes its text a link (to the conversation it is about). */
export function toast(text, { href = null, kind = "info" } = {}) {
  const close = el("button", { type: "button", class: "toast-close", "aria-label": t.close, title: t.close }, "×");
  const body = href ? el("a", { href, class: "toast-text" }, text) : el("span", { class: "toast-text" }, text);
  const node = el("div", { class: `toast toast-${kind}`, "data-testid": "toast" }, body, close);
  const remove = () => node.remove();
  close.addEventListener("click", remove);
  setTimeout(remove, SHOWN_MS);
  container().append(node);
  return node;
}
