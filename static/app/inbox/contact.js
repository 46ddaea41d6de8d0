// The contact profile beside the conversation: who the customer is (name, e-mail, phone,
// channel identities, attributes), their ratings, their other conversations, editing (manage_contacts) and
// blocking (block_contacts). It follows "contact.updated" events, so an edit made elsewhere
// shows here at once.

import { $, api, contactLabel, el, format, on, state, store, t, when } from "./core.js";
import { conversationUrl } from "./list.js";

const panel = $("[data-contact-panel]");
let contact = null;
let editing = false;
let blocking = false;
let error = "";

const DAY = 24 * 60 * 60 * 1000;
const BLOCK_PRESETS = [["1", t.block1], ["7", t.block7], ["30", t.block30], ["", t.blockForever]];

function isBlocked(c) {
  // A block for a period ends by itself, also while this page is open.
  return c.blocked && (!c.blocked_until || new Date(c.blocked_until) > new Date());
}

function fact(label, value, testid) {
  return [el("dt", {}, label), el("dd", { "data-testid": testid }, value || "—")];
}

function section(title, ...children) {
  return el("section", { class: "contact-section" }, el("h3", {}, title), ...children);
}

function attributeText(value) {
  return value === null || value === undefined ? "" : String(value);
}

function blockBox() {
  if (isBlocked(contact)) {
    const until = contact.blocked_until ? format(t.blockedUntil, { time: when(contact.blocked_until) }) : t.blockedIndefinitely;
    return el("div", { class: "blocked-box", "data-testid": "contact-blocked" },
      el("strong", {}, until),
      contact.blocked_by_name ? el("span", { class: "muted small" }, ` ${format(t.blockedBy, { name: contact.blocked_by_name })}`) : null,
      contact.blocked_reason ? el("p", { class: "blocked-reason" }, contact.blocked_reason) : null,
      el("p", { class: "muted small" }, t.blockedNote),
      state.can.blockContacts ? el("button", { type: "button", "data-contact-action": "unblock", "data-testid": "contact-unblock" }, t.unblock) : null);
  }
  if (!state.can.blockContacts) return null;
  if (!blocking) {
    return el("button", { type: "button", class: "danger", "data-contact-action": "show-block", "data-testid": "contact-block" }, t.block);
  }
  return el("form", { class: "block-form", "data-contact-form": "block", "data-testid": "block-form" },
    el("label", {}, t.blockFor,
      el("select", { name: "days", "data-testid": "block-days" },
        ...BLOCK_PRESETS.map(([days, label]) => el("option", { value: days }, label)))),
    el("label", {}, t.blockReason,
      el("input", { type: "text", name: "reason", maxlength: "500", placeholder: t.blockReasonPlaceholder, "data-testid": "block-reason" })),
    el("div", { class: "form-buttons" },
      el("button", { type: "submit", class: "danger", "data-testid": "block-submit" }, t.block),
      el("button", { type: "button", "data-contact-action": "cancel" }, t.cancel)));
}

const CONSENT_WORDS = { accepted: "consentAccepted", declined: "consentDeclined", withdrawn: "consentWithdrawn" };

function consentSection() {
  const consents = contact.consents || [];
  if (!consents.length) return null;
  return section(t.consents, el("ul", { class: "plain-list small", "data-testid": "contact-consents" },
    ...consents.map((c) => el("li", { dataset: { decision: c.decision } },
      format(t[CONSENT_WORDS[c.decision]] || c.decision, { channel: c.channel_name, time: when(c.at), version: c.text_version })))));
}

function ratingsSection() {
  const ratings = contact.ratings || [];
  if (!ratings.length) return null;
  return section(t.ratings, el("ul", { class: "plain-list small", "data-testid": "contact-ratings" },
    ...ratings.map((r) => el("li", { dataset: { rating: r.rating } },
      el("strong", {}, `${"★".repeat(r.rating)}${"☆".repeat(5 - r.rating)} ${r.rating}/5`),
      el("span", { class: "muted" }, " · ", el("a", { href: conversationUrl(r.conversation_id) }, `#${r.conversation_id}`), ` · ${when(r.rated_at)}`),
      r.comment ? el("div", { class: "preview-line" }, r.comment) : null))));
}

