// Arriving from a search result (…/inbox/12/#message-345): bring that message into view
// and outline it for a moment, so the agent sees what they searched for in its context.

import { $ } from "./core.js";

export function showFoundMessage() {
  const wanted = /^#message-(\d+)$/.exec(location.hash);
  const node = wanted && $(`[data-thread] li[data-id="${wanted[1]}"]`);
  if (!node) return;
  node.classList.add("found");
  node.scrollIntoView({ block: "center" });
  setTimeout(() => node.classList.remove("found"), 4000);
}
