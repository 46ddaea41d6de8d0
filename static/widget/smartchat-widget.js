/*
 * Smartchat website widget.
 *
 * Embed with one tag on any site whose origin the channel allows:
 *   <script src="https://support.example.com/static/widget/smartchat-widget.js"
 *           data-channel="PUBLIC_KEY" async></script>
 *
 * It draws a chat bubble inside a Shadow DOM (so the host page's CSS can't break it and
 * it can't break the host page), keeps the visitor's conversation across reloads with a
 * signed token in localStorage, and talks to Smartchat over one websocket that
 * reconnects with backoff and asks for what it missed. Text is always set with
 * textContent: nothing a visitor or agent writes is ever parsed as HTML.
 *
 * Files: picked with the paperclip, dropped on the panel or pasted into the input, each is
 * uploaded at once (POST /widget/v1/<key>/attachments, the token as a Bearer header) and shown
 * as a chip with its progress; the message frame then names the uploads' ids. Images in the
 * thread are previews that open full size; other files are download links.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.channel) {
    if (window.console) console.error("Smartchat: the widget script needs a data-channel attribute.");
    return;
  }
  if (window.Smartchat && window.Smartchat.loaded) return; // embedded twice: keep the first

  var KEY = script.dataset.channel;
  var BASE = new URL(script.src, document.baseURI);
  var HTTP = BASE.origin;
  var WS = (BASE.protocol === "https:" ? "wss://" : "ws://") + BASE.host;
  var TOKEN_KEY = "smartchat:" + KEY + ":token";
  var PING_MS = 25000;
  var TYPING_EVERY_MS = 2000; // a "typing" notice at most this often while the visitor types
  var TYPING_IDLE_MS = 3000; // no key for this long: "stopped"
  var TYPING_SHOWN_MS = 6000; // an agent's indicator that isn't renewed goes away
  var maxChars = 5000; // replaced by the server's limit when the session starts
  // The server's file limits, from the session (it checks them again, by content).
  var fileLimits = { maxBytes: 20 * 1024 * 1024, maxCount: 10, types: [] };

  var STRINGS = {
    en: {
      open: "Chat with us",
      close: "Close chat",
      placeholder: "Write a message…",
      send: "Send",
      online: "We're online",
      away: "We'll reply as soon as we can",
      connecting: "Connecting…",
      offline: "Connection lost — reconnecting…",
      failed: "Not sent — tap to retry",
      sending: "Sending…",
      tooLong: "Your message is too long.",
      unavailable: "The chat is not available right now.",
      slowDown: "Not so fast, please: wait a moment and try again.",
      you: "You",
      typing: "%(name)s is typing…",
      attach: "Attach a file",
      remove: "Remove",
      dropHere: "Drop files here to attach them",
      waitUploads: "Wait for the files to finish uploading.",
      tooLarge: "“%(name)s” is too large: files can be at most %(limit)s.",
      tooMany: "A message can carry at most %(limit)s files.",
      uploadFailed: "“%(name)s” could not be uploaded. Remove it and try again.",
      badAttachment: "One of the files can't be sent any more. Attach it again.",
      units: ["B", "KB", "MB"],
      rateQuestion: "How would you rate our help with this conversation?",
      rateStar: "%(n)s of 5",
      rateComment: "Add a comment (optional)",
      rateSend: "Send rating",
      rateThanks: "Thank you for your rating!",
      ratePick: "Choose a rating from 1 to 5.",
      alreadyRated: "You have already rated this conversation. Thank you!",
      ratingClosed: "This conversation can no longer be rated.",
      notResolved: "This conversation is open again, so it can't be rated now.",
      commentTooLong: "The comment is too long.",
    },
    ru: {
      open: "Напишите нам",
      close: "Закрыть чат",
      placeholder: "Напишите сообщение…",
      send: "Отправить",
      online: "Мы на связи",
      away: "Ответим, как только сможем",
      connecting: "Подключаемся…",
      offline: "Связь потеряна — переподключаемся…",
      failed: "Не отправлено — нажмите, чтобы повторить",
      sending: "Отправляется…",
      tooLong: "Сообщение слишком длинное.",
      unavailable: "Чат сейчас недоступен.",
      slowDown: "Не так быстро, пожалуйста: подождите немного и попробуйте снова.",
      you: "Вы",
      typing: "%(name)s печатает…",
      attach: "Прикрепить файл",
      remove: "Убрать",
      dropHere: "Отпустите файлы, чтобы прикрепить их",
      waitUploads: "Дождитесь, пока файлы загрузятся.",
      tooLarge: "«%(name)s» слишком большой: файл может быть не больше %(limit)s.",
      tooMany: "В сообщении может быть не больше %(limit)s файлов.",
      uploadFailed: "Не удалось загрузить «%(name)s». Уберите его и попробуйте снова.",
      badAttachment: "Один из файлов больше нельзя отправить. Прикрепите его снова.",
      units: ["Б", "КБ", "МБ"],
      rateQuestion: "Как вы оцените нашу помощь в этом разговоре?",
      rateStar: "%(n)s из 5",
      rateComment: "Добавьте комментарий (необязательно)",
      rateSend: "Отправить оценку",
      rateThanks: "Спасибо за оценку!",
      ratePick: "Выберите оценку от 1 до 5.",
      alreadyRated: "Вы уже оценили этот разговор. Спасибо!",
      ratingClosed: "Этот разговор больше нельзя оценить.",
      notResolved: "Разговор снова открыт, поэтому сейчас его нельзя оценить.",
      commentTooLong: "Комментарий слишком длинный.",
    },
  };
  var lang = (script.dataset.lang || document.documentElement.lang || navigator.language || "en")
    .slice(0, 2)
    .toLowerCase();
  var t = STRINGS[lang] || STRINGS.en;

  var state = {
    token: null,
    socket: null,
    authed: false, // the socket said hello to our auth frame: it may carry messages now
    lastId: 0,
    seen: {}, // message ids already drawn: history and live pushes may overlap
    // While a resume is paging: the last id of the page we got. Live pushes raise lastId past
    // the gap, so the next page (and a resume after a reconnect) starts here instead.
    resumeFrom: null,
    pending: {}, // client_id -> {body, node}
    attempts: 0,
    pingTimer: null,
    open: false,
    fatal: false,
    readyResolve: null,
    typingSentAt: 0, // when the last "typing" notice left; 0 while not typing
    typingIdle: null,
    agentTypingTimer: null,
    uploads: [], // files attached to the message being written: {file, status, id, xhr, chip}
    survey: null, // the open satisfaction survey: {resolution, question, node, score}
  };
  var ready = new Promise(function (resolve) {
    state.readyResolve = resolve;
  });

  function storage(action, value) {
    try {
      if (action === "get") return window.localStorage.getItem(TOKEN_KEY);
      if (action === "set") window.localStorage.setItem(TOKEN_KEY, value);
      if (action === "drop") window.localStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage can be blocked (private mode, sandboxed iframes): the chat still works
      // for this page view, it just won't survive a reload.
    }
    return null;
  }

  function clientId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  // --- DOM ------------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "smartchat-widget-host";
  var root = host.attachShadow({ mode: "open" });
  var CSS =
    ":host{all:initial}" +
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:var(--sc-color);color:#fff;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.2);z-index:2147483000;" +
    "display:flex;align-items:center;justify-content:center}" +
    ".launcher svg{width:26px;height:26px;fill:currentColor}" +
    ".dot{position:absolute;top:4px;right:4px;width:12px;height:12px;border-radius:50%;border:2px solid #fff;background:#9ca3af}" +
    ".dot.on{background:#22c55e}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 24px);height:520px;" +
    "max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.22);" +
    "display:none;flex-direction:column;overflow:hidden;z-index:2147483000;color:#1f2430;font-size:14px}" +
    ".panel.open{display:flex}" +
    ".head{background:var(--sc-color);color:#fff;padding:14px 16px}" +
    ".head .title{font-weight:600;font-size:16px}" +
    ".head .status{font-size:12px;opacity:.9;margin-top:2px}" +
    ".messages{flex:1;overflow-y:auto;padding:14px;background:#f6f7f9;display:flex;flex-direction:column;gap:8px}" +
    ".msg{max-width:80%;padding:8px 11px;border-radius:12px;line-height:1.4;white-space:pre-wrap;word-wrap:break-word}" +
    ".msg[data-from=visitor]{align-self:flex-end;background:var(--sc-color);color:#fff;border-bottom-right-radius:4px}" +
    ".msg[data-from=agent]{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}" +
    ".msg[data-from=greeting]{align-self:flex-start;background:#fff;border:1px dashed #d1d5db;color:#4b5563}" +
    ".msg .who{display:block;font-size:11px;color:#6b7280;margin-bottom:2px}" +
    ".msg.pending{opacity:.6}" +
    ".msg.failed{background:#fee2e2;color:#991b1b;cursor:pointer}" +
    ".msg .meta{display:block;font-size:11px;margin-top:3px;opacity:.8}" +
    ".typing{min-height:18px;padding:0 14px 4px;background:#f6f7f9;font-size:12px;font-style:italic;color:#6b7280}" +
    ".error{display:none;background:#fef3c7;color:#92400e;padding:8px 14px;font-size:12px}" +
    ".error.shown{display:block}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:8px 10px;font-size:14px;height:40px;max-height:120px}" +
    "textarea:focus{outline:2px solid var(--sc-color);outline-offset:-1px}" +
    "button.send{border:0;border-radius:10px;padding:0 14px;background:var(--sc-color);color:#fff;font-weight:600;cursor:pointer}" +
    "button.send:disabled{opacity:.5;cursor:default}" +
    "button.attach{border:0;background:none;color:#6b7280;cursor:pointer;padding:0 2px;display:flex;align-items:center}" +
    "button.attach:hover{color:var(--sc-color)}" +
    "button.attach svg{width:22px;height:22px;fill:currentColor}" +
    "input.picker{display:none}" +
    ".tray{display:none;flex-wrap:wrap;gap:6px;padding:8px 10px 0;background:#fff;border-top:1px solid #e5e7eb}" +
    ".tray.shown{display:flex}" +
    ".chip{display:flex;align-items:center;gap:6px;max-width:100%;border:1px solid #d1d5db;border-radius:8px;" +
    "padding:4px 6px;font-size:12px;background:#f9fafb}" +
    ".chip .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:150px}" +
    ".chip .size{color:#6b7280}" +
    ".chip progress{width:56px;height:6px}" +
    ".chip.failed{border-color:#fca5a5;background:#fee2e2;color:#991b1b}" +
    ".chip .why{white-space:normal}" +
    ".chip button{border:0;background:none;cursor:pointer;font-size:15px;line-height:1;color:inherit;padding:0 2px}" +
    ".files{display:flex;flex-direction:column;gap:4px;margin-top:4px;white-space:normal}" +
    ".files img{display:block;max-width:100%;max-height:200px;border-radius:8px;background:#e5e7eb}" +
    ".files a{color:inherit}" +
    ".panel.dragging{outline:3px dashed var(--sc-color);outline-offset:-6px}" +
    ".survey{align-self:stretch;background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:10px 12px;display:flex;flex-direction:column;gap:8px}" +
    ".survey .q{font-weight:600}" +
    ".survey .stars{display:flex;gap:4px}" +
    ".survey .stars button{border:1px solid #d1d5db;background:#fff;border-radius:8px;width:40px;height:36px;font-size:18px;cursor:pointer;color:#9ca3af}" +
    ".survey .stars button.on{color:#f59e0b;border-color:#f59e0b}" +
    ".survey textarea{flex:none;height:56px}" +
    ".survey .rate-send{align-self:flex-end;height:34px}" +
    ".survey .why{font-size:12px;color:#92400e}" +
    ".survey.done{color:#065f46;background:#ecfdf5;border-color:#a7f3d0}";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text != null) node.textContent = text;
    return node;
  }

  // A constructed stylesheet is not an inline <style>: a host page whose Content-Security-Policy
  // forbids inline styles still styles the widget. Older browsers get a <style> element with the
  // nonce of this script's own tag, if the page gave it one.
  var style = null;
  if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    style = el("style", {}, CSS);
    if (script.nonce) style.nonce = script.nonce;
  }
  var launcher = el("button", {
    class: "launcher",
    type: "button",
    "data-testid": "sc-launcher",
    "aria-label": t.open,
    title: t.open,
  });
  var svgNS = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  var dot = el("span", { class: "dot" });
  launcher.appendChild(icon);
  launcher.appendChild(dot);

  var panel = el("div", { class: "panel", role: "dialog", "data-testid": "sc-panel", "aria-label": t.open });
  var head = el("div", { class: "head" });
  var title = el("div", { class: "title" }, "");
  var status = el("div", { class: "status", "data-testid": "sc-status", "aria-live": "polite" }, t.connecting);
  head.appendChild(title);
  head.appendChild(status);
  var list = el("div", { class: "messages", "data-testid": "sc-messages", "aria-live": "polite" });
  var typingLine = el("div", { class: "typing", "data-testid": "sc-typing", "aria-live": "polite" });
  var error = el("div", { class: "error", "data-testid": "sc-error", role: "alert" });
  var form = el("form", {});
  var input = el("textarea", { "data-testid": "sc-input", placeholder: t.placeholder, maxlength: String(maxChars), rows: "1" });
  input.setAttribute("aria-label", t.placeholder);
  var send = el("button", { class: "send", type: "submit", "data-testid": "sc-send" }, t.send);
  var attach = el("button", { class: "attach", type: "button", "data-testid": "sc-attach", "aria-label": t.attach, title: t.attach });
  var clip = document.createElementNS(svgNS, "svg");
  clip.setAttribute("viewBox", "0 0 24 24");
  var clipPath = document.createElementNS(svgNS, "path");
  clipPath.setAttribute(
    "d",
    "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9V15.5a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"
  );
  clip.appendChild(clipPath);
  attach.appendChild(clip);
  var picker = el("input", { class: "picker", type: "file", multiple: "", tabindex: "-1", "data-testid": "sc-file-input" });
  var tray = el("div", { class: "tray", "data-testid": "sc-uploads", "aria-live": "polite" });
  form.appendChild(attach);
  form.appendChild(picker);
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(list);
  panel.appendChild(typingLine);
  panel.appendChild(error);
  panel.appendChild(tray);
  panel.appendChild(form);
  if (style) root.appendChild(style);
  root.appendChild(launcher);
  root.appendChild(panel);

  function showError(text) {
    error.textContent = text || "";
    error.classList.toggle("shown", !!text);
  }

  function setOnline(online) {
    dot.classList.toggle("on", !!online);
    status.textContent = online ? t.online : t.away;
    status.dataset.online = online ? "true" : "false";
  }

  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  function timeOf(iso) {
    var date = new Date(iso);
    if (isNaN(date)) return "";
    return date.toLocaleTimeString(lang === "ru" ? "ru-RU" : undefined, { hour: "2-digit", minute: "2-digit" });
  }

  function humanSize(size) {
    if (size == null) return "";
    if (size < 1024) return size + " " + t.units[0];
    if (size < 1024 * 1024) return Math.round(size / 1024) + " " + t.units[1];
    return (size / (1024 * 1024)).toFixed(1) + " " + t.units[2];
  }

  // A message's files: images as previews that open full size, anything else as a link
  // with its name and size (the server sends those as downloads). Links are the visitor's own.
  function drawFiles(files) {
    var box = el("div", { class: "files" });
    files.forEach(function (file) {
      if (!/^https?:|^\//.test(file.url || "")) return;
      var href = new URL(file.url, HTTP).href;
      var link = el("a", { href: href, target: "_blank", rel: "noopener noreferrer", "data-testid": "sc-file" });
      if (file.image) {
        link.appendChild(el("img", { src: href, alt: file.name, loading: "lazy", "data-testid": "sc-image" }));
      } else {
        link.textContent = "📄 " + file.name + (file.size != null ? " (" + humanSize(file.size) + ")" : "");
        link.setAttribute("download", file.name);
      }
      box.appendChild(link);
    });
    return box;
  }

  // Files sent before the server's copy of the message arrives: names only (no preview of
  // a local file: a host page's policy need not allow blob: images).
  function drawLocalFiles(uploads) {
    var box = el("div", { class: "files" });
    uploads.forEach(function (upload) {
      box.appendChild(el("span", {}, "📎 " + upload.name + " (" + humanSize(upload.size) + ")"));
    });
    return box;
  }

  function messageNode(message) {
    var node = el("div", { class: "msg", "data-testid": "sc-message", "data-from": message.from, "data-id": String(message.id) });
    if (message.from === "agent" && message.author_name) node.appendChild(el("span", { class: "who" }, message.author_name));
    node.appendChild(document.createTextNode(message.body));
    if (message.attachments && message.attachments.length) node.appendChild(drawFiles(message.attachments));
    node.appendChild(el("span", { class: "meta" }, timeOf(message.created_at)));
    return node;
  }

  function drawMessage(message) {
    if (state.seen[message.id]) {
      // Our own message with files, drawn from what we sent: show the server's copy (its links).
      var local = list.querySelector('[data-id="' + Number(message.id) + '"][data-local-files]');
      if (local) local.replaceWith(messageNode(message));
      return;
    }
    if (message.from === "visitor" && adoptPending(message)) {
      drawMessage(message);
      return;
    }
    state.seen[message.id] = true;
    if (message.id > state.lastId) state.lastId = message.id;
    var node = messageNode(message);
    // In id order: a message restored by the team goes back where it was.
    var later = null;
    list.querySelectorAll("[data-id]").forEach(function (other) {
      if (!later && Number(other.dataset.id) > message.id) later = other;
    });
    // The survey stays the last thing in the chat.
    var survey = state.survey && state.survey.node && state.survey.node.parentNode === list ? state.survey.node : null;
    list.insertBefore(node, later || survey);
    if (!later) scrollDown();
  }

  function removeMessage(id) {
    var node = list.querySelector('[data-id="' + Number(id) + '"]');
    if (node) node.remove();
    delete state.seen[id];
  }

  // Our own message can come back (live push or history) before its ack: it is already
  // on screen as pending, so confirm that bubble instead of drawing a second one.
  function adoptPending(message) {
    var ids = (message.attachments || [])
      .map(function (file) {
        return file.id;
      })
      .sort()
      .join(",");
    var match = Object.keys(state.pending).filter(function (id) {
      var entry = state.pending[id];
      return entry.body === message.body.trim() && entry.attachments.slice().sort().join(",") === ids;
    })[0];
    if (!match) return false;
    acknowledge(match, message.id);
    return true;
  }

  function drawHistory(messages) {
    (messages || []).forEach(drawMessage);
  }

  // --- The satisfaction survey, inline after a resolved conversation ----------------------
  var RATE_ERRORS = {
    already_rated: "alreadyRated",
    rating_closed: "ratingClosed",
    not_resolved: "notResolved",
    not_rateable: "ratingClosed",
    bad_rating: "ratePick",
    comment_too_long: "commentTooLong",
  };

  function dropSurvey() {
    if (state.survey && state.survey.node) state.survey.node.remove();
    state.survey = null;
  }

  function drawSurvey(survey) {
    if (state.survey && state.survey.resolution === survey.resolution) return;
    dropSurvey();
    var box = el("div", { class: "survey", "data-testid": "sc-survey", "data-resolution": String(survey.resolution) });
    box.appendChild(el("div", { class: "q", "data-testid": "sc-survey-question" }, survey.question || t.rateQuestion));
    var stars = el("div", { class: "stars", role: "radiogroup", "aria-label": survey.question || t.rateQuestion });
    var comment = el("textarea", { "data-testid": "sc-survey-comment", placeholder: t.rateComment, maxlength: "1000", rows: "2" });
    comment.setAttribute("aria-label", t.rateComment);
    var why = el("div", { class: "why", "data-testid": "sc-survey-error", role: "alert" });
    var sendRating = el("button", { class: "send rate-send", type: "button", "data-testid": "sc-survey-send" }, t.rateSend);
    var entry = { resolution: survey.resolution, question: survey.question, node: box, score: 0, why: why };
    [1, 2, 3, 4, 5].forEach(function (n) {
      var label = t.rateStar.replace("%(n)s", n);
      var star = el("button", { type: "button", role: "radio", "aria-checked": "false", "aria-label": label, title: label, "data-testid": "sc-star-" + n, "data-score": String(n) }, "★");
      star.addEventListener("click", function () {
        entry.score = n;
        stars.querySelectorAll("button").forEach(function (other) {
          var on = Number(other.dataset.score) <= n;
          other.classList.toggle("on", on);
          other.setAttribute("aria-checked", Number(other.dataset.score) === n ? "true" : "false");
        });
        why.textContent = "";
      });
      stars.appendChild(star);
    });
    sendRating.addEventListener("click", function () {
      if (!entry.score) {
        why.textContent = t.ratePick;
        return;
      }
      if (!live()) {
        why.textContent = t.offline;
        return;
      }
      why.textContent = "";
      state.socket.send(
        JSON.stringify({ type: "rate", rating: entry.score, comment: comment.value.trim(), resolution: entry.resolution })
      );
    });
    box.appendChild(stars);
    box.appendChild(comment);
    box.appendChild(why);
    box.appendChild(sendRating);
    state.survey = entry;
    list.appendChild(box);
    scrollDown();
  }

  function thankForRating(data) {
    if (!state.survey || state.survey.resolution !== data.resolution) return;
    var box = state.survey.node;
    box.replaceChildren(el("div", { "data-testid": "sc-survey-thanks" }, t.rateThanks));
    box.classList.add("done");
    state.survey = { resolution: data.resolution, node: box, done: true };
  }

  function ratingRefused(data) {
    if (!state.survey || state.survey.done) return false;
    var text = t[RATE_ERRORS[data.code]] || data.message;
    state.survey.why.textContent = text;
    if (data.code === "already_rated" || data.code === "rating_closed" || data.code === "not_resolved") {
      var box = state.survey.node;
      box.replaceChildren(el("div", { "data-testid": "sc-survey-thanks" }, text));
      state.survey = { resolution: state.survey.resolution, node: box, done: true };
    }
    return true;
  }

  // --- Session over HTTP ------------------------------------------------------------
  function startSession(retried) {
    var token = state.token || storage("get");
    return fetch(HTTP + "/widget/v1/" + encodeURIComponent(KEY) + "/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(token ? { token: token } : {}),
      credentials: "omit",
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            return { status: response.status, body: body, retryAfter: Number(response.headers.get("Retry-After")) };
          });
      })
      .then(function (result) {
        var code = result.body && result.body.error && result.body.error.code;
        if (result.status === 401 && !retried && (code === "token_expired" || code === "token_invalid")) {
          // A stale or foreign token: start over as a new visitor rather than fail.
          state.token = null;
          storage("drop");
          return startSession(true);
        }
        if (result.status === 429) {
          // Too many chats started from this network: say so, and try again when told to.
          showError(t.slowDown);
          return new Promise(function (resolve) {
            setTimeout(resolve, Math.max(1, result.retryAfter || 10) * 1000);
          }).then(function () {
            return startSession(retried);
          });
        }
        if (result.status !== 200) {
          state.fatal = true;
          throw new Error((result.body && result.body.error && result.body.error.message) || t.unavailable);
        }
        state.token = result.body.token;
        storage("set", state.token);
        var settings = result.body.settings || {};
        if (settings.max_chars > 0) {
          maxChars = settings.max_chars;
          input.setAttribute("maxlength", String(maxChars));
        }
        if (settings.files) {
          fileLimits.maxBytes = settings.files.max_bytes || fileLimits.maxBytes;
          fileLimits.maxCount = settings.files.max_count || fileLimits.maxCount;
          fileLimits.types = settings.files.types || [];
          if (fileLimits.types.length) picker.setAttribute("accept", fileLimits.types.join(","));
        }
        host.style.setProperty("--sc-color", /^#[0-9a-fA-F]{3,8}$/.test(settings.color || "") ? settings.color : "#4f46e5");
        title.textContent = settings.title || "";
        if (settings.greeting && !list.querySelector("[data-from=greeting]")) {
          list.insertBefore(el("div", { class: "msg", "data-from": "greeting" }, settings.greeting), list.firstChild);
        }
        drawHistory(result.body.messages);
        if (result.body.survey) drawSurvey(result.body.survey);
        setOnline(result.body.online);
      });
  }

  // --- The socket -------------------------------------------------------------------
  function resume(socket, after) {
    socket.send(JSON.stringify({ type: "resume", after: after }));
  }

  // A resume is answered a page at a time, oldest first: ask again from the page's last id
  // until the server says there is no more.
  function nextPage(socket, data) {
    var messages = data.messages || [];
    if (!data.more || !messages.length) {
      state.resumeFrom = null;
      return;
    }
    state.resumeFrom = messages[messages.length - 1].id;
    if (socket.readyState === WebSocket.OPEN) resume(socket, state.resumeFrom);
  }

  function connect() {
    if (state.fatal) return;
    // The token goes in the first frame, never in the URL: URLs end up in access logs.
    var socket = new WebSocket(WS + "/ws/widget/" + encodeURIComponent(KEY) + "/");
    state.socket = socket;
    state.authed = false;
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "auth", token: state.token }));
    };
    function opened() {
      state.authed = true;
      state.attempts = 0;
      showError("");
      // Ask for anything written while we were away, then resend what never got an ack.
      resume(socket, state.resumeFrom === null ? state.lastId : state.resumeFrom);
      Object.keys(state.pending).forEach(function (id) {
        transmit(id);
      });
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_MS);
    }
    socket.onmessage = function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (data.type === "hello") {
        setOnline(data.online);
        opened();
      } else if (data.type === "pong") setOnline(data.online);
      else if (data.type === "message") {
        if (data.message.from === "agent") showAgentTyping(null);
        drawMessage(data.message);
      } else if (data.type === "typing") showAgentTyping(data.typing ? data.name : null);
      else if (data.type === "removed") removeMessage(data.message_id);
      else if (data.type === "history") {
        drawHistory(data.messages);
        nextPage(socket, data);
      } else if (data.type === "ack") acknowledge(data.client_id, data.message_id);
      else if (data.type === "survey") data.survey ? drawSurvey(data.survey) : dropSurvey();
      else if (data.type === "rated") thankForRating(data);
      else if (data.type === "error") handleError(data);
    };
    socket.onclose = function (event) {
      clearInterval(state.pingTimer);
      if (state.socket !== socket) return;
      state.socket = null;
      if (event.code === 4401) {
        // The token went stale while the page was open: get a fresh session, then reconnect.
        state.token = null;
        storage("drop");
        startSession(false).then(connect, fail);
        return;
      }
      if (event.code === 4403 || event.code === 4404) {
        state.fatal = true;
        return;
      }
      if (!state.fatal) {
        showError(t.offline);
        var delay = Math.min(30000, 500 * Math.pow(2, state.attempts)) * (0.75 + Math.random() * 0.5);
        state.attempts += 1;
        setTimeout(connect, delay);
      }
    };
  }

  function live() {
    return state.authed && state.socket !== null && state.socket.readyState === WebSocket.OPEN;
  }

  // --- Typing, both ways ------------------------------------------------------------
  function sendTyping(typing) {
    if (live()) {
      state.socket.send(JSON.stringify({ type: "typing", typing: typing }));
    }
  }

  function typingStopped() {
    clearTimeout(state.typingIdle);
    if (!state.typingSentAt) return;
    state.typingSentAt = 0;
    sendTyping(false);
  }

  function visitorTyped() {
    if (!input.value.trim()) {
      typingStopped();
      return;
    }
    var now = Date.now();
    if (now - state.typingSentAt >= TYPING_EVERY_MS) {
      state.typingSentAt = now;
      sendTyping(true);
    }
    clearTimeout(state.typingIdle);
    state.typingIdle = setTimeout(typingStopped, TYPING_IDLE_MS);
  }

  function showAgentTyping(name) {
    clearTimeout(state.agentTypingTimer);
    typingLine.textContent = name ? t.typing.replace("%(name)s", name) : "";
    if (name) {
      state.agentTypingTimer = setTimeout(function () {
        typingLine.textContent = "";
      }, TYPING_SHOWN_MS);
    }
  }

  function handleError(data) {
    if (RATE_ERRORS[data.code] || data.code === "bad_comment") {
      if (ratingRefused(data)) return;
    }
    if (data.code === "unavailable" && data.client_id && state.pending[data.client_id]) {
      // Nothing was stored (the server's database is away): it stays pending and goes again,
      // with its same client_id, so it is stored once.
      var again = data.client_id;
      setTimeout(function () {
        transmit(again);
      }, Math.max(1, data.retry_after || 2) * 1000);
      showError(t.offline);
      return;
    }
    if (data.code === "rate_limited") data.message = t.slowDown; // the bubble offers the retry
    if (data.code === "bad_attachment") data.message = t.badAttachment;
    if (data.code === "too_many_files") data.message = t.tooMany.replace("%(limit)s", fileLimits.maxCount);
    if (data.client_id && state.pending[data.client_id]) {
      var entry = state.pending[data.client_id];
      delete state.pending[data.client_id];
      entry.node.classList.remove("pending");
      entry.node.classList.add("failed");
      entry.node.title = data.message || t.failed;
      entry.node.lastChild.textContent = data.message || t.failed;
      entry.node.onclick = function () {
        entry.node.remove();
        send_(entry.body, entry.uploads);
      };
    }
    showError(data.message || t.unavailable);
  }

  function acknowledge(id, messageId) {
    var entry = state.pending[id];
    if (!entry) return;
    delete state.pending[id];
    if (state.seen[messageId]) {
      entry.node.remove(); // the live push got here first and drew it already
      return;
    }
    state.seen[messageId] = true;
    if (messageId > state.lastId) state.lastId = messageId;
    entry.node.classList.remove("pending");
    entry.node.dataset.id = String(messageId);
    // Drawn from what we sent: the server's copy (with the files' links) replaces it.
    if (entry.uploads.length) entry.node.dataset.localFiles = "true";
    entry.node.lastChild.textContent = timeOf(new Date().toISOString());
  }

  function transmit(id) {
    var entry = state.pending[id];
    if (entry && live()) {
      state.socket.send(JSON.stringify({ type: "message", body: entry.body, client_id: id, attachments: entry.attachments }));
    }
  }

  // --- Files: chips while they upload, sent with the next message ------------------------
  function refusal(text, name, limit) {
    return text.replace("%(name)s", name).replace("%(limit)s", limit);
  }

  function uploading() {
    return state.uploads.some(function (upload) {
      return upload.status === "uploading";
    });
  }

  function updateTray() {
    tray.classList.toggle("shown", state.uploads.length > 0);
    send.disabled = state.fatal || uploading();
  }

  function removeUpload(upload) {
    if (upload.xhr) upload.xhr.abort();
    upload.chip.remove();
    state.uploads = state.uploads.filter(function (other) {
      return other !== upload;
    });
    updateTray();
  }

  function failUpload(upload, why) {
    upload.status = "failed";
    upload.xhr = null;
    upload.chip.classList.add("failed");
    upload.chip.dataset.status = "failed";
    upload.progress.remove();
    upload.chip.insertBefore(el("span", { class: "why", "data-testid": "sc-upload-error" }, why), upload.removeButton);
    upload.chip.title = why;
    showError(why);
    updateTray();
  }

  function chipFor(upload) {
    var chip = el("div", { class: "chip", "data-testid": "sc-upload", "data-status": upload.status, title: upload.name });
    chip.appendChild(el("span", { class: "name" }, upload.name));
    chip.appendChild(el("span", { class: "size" }, humanSize(upload.size)));
    upload.progress = el("progress", { max: "100", value: "0" });
    chip.appendChild(upload.progress);
    upload.removeButton = el("button", { type: "button", "aria-label": t.remove + " " + upload.name, title: t.remove, "data-testid": "sc-upload-remove" }, "×");
    upload.removeButton.addEventListener("click", function () {
      removeUpload(upload);
    });
    chip.appendChild(upload.removeButton);
    return chip;
  }

  function startUpload(upload, retried) {
    var xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open("POST", HTTP + "/widget/v1/" + encodeURIComponent(KEY) + "/attachments");
    xhr.setRequestHeader("Authorization", "Bearer " + state.token);
    // Refusals come back in the widget's language.
    xhr.setRequestHeader("Accept-Language", lang);
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) upload.progress.value = Math.round((event.loaded / event.total) * 100);
    };
    xhr.onload = function () {
      if (upload.xhr !== xhr) return; // removed meanwhile
      var body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch (e) {
        body = {};
      }
      if (xhr.status === 201) {
        upload.status = "ready";
        upload.id = body.id;
        upload.xhr = null;
        upload.chip.dataset.status = "ready";
        upload.progress.value = 100;
        updateTray();
      } else if (xhr.status === 401 && !retried) {
        // The session went stale: get a fresh one, then try this file once more.
        state.token = null;
        storage("drop");
        startSession(false).then(function () {
          if (upload.xhr === xhr) startUpload(upload, true);
        }, fail);
      } else if (xhr.status === 429) {
        failUpload(upload, t.slowDown);
      } else {
        failUpload(upload, (body.error && body.error.message) || refusal(t.uploadFailed, upload.name));
      }
    };
    xhr.onerror = function () {
      if (upload.xhr === xhr) failUpload(upload, refusal(t.uploadFailed, upload.name));
    };
    var data = new FormData();
    data.append("file", upload.file, upload.name);
    xhr.send(data);
  }

  function addFiles(fileList) {
    Array.prototype.forEach.call(fileList || [], function (file) {
      var upload = { file: file, name: file.name || "file", size: file.size, status: "uploading", id: null, xhr: null };
      var counted = state.uploads.filter(function (other) {
        return other.status !== "failed";
      }).length;
      upload.chip = chipFor(upload);
      tray.appendChild(upload.chip);
      state.uploads.push(upload);
      if (counted >= fileLimits.maxCount) {
        failUpload(upload, t.tooMany.replace("%(limit)s", fileLimits.maxCount));
      } else if (file.size > fileLimits.maxBytes) {
        failUpload(upload, refusal(t.tooLarge, upload.name, humanSize(fileLimits.maxBytes)));
      } else {
        startUpload(upload, false);
      }
    });
    updateTray();
  }

  function send_(body, uploads) {
    showError("");
    var id = clientId();
    var node = el("div", { class: "msg pending", "data-testid": "sc-message", "data-from": "visitor", "data-client-id": id });
    node.appendChild(document.createTextNode(body));
    if (uploads.length) node.appendChild(drawLocalFiles(uploads));
    node.appendChild(el("span", { class: "meta" }, t.sending));
    list.appendChild(node);
    scrollDown();
    var attachments = uploads.map(function (upload) {
      return upload.id;
    });
    state.pending[id] = { body: body, node: node, uploads: uploads, attachments: attachments };
    transmit(id); // if the socket is down, onopen sends it after reconnecting
  }

  function submit(body) {
    body = body.trim();
    if (uploading()) {
      showError(t.waitUploads);
      return false;
    }
    var ready = state.uploads.filter(function (upload) {
      return upload.status === "ready";
    });
    if (!body && !ready.length) return false;
    if (body.length > maxChars) {
      showError(t.tooLong);
      return false;
    }
    // Sent files leave the tray, and so do refused ones (their reason was shown).
    state.uploads.forEach(function (upload) {
      upload.chip.remove();
    });
    state.uploads = [];
    updateTray();
    send_(body, ready);
    return true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (submit(input.value)) input.value = "";
    typingStopped();
    input.focus();
  });
  attach.addEventListener("click", function () {
    picker.click();
  });
  picker.addEventListener("change", function () {
    addFiles(picker.files);
    picker.value = ""; // the same file can be picked again
  });
  input.addEventListener("paste", function (event) {
    var pasted = event.clipboardData && event.clipboardData.files;
    if (pasted && pasted.length) {
      event.preventDefault();
      addFiles(pasted);
    }
  });
  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") !== -1;
  }
  panel.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    panel.classList.add("dragging");
    panel.title = t.dropHere;
  });
  panel.addEventListener("dragleave", function (event) {
    if (event.target === panel || !panel.contains(event.relatedTarget)) {
      panel.classList.remove("dragging");
      panel.removeAttribute("title");
    }
  });
  panel.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    panel.classList.remove("dragging");
    panel.removeAttribute("title");
    addFiles(event.dataTransfer.files);
  });
  input.addEventListener("input", visitorTyped);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  function setOpen(open) {
    state.open = open;
    panel.classList.toggle("open", open);
    launcher.setAttribute("aria-label", open ? t.close : t.open);
    launcher.title = open ? t.close : t.open;
    if (open) {
      scrollDown();
      input.focus();
    }
  }
  launcher.addEventListener("click", function () {
    setOpen(!state.open);
  });

  function fail(err) {
    showError((err && err.message) || t.unavailable);
    status.textContent = t.unavailable;
    send.disabled = true;
    state.readyResolve(false);
  }

  function mount() {
    document.body.appendChild(host);
    host.style.setProperty("--sc-color", "#4f46e5");
    startSession(false).then(function () {
      connect();
      state.readyResolve(true);
    }, fail);
  }

  window.Smartchat = {
    loaded: true,
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
    ready: ready,
  };

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
