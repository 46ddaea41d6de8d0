// Priority: a select in the thread's header, a badge on list rows, and the list's order
// (newest activity, or priority first and then the customer waiting longest).

import { $, api, el, on, state, store, t } from "./core.js";
import { ordering, renderList } from "./list.js";
import { showSnapshot } from "./thread.js";

const labels = new Map(state.assignment.priorities);
const newest = ordering.compare;

function waitedLonger(a, b) {
  if (a.waiting_since && b.waiting_since) return Date.parse(a.waiting_since) - Date.parse(b.waiting_since);
  return a.waiting_since ? -1 : b.waiting_since ? 1 : 0; // nobody waiting for an answer: after those who are
}

const ORDERS = {
  newest,
  priority: (a, b) => (b.priority || 0) - (a.priority || 0) || waitedLonger(a, b) || newest(a, b),
};

function useOrder(key) {
  ordering.compare = ORDERS[key] || newest;
  // A cookie, not localStorage: the server reads it too, so the first 100 rows are the right ones.
  document.cookie = `inbox_ordering=${key}; path=/; max-age=31536000; samesite=lax`;
}

function orderPicker() {
  const select = el("select", { "data-testid": "ordering", "aria-label": t.order },
    el("option", { value: "newest" }, t.orderNewest),
    el("option", { value: "priority" }, t.orderPriority));
  select.value = state.ordering in ORDERS ? state.ordering : "newest";
  select.addEventListener("change", () => { useOrder(select.value); renderList(); });
  $("[data-list]").before(el("div", { class: "list-tools" }, el("label", {}, t.order, select)));
}

function badge(c, row) {
  if (!c.priority) return;
  const time = row.querySelector(".row-top time");
  time.before(el("span", { class: `priority-badge priority-${c.priority}`, "data-testid": "priority-badge" },
    labels.get(c.priority)));
}

function headerPicker() {
  const slot = $("[data-thread-controls]");
  if (!slot || !store.current || !state.can.reply) return;
  const select = el("select", { "data-testid": "priority-select", "aria-label": t.priority },
    [...labels].map(([value, label]) => el("option", { value }, label)));
  select.value = String(store.current.priority || 0);
  select.addEventListener("change", async () => {
    select.disabled = true;
    try {
      showSnapshot(await api(`/api/v1/conversations/${store.current.id}/priority`, { priority: Number(select.value) }));
    } catch (error) {
      alert(error.message);
    } finally {
      select.disabled = false;
      select.value = String(store.current.priority || 0);
    }
  });
  slot.append(el("label", { class: "control" }, t.priority, select));
  on("header", (current) => { if (!select.disabled) select.value = String(current.priority || 0); });
}

export function startPriority() {
  useOrder(state.ordering);
  orderPicker();
  on("row", badge);
  headerPicker();
}