function attributeRow(name = "", value = "") {
  return el("div", { class: "attribute-row", "data-attribute-row": true },
    el("input", { type: "text", name: "attr-name", value: name, placeholder: t.attributeName, "aria-label": t.attributeName }),
    el("input", { type: "text", name: "attr-value", value, placeholder: t.attributeValue, "aria-label": t.attributeValue }),
    el("button", { type: "button", class: "link-button", "data-contact-action": "remove-attribute", "aria-label": t.remove }, "×"));
}

function editForm() {
  const input = (name, value, label) => el("label", {}, label,
    el("input", { type: name === "email" ? "email" : "text", name, value: value || "", "data-testid": `contact-input-${name}` }));
  // novalidate: the server checks the e-mail and the phone, and says what is wrong in its own words.
  return el("form", { class: "contact-form", "data-contact-form": "edit", "data-testid": "contact-form", novalidate: true },
    input("name", contact.name, t.contactName),
    input("email", contact.email, t.contactEmail),
    input("phone", contact.phone, t.contactPhone),
    el("fieldset", { class: "attributes-edit" }, el("legend", {}, t.attributes),
      el("div", { "data-attribute-rows": true },
        ...Object.entries(contact.attributes || {}).map(([k, v]) => attributeRow(k, attributeText(v)))),
      el("button", { type: "button", class: "link-button", "data-contact-action": "add-attribute" }, `+ ${t.addAttribute}`)),
    el("div", { class: "form-buttons" },
      el("button", { type: "submit", class: "primary", "data-testid": "contact-save" }, t.save),
      el("button", { type: "button", "data-contact-action": "cancel" }, t.cancel)));
}

function render() {
  if (!panel || !contact) return;
  const name = contactLabel(contact.name || contact.email || contact.phone, contact.id);
  const attributes = Object.entries(contact.attributes || {});
  const others = contact.conversations || [];
  panel.replaceChildren(...[
    el("header", { class: "contact-head" },
      el("h2", { "data-testid": "contact-name" }, name),
      state.can.manageContacts && !editing
        ? el("button", { type: "button", class: "link-button", "data-contact-action": "edit", "data-testid": "contact-edit" }, t.edit) : null),
    error ? el("p", { class: "error", role: "alert", "data-testid": "contact-error" }, error) : null,
    editing ? editForm() : el("dl", { class: "contact-facts" },
      ...fact(t.contactName, contact.name, "contact-field-name"),
      ...fact(t.contactEmail, contact.email, "contact-field-email"),
      ...fact(t.contactPhone, contact.phone, "contact-field-phone")),
    editing ? null : section(t.attributes, attributes.length
      ? el("dl", { class: "contact-facts", "data-testid": "contact-attributes" },
        ...attributes.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, attributeText(v) || "—")]))
      : el("p", { class: "muted small" }, t.noAttributes)),
    consentSection(),
    ratingsSection(),
    section(t.identities, el("ul", { class: "plain-list small", "data-testid": "contact-identities" },
      ...(contact.identities || []).map((i) => el("li", {}, el("strong", {}, i.channel_name), " · ", el("code", {}, i.external_id))))),
    section(t.previousConversations, others.length
      ? el("ul", { class: "plain-list small", "data-testid": "contact-conversations" },
        ...others.map((c) => el("li", {},
          el("a", { href: conversationUrl(c.id) }, `#${c.id} · ${t[c.status] || c.status}`),
          el("span", { class: "muted" }, ` · ${c.channel_name} · ${when(c.last_activity_at)}`),
          c.preview ? el("div", { class: "muted preview-line" }, c.preview) : null)))
      : el("p", { class: "muted small" }, t.noPreviousConversations)),
    el("div", { class: "contact-block" }, blockBox()),
  ].filter(Boolean));
}

