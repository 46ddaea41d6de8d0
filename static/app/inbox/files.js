// Files in the inbox: the reply box's picker, drag-and-drop and paste, with a chip per upload
// (progress, error, remove), and each message's files in the thread — images as thumbnails
// that open full size, anything else as a download with its name and size. A customer's file
// still being fetched shows as such until its `attachment.updated` event redraws the message.

import { $, el, followEnd, format, on, state, store, t } from "./core.js";
import { composerHooks, payloadExtensions, textarea } from "./composer.js";

const composer = $("[data-composer]");
const chips = $("[data-attachments]");
const picker = $("[data-file-input]");
const uploads = []; // { file, id, error, progress, node, xhr }

function humanSize(size) {
  if (size === null || size === undefined) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${Math.round(size / 1024)} KB`;
  return `${(size / (1024 * 1024)).toFixed(1)} MB`;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function drawChip(upload) {
  const status = upload.error
    ? el("span", { class: "chip-error", "data-testid": "upload-error" }, upload.error)
    : upload.id ? el("span", { class: "chip-size" }, humanSize(upload.file.size))
    : el("progress", { max: 100, value: upload.progress, "data-testid": "upload-progress" });
  const node = el("li", { class: `chip${upload.error ? " failed" : ""}${upload.id ? " ready" : ""}`, "data-testid": "upload-chip" },
    el("span", { class: "chip-name" }, upload.file.name || t.pastedFile),
    status,
    el("button", { type: "button", class: "chip-remove", "aria-label": t.removeFile, title: t.removeFile, "data-testid": "upload-remove" }, "×"));
  node.querySelector(".chip-remove").addEventListener("click", () => remove(upload));
  if (upload.node) upload.node.replaceWith(node);
  else chips.append(node);
  upload.node = node;
}

function remove(upload) {
  if (upload.xhr && !upload.id && !upload.error) upload.xhr.abort();
  uploads.splice(uploads.indexOf(upload), 1);
  upload.node.remove();
}

function send(file) {
  const upload = { file, id: null, error: null, progress: 0, node: null, xhr: new XMLHttpRequest() };
  uploads.push(upload);
  drawChip(upload);
  const form = new FormData();
  form.append("file", file, file.name || "pasted");
  const xhr = upload.xhr;
  xhr.open("POST", `/api/v1/conversations/${store.current.id}/attachments`);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable) return;
    upload.progress = Math.round((100 * event.loaded) / event.total);
    const bar = upload.node.querySelector("progress");
    if (bar) bar.value = upload.progress;
  });
  xhr.addEventListener("load", () => {
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: a proxy's page */ }
    if (xhr.status === 201 && data) upload.id = data.id;
    else upload.error = data?.error?.message || format(t.uploadFailed, { status: xhr.status });
    drawChip(upload);
  });
  xhr.addEventListener("error", () => { upload.error = t.uploadNetwork; drawChip(upload); });
  xhr.send(form);
}

function addFiles(files) {
  if (!composer || !store.current) return;
  for (const file of files) send(file);
}

function startPicker() {
  if (!composer || !chips) return;
  $("[data-attach]").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => { addFiles([...picker.files]); picker.value = ""; });
  textarea.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) { event.preventDefault(); addFiles(files); }
  });
  for (const zone of [composer, $("[data-thread]")]) {
    if (!zone) continue;
    zone.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      composer.classList.add("dropping");
    });
    zone.addEventListener("dragleave", () => composer.classList.remove("dropping"));
    zone.addEventListener("drop", (event) => {
      const files = [...(event.dataTransfer?.files || [])];
      composer.classList.remove("dropping");
      if (!files.length) return;
      event.preventDefault();
      addFiles(files);
    });
  }
  payloadExtensions.push((payload) => {
    payload.attachments = uploads.filter((u) => u.id).map((u) => u.id);
  });
  // Files alone are a message; while one is still uploading, nothing is sent yet.
  composerHooks.hasContent.push(() => uploads.some((u) => u.id));
  composerHooks.blocker.push(() => (uploads.some((u) => !u.id && !u.error) ? t.uploadsPending : null));
  composerHooks.sent.push(() => { for (const u of [...uploads]) if (u.id) remove(u); });
}

// --- Files in the thread ------------------------------------------------------------------------

function fileNode(a) {
  if (a.status === "ready" && a.url && a.image) {
    const img = el("img", { src: a.url, alt: a.name, loading: "lazy" });
    // Loaded, it is taller than its placeholder: a thread that showed its end still does.
    img.addEventListener("load", () => followEnd(img.closest("[data-thread]")));
    return el("a", { class: "file image", href: a.url, target: "_blank", rel: "noopener", title: a.name, "data-testid": "file-image" }, img);
  }
  if (a.status === "ready" && a.url) {
    return el("a", { class: "file download", href: a.url, download: a.name, "data-testid": "file-download" },
      el("span", { class: "file-name" }, a.name), el("span", { class: "file-size" }, humanSize(a.size)));
  }
  const words = a.status === "pending" ? t.filePending : format(t.fileNotAvailable, { error: a.error || t[`file_${a.status}`] || a.status });
  return el("span", { class: `file ${a.status}`, "data-testid": `file-${a.status}` },
    el("span", { class: "file-name" }, a.name), el("span", { class: "file-state" }, words));
}

on("messageNode", (m, node) => {
  if (!m.attachments || !m.attachments.length) return;
  const body = node.querySelector(".body");
  const list = el("div", { class: "files", "data-testid": "files" }, m.attachments.map(fileNode));
  if (body) body.after(list);
  else node.querySelector(".bubble").append(list);
});

startPicker();
