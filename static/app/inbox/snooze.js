// Snoozing: the header's Snooze menu (presets computed by the server on the company's clock,
// or any date and time), Unsnooze, the wake time on Snoozed rows, and a notice for the
// assignee when one of their conversations wakes up.

import { $, api, contactLabel, el, format, on, state, store, t, when } from "./core.js";
import { actions, showSnapshot } from "./thread.js";
import { toast } from "./toasts.js";

const control = $("[data-snooze-control]");
let menu = null;

/** The company's wall-clock time now, as a datetime-local value ("2025-05-14T09:30"). */
function companyNow() {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: state.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date());
  const v = Object.fromEntries(parts.map((p) => [p.type, p.value]));
  return `${v.year}-${v.month}-${v.day}T${v.hour}:${v.minute}`;
}

async function snoozeWith(body) {
  // Held here: once the snapshot shows the chat snoozed, the header hook closes the menu and
  // forgets it (``menu`` is null by the time ``finally`` runs).
  const node = menu;
  const buttons = node.querySelectorAll("button");
  const error = node.querySelector("[data-snooze-error]");
  error.hidden = true;
  for (const button of buttons) button.disabled = true;
  try {
    showSnapshot(await api(`/api/v1/conversations/${store.current.id}/snooze`, body));
    closeMenu();
  } catch (failure) {
    // The server's words: "Snooze time must be in the future." and the like.
    error.textContent = failure.message;
    error.hidden = false;
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function buildMenu() {
  const presets = state.snoozePresets.map((p) =>
    el("button", { type: "button", role: "menuitem", "data-testid": `snooze-${p.key}` }, p.label));
  presets.forEach((button, i) => button.addEventListener("click", () => snoozeWith({ preset: state.snoozePresets[i].key })));
  const input = el("input", { type: "datetime-local", "data-testid": "snooze-until", "aria-label": t.snoozePick });
  const pick = el("button", { type: "button", class: "primary", "data-testid": "snooze-pick" }, t.snoozeAt);
  pick.addEventListener("click", () => {
    if (!input.value) { input.focus(); return; }
    snoozeWith({ until: input.value }); // no offset: the server reads it on the company's clock
  });
  const node = el("div", { class: "menu snooze-menu", role: "menu", "data-testid": "snooze-menu" },
    ...presets,
    el("div", { class: "menu-sep", role: "separator" }),
    el("label", { class: "menu-label" }, t.snoozePick, input),
    pick,
    el("p", { class: "menu-error", role: "alert", "data-snooze-error": "", "data-testid": "snooze-error", hidden: true }));
  node.addEventListener("keydown", (event) => { if (event.key === "Escape") closeMenu(true); });
  return node;
}

function openMenu() {
  menu = buildMenu();
  control.append(menu);
  menu.querySelector("input").min = companyNow();
  control.querySelector("[data-snooze-toggle]").setAttribute("aria-expanded", "true");
  menu.querySelector("button").focus();
}

function closeMenu(refocus = false) {
  if (!menu) return;
  menu.remove();
  menu = null;
  const toggle = control.querySelector("[data-snooze-toggle]");
  toggle.setAttribute("aria-expanded", "false");
  if (refocus) toggle.focus();
}

function startMenu() {
  if (!control) return;
  control.querySelector("[data-snooze-toggle]").addEventListener("click", () => (menu ? closeMenu() : openMenu()));
  document.addEventListener("click", (event) => { if (menu && !control.contains(event.target)) closeMenu(); });
}

actions.unsnooze = () => api(`/api/v1/conversations/${store.current.id}/wake`, {});

on("header", (current) => {
  if (!control) return;
  const can = state.can.snooze && !current.deleted;
  control.hidden = !can || current.status !== "open";
  $('[data-action="unsnooze"]').hidden = !can || current.status !== "snoozed";
  if (control.hidden) closeMenu();
});

on("row", (c, row) => {
  if (c.status !== "snoozed" || !c.snoozed_until) return;
  const meta = row.querySelector(".row-meta");
  meta.append(" · ", el("span", { class: "row-wake", "data-testid": "wakes-at" }, format(t.wakesAt, { time: when(c.snoozed_until) })));
});

const WOKE = { time: "wokeTime", customer: "wokeCustomer", teammate: "wokeTeammate", manual: "wokeManual" };

on("event", (event, c) => {
  // Only the assignee is told, and not about what they did themselves.
  if (event.type !== "conversation.woken" || c.assignee_id !== state.me || event.actor_id === state.me) return;
  const template = t[WOKE[event.payload.reason] || "wokeTime"];
  const actor = (event.actor_id && state.teammates[event.actor_id]) || t.someone;
  toast(format(template, { name: contactLabel(c.contact_name, c.contact_id), actor }), {
    href: `/inbox/${c.id}/?view=${state.view}&status=open`,
    kind: "wake",
  });
});

startMenu();
