// Who is online: colleagues' presence (for the assignee picker) and one's own in the top bar.
// Colleagues' changes arrive as socket messages; the hello (and, without a shared channel
// layer, every pong) carries the whole picture.

import { $, api, on, state, t } from "./core.js";

state.presence = state.presence || {};
const listeners = [];

/** Call ``fn`` whenever someone's presence changes. */
export function onPresence(fn) {
  listeners.push(fn);
}

export function presenceOf(id) {
  return state.presence[id] || "offline";
}

export function presenceLabel(presence) {
  return { online: t.presenceOnline, away: t.presenceAway, offline: t.presenceOffline }[presence] || presence;
}

function showOwn(presence) {
  const form = $("[data-presence-form]");
  if (!form || !presence) return;
  form.elements.presence.value = presence;
  $("[data-presence-dot]", form).dataset.presence = presence;
}

function update(changes) {
  Object.assign(state.presence, changes);
  if (state.me in changes) showOwn(changes[state.me]);
  for (const fn of listeners) fn();
}

function setupMenu() {
  // The menu works on every page as a plain form; here it answers without leaving the inbox.
  const form = $("[data-presence-form]");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const select = form.elements.presence;
    const wanted = select.value;
    select.disabled = true;
    try {
      const data = await api("/api/v1/presence", { presence: wanted });
      update({ [state.me]: data.presence });
    } catch (error) {
      alert(error.message);
      showOwn(presenceOf(state.me));
    } finally {
      select.disabled = false;
    }
  });
}

export function startPresence() {
  setupMenu();
  on("message", (data) => {
    if (data.type === "presence") update({ [data.employee_id]: data.presence });
    else if ((data.type === "hello" || data.type === "pong") && data.presence) update(data.presence);
  });
}
