// Reassigning by hand: pick an agent (their presence shown) or a team in the thread's header.
// The conversation's history (assignments, priority, snoozing and waking, resolving and
// reopening, the customer's rating) shows as lines in the thread.

import { $, api, el, format, keepAtEnd, on, state, store, t, when } from "./core.js";
import { onPresence, presenceLabel, presenceOf } from "./presence.js";
import { showSnapshot } from "./thread.js";

const { agents, teams, priorities } = state.assignment;
const teamNames = new Map(teams.map((team) => [team.id, team.name]));
const priorityNames = new Map(priorities);
const HISTORY = [
  "conversation.assigned", "conversation.priority_changed", "conversation.snoozed", "conversation.woken",
  "conversation.resolved", "conversation.reopened", "conversation.rated",
];

// --- The pickers ----------------------------------------------------------------------------------

function agentOption(agent) {
  return el("option", { value: agent.id },
    format(t.agentPresence, { name: agent.name, presence: presenceLabel(presenceOf(agent.id)) }));
}

function fillAgents(select) {
  const current = store.current;
  const teamId = current.team_id;
  const inTeam = agents.filter((a) => teamId && a.team_ids.includes(teamId));
  const others = agents.filter((a) => !inTeam.includes(a));
  const options = [el("option", { value: "" }, t.unassigned)];
  if (current.assignee_id && !agents.some((a) => a.id === current.assignee_id)) {
    options.push(el("option", { value: current.assignee_id }, current.assignee_name || "")); // shown, not offered
  }
  if (inTeam.length) {
    options.push(el("optgroup", { label: format(t.inTeam, { team: teamNames.get(teamId) }) }, inTeam.map(agentOption)));
    options.push(el("optgroup", { label: t.otherAgents }, others.map(agentOption)));
  } else {
    options.push(...others.map(agentOption));
  }
  select.replaceChildren(...options);
  select.value = current.assignee_id ? String(current.assignee_id) : "";
}

function picker(testid, label, onChange) {
  const select = el("select", { "data-testid": testid, "aria-label": label });
  select.addEventListener("change", async () => {
    select.disabled = true;
    try {
      showSnapshot(await api(`/api/v1/conversations/${store.current.id}/assign`, onChange(select.value)));
    } catch (error) {
      alert(error.message);
    } finally {
      select.disabled = false;
      sync(); // what the server says now, whether it took the change or not
    }
  });
  return select;
}

const agentSelect = picker("assignee-select", t.assignee, (value) => ({ assignee_id: value ? Number(value) : null }));
// Another team: whoever it was is no longer chosen; the team's own assignment method decides.
const teamSelect = picker("team-select", t.team, (value) => ({ team_id: value ? Number(value) : null, assignee_id: null }));

function sync() {
  if (!store.current) return;
  fillAgents(agentSelect);
  teamSelect.value = store.current.team_id ? String(store.current.team_id) : "";
}

function pickers() {
  const slot = $("[data-thread-controls]");
  if (!slot || !store.current || !state.can.assign) return;
  teamSelect.replaceChildren(el("option", { value: "" }, t.noTeam),
    ...teams.map((team) => el("option", { value: team.id }, team.name)));
  slot.append(el("label", { class: "control" }, t.assignee, agentSelect),
    el("label", { class: "control" }, t.team, teamSelect));
  sync();
  on("header", () => { if (!agentSelect.disabled && !teamSelect.disabled) sync(); });
  onPresence(() => { if (!agentSelect.disabled) fillAgents(agentSelect); });
}

// --- History lines ----------------------------------------------------------------------------------

const shown = new Set();

function historyText(h) {
  const actor = h.actor_name || state.teammates[h.actor_id] || t.someone;
  if (h.type === "conversation.priority_changed") {
    return format(t.priorityBy, { actor, priority: priorityNames.get(h.priority) });
  }
  if (h.type === "conversation.snoozed") return format(t.snoozedBy, { actor, time: when(h.until) });
  if (h.type === "conversation.woken") {
    if (h.reason === "time") return t.wokeTimeLine;
    if (h.reason === "customer") return t.wokeCustomerLine;
    if (h.reason === "teammate") return format(t.wokeTeammateLine, { actor });
    return format(t.unsnoozedBy, { actor });
  }
  if (h.type === "conversation.resolved") return h.actor_id ? format(t.resolvedBy, { actor }) : t.resolvedAuto;
  if (h.type === "conversation.rated") {
    return h.comment ? format(t.ratedCommentLine, { rating: h.rating, comment: h.comment }) : format(t.ratedLine, { rating: h.rating });
  }
  if (h.type === "conversation.reopened") return h.actor_id ? format(t.reopenedBy, { actor }) : t.reopenedCustomer;
  const previous = h.previous || {};
  const team = teamNames.get(h.team_id) || "";
  const name = h.assignee_name || "";
  const teamChanged = previous.team_id !== undefined && previous.team_id !== h.team_id;
  const assigneeChanged = previous.assignee_id !== h.assignee_id;
  if (!h.actor_id) return format(t.assignedAuto, { name });
  if (h.released) return format(t.releasedBy, { actor });
  if (teamChanged && !h.team_id) return format(t.noTeamBy, { actor });
  if (teamChanged && assigneeChanged && h.assignee_id) return format(t.movedAssignedBy, { actor, team, name });
  if (teamChanged) return format(t.movedBy, { actor, team });
  return h.assignee_id ? format(t.assignedBy, { actor, name }) : format(t.unassignedBy, { actor });
}

function historyNode(h) {
  return el("li", { class: `history-line${h.type === "conversation.rated" ? " rating-line" : ""}`, dataset: { event: h.id, type: h.type }, "data-testid": "history-line" },
    el("span", {}, historyText(h)), " ", el("time", { datetime: h.created_at }, when(h.created_at)));
}

function placeHistory(h, { live = false } = {}) {
  const thread = $("[data-thread]");
  if (!thread || shown.has(h.id)) return;
  shown.add(h.id);
  const node = historyNode(h);
  // On load, between the messages by time; live ones are the newest thing there is.
  const at = Date.parse(h.created_at);
  const later = live ? null : [...thread.children].find((li) => {
    const time = li.querySelector("time");
    return time && Date.parse(time.getAttribute("datetime")) > at;
  });
  if (later) later.before(node);
  else keepAtEnd(thread, () => thread.append(node));
}

function fromEvent(event) {
  const snapshot = event.payload.conversation;
  return {
    id: event.id, type: event.type, created_at: event.created_at, actor_id: event.actor_id,
    automatic: !!event.payload.automatic, released: event.payload.reason === "released", assignee_id: snapshot.assignee_id, assignee_name: snapshot.assignee_name,
    team_id: snapshot.team_id, priority: snapshot.priority, previous: event.payload.previous || {},
    reason: event.payload.reason, until: event.payload.until,
    rating: event.payload.rating, comment: event.payload.comment || "",
  };
}

export function startAssignment() {
  pickers();
  if (!store.current) return;
  for (const h of state.assignment.history) placeHistory(h);
  on("event", (event) => {
    if (event.conversation_id === store.current.id && HISTORY.includes(event.type)) {
      placeHistory(fromEvent(event), { live: true });
    }
  });
}
