// Bulk actions: a checkbox on every row and, once some are ticked, a bar that assigns, snoozes,
// resolves or sets the priority of all of them in one request (POST /api/v1/conversations/bulk).

import { $, api, contactLabel, el, format, on, state, store, t } from "./core.js";
import { renderList, upsertConversation } from "./list.js";
import { toast } from "./toasts.js";

const list = $("[data-list]");
const selected = new Set();
const can = state.can;

function shownIds() {
  return [...list.querySelectorAll("li[data-id]")].map((li) => Number(li.dataset.id));
}

/** The ticked conversations still in the list (one that left it is not acted on unseen). */
function chosen() {
  const shown = new Set(shownIds());
  return [...selected].filter((id) => shown.has(id));
}

function choice(name, placeholder, entries) {
  return el("select", { "data-bulk-select": name, "data-testid": `bulk-${name}`, "aria-label": placeholder },
    el("option", { value: "" }, placeholder),
    ...entries.map(([value, label]) => el("option", { value }, label)));
}

const count = el("span", { class: "bulk-count", "data-testid": "bulk-count" });
const bar = el("div", { class: "bulk-bar", "data-testid": "bulk-bar", hidden: true },
  count,
  el("button", { type: "button", class: "link-button", "data-bulk": "all", "data-testid": "bulk-select-all" }, t.selectAll),
  el("button", { type: "button", class: "link-button", "data-bulk": "clear", "data-testid": "bulk-clear" }, t.clearSelection),
  el("span", { class: "bulk-actions" },
    can.reply ? el("button", { type: "button", "data-bulk": "assign-me", "data-testid": "bulk-assign-me" }, t.assignToMe) : null,
    can.assign ? choice("assign", t.assignTo, [
      ...Object.entries(state.teammates).map(([id, name]) => [`employee:${id}`, name]),
      ...state.teams.map((x) => [`team:${x.id}`, format(t.toTeam, { name: x.name })]),
    ]) : null,
    can.resolve ? el("button", { type: "button", "data-bulk": "resolve", "data-testid": "bulk-resolve" }, t.resolve) : null,
    can.snooze ? choice("snooze", t.snooze, state.snoozePresets.map((p) => [p.key, p.label])) : null,
    can.reply ? choice("priority", t.bulkPriority, state.priorities.map((p) => [String(p.value), p.label])) : null));
if (list) list.before(bar);

let drawQueued = false;
function drawBar() {
  drawQueued = false;
  const n = chosen().length;
  bar.hidden = n === 0;
  count.textContent = format(t.selected, { count: n });
}

function queueDraw() {
  if (drawQueued) return;
  drawQueued = true;
  queueMicrotask(drawBar); // once after the list is redrawn, not once per row
}

function labelOf(id) {
  const c = store.conversations.get(id);
  return c ? contactLabel(c.contact_name, c.contact_id) : `#${id}`;
}

async function apply(body) {
  const ids = chosen();
  if (!ids.length) return;
  bar.classList.add("busy");
  for (const control of bar.querySelectorAll("button, select")) control.disabled = true;
  try {
    const { results } = await api("/api/v1/conversations/bulk", { ids, ...body });
    const failed = [];
    for (const result of results) {
      if (result.ok) upsertConversation(result.conversation, store.conversations.get(result.id)?.visible);
      else failed.push(`${labelOf(result.id)} — ${result.error.message}`);
    }
    selected.clear();
    if (failed.length) toast(format(t.notChanged, { list: failed.join("; ") }), { kind: "error" });
  } catch (error) {
    toast(error.message, { kind: "error" }); // nothing was changed: the selection stays
  } finally {
    bar.classList.remove("busy");
    for (const control of bar.querySelectorAll("button, select")) { control.disabled = false; control.value = ""; }
    renderList();
    queueDraw();
  }
}

bar.addEventListener("click", (event) => {
  const verb = event.target.closest("[data-bulk]")?.dataset.bulk;
  if (verb === "all") { for (const id of shownIds()) selected.add(id); renderList(); }
  else if (verb === "clear") { selected.clear(); renderList(); }
  else if (verb === "assign-me") apply({ action: "assign", assignee_id: state.me });
  else if (verb === "resolve") apply({ action: "resolve" });
});

bar.addEventListener("change", (event) => {
  const select = event.target.closest("[data-bulk-select]");
  if (!select || !select.value) return;
  const value = select.value;
  if (select.dataset.bulkSelect === "assign") {
    const [kind, id] = value.split(":");
    apply(kind === "team" ? { action: "assign", team_id: Number(id) } : { action: "assign", assignee_id: Number(id) });
  } else if (select.dataset.bulkSelect === "snooze") apply({ action: "snooze", preset: value });
  else apply({ action: "priority", priority: Number(value) });
});

on("event", queueDraw); // rows may have left the list: the count follows

on("row", (c, row) => {
  const box = el("input", {
    type: "checkbox", class: "row-check", "aria-label": t.selectConversation, "data-testid": "row-check",
    checked: selected.has(c.id),
  });
  box.addEventListener("change", () => {
    if (box.checked) selected.add(c.id); else selected.delete(c.id);
    drawBar();
  });
  row.prepend(box);
  queueDraw();
});