function typedValue(text, previous) {
  // An attribute left as it was keeps its type (number, true/false, null); new text is text.
  return previous !== undefined && attributeText(previous) === text ? previous : text;
}

async function save(form) {
  const attributes = {};
  for (const row of form.querySelectorAll("[data-attribute-row]")) {
    const key = row.querySelector("[name=attr-name]").value.trim();
    if (key) attributes[key] = typedValue(row.querySelector("[name=attr-value]").value, contact.attributes?.[key]);
  }
  const body = {
    name: form.elements.name.value, email: form.elements.email.value, phone: form.elements.phone.value, attributes,
  };
  return api(`/api/v1/contacts/${contact.id}/`, body, { method: "PATCH" });
}

async function block(form) {
  const days = form.elements.days.value;
  const until = days ? new Date(Date.now() + Number(days) * DAY).toISOString() : null;
  return api(`/api/v1/contacts/${contact.id}/block`, { until, reason: form.elements.reason.value });
}

function take(detail) {
  // The API answers the contact's detail; identities and other conversations stay as shown.
  const { identities, conversation_ids: _ids, created_at: _created, ...card } = detail;
  contact = { ...contact, ...card };
}

function showError(message) {
  // The open form keeps what was typed: only the message and the buttons change.
  error = message;
  panel.querySelector("[data-testid=contact-error]")?.remove();
  panel.querySelector(".contact-head").after(el("p", { class: "error", role: "alert", "data-testid": "contact-error" }, message));
  for (const button of panel.querySelectorAll("button")) button.disabled = false;
}

async function run(task) {
  for (const button of panel.querySelectorAll("button")) button.disabled = true;
  try {
    take(await task());
  } catch (failure) {
    showError(failure.message);
    return;
  }
  editing = blocking = false;
  error = "";
  render();
}

export function startContactPanel() {
  if (!panel || !state.contact) return;
  contact = { ...state.contact };
  render();
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("[data-contact-action]");
    if (!button) return;
    const verb = button.dataset.contactAction;
    if (verb === "edit") { editing = true; error = ""; render(); }
    else if (verb === "show-block") { blocking = true; error = ""; render(); panel.querySelector("[name=reason]").focus(); }
    else if (verb === "cancel") { editing = blocking = false; error = ""; render(); }
    else if (verb === "add-attribute") panel.querySelector("[data-attribute-rows]").append(attributeRow());
    else if (verb === "remove-attribute") button.closest("[data-attribute-row]").remove();
    else if (verb === "unblock" && confirm(t.confirmUnblock)) run(() => api(`/api/v1/contacts/${contact.id}/unblock`, {}));
  });
  panel.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    run(() => (form.dataset.contactForm === "edit" ? save(form) : block(form)));
  });
  on("event", (event) => {
    if (event.type === "conversation.rated" && event.payload.conversation.contact_id === contact.id) {
      const p = event.payload;
      const ratings = (contact.ratings || []).filter((r) => r.id !== p.rating_id);
      contact.ratings = [{
        id: p.rating_id, conversation_id: event.conversation_id, resolution: p.resolution, rating: p.rating,
        comment: p.comment || "", rated_at: event.created_at,
      }, ...ratings];
      if (!editing && !blocking) render();
      return;
    }
    const changed = event.type === "contact.updated" && event.payload.contact;
    if (!changed || changed.id !== contact.id) return;
    contact = { ...contact, ...changed };
    if (!editing && !blocking) render(); // an open form is not pulled from under the typist
    // The customer's messages in the thread carry their name too.
    const name = contactLabel(contact.name || contact.email || contact.phone, contact.id);
    for (const author of document.querySelectorAll("[data-thread] .message.inbound .author")) author.textContent = name;
  });
  // A block that runs out while the page is open: redraw when it ends.
  setInterval(() => { if (contact.blocked && !isBlocked(contact) && !editing && !blocking) { contact.blocked = false; render(); } }, 30_000);
}
