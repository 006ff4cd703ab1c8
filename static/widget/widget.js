/* Handoff chat widget. Embed: <script src="https://HOST/widget.js" data-bot="KEY" async></script>
 * Plain JS, no build step. It speaks docs/chat-protocol.md over one WebSocket. All text from
 * the server or the customer goes in through textContent, never as HTML. */
(() => {
  "use strict";
  if (!window.customElements || customElements.get("handoff-chat")) return; // loaded twice

  // async scripts have no currentScript once run from a callback, so look it up now.
  const SCRIPT = document.currentScript || document.querySelector("script[data-bot]");
  const SCRIPT_ORIGIN = SCRIPT && SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : "";
  const MAX_CHARS = 4000; // the server's CHAT_MAX_MESSAGE_CHARS default; it checks again
  const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
  const BACKOFF_MS = [1000, 30000]; // first retry, cap
  const PING_MS = 25000; // proxies close idle sockets after 30-60 s
  const STOP_CODES = { 4403: "This site is not allowed to use this chat.", 4404: "This chat no longer exists." };

  const log = (...a) => console.error("[Handoff]", ...a);

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // http:// pages are not a secure context and have no randomUUID.
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // localStorage throws in some sandboxed iframes and private modes: fall back to memory.
  const memory = {};
  const store = {
    get(key) {
      try { return JSON.parse(localStorage.getItem(key)) || memory[key] || null; } catch { return memory[key] || null; }
    },
    set(key, value) {
      memory[key] = value;
      try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* memory only */ }
    },
  };

  /* h("div", {class: "x", onclick}, "text", child): text arguments become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c != null) el.append(c);
    return el;
  }

  // An http(s) link or "": old citations may say " javascript:…".
  function webLink(url) {
    try {
      const u = new URL(url);
      return /^https?:$/.test(u.protocol) && u.host ? u.href : "";
    } catch { return ""; }
  }

  function readableOn(hex) {
    const n = parseInt(hex.slice(1), 16);
    const lum = (0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
    return lum > 0.6 ? "#111827" : "#ffffff";
  }

  const STYLES = `
:host{all:initial;position:fixed;bottom:20px;right:20px;z-index:2147483000;--c:#2563eb;--on:#fff}
.panel{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;text-align:left}
:host([data-position=left]){right:auto;left:20px}
:host([mode=page]){position:relative;inset:auto;display:block;height:100%;width:100%}
:host([hidden]){display:none}
*{box-sizing:border-box}
button,textarea{font:inherit;color:inherit}
button{cursor:pointer}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.launcher{width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:var(--on);box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center}
.launcher svg{width:26px;height:26px;fill:currentColor}
.launcher{position:relative}.launcher[data-unread]::after{content:attr(data-unread);position:absolute;top:-3px;right:-3px;min-width:18px;padding:0 4px;border-radius:9px;background:#dc2626;color:#fff;font:700 11px/18px system-ui,sans-serif}
.panel{position:absolute;bottom:70px;right:0;width:min(380px,calc(100vw - 40px));height:min(600px,calc(100vh - 110px));background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}
:host([data-position=left]) .panel{right:auto;left:0}
:host([mode=page]) .panel{position:static;width:100%;height:100%;border-radius:0;box-shadow:none}
.panel[hidden]{display:none}
header{background:var(--c);color:var(--on);padding:12px 14px;display:flex;gap:8px;align-items:center}
header h2{font-size:16px;margin:0;flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
header .status{font-size:12px;opacity:.9;display:block;font-weight:400}
header button{background:transparent;border:1px solid currentColor;color:var(--on);border-radius:6px;padding:3px 8px;font-size:13px}
header .close{border:0;font-size:20px;line-height:1;padding:2px 6px}
.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f8fafc}
.msg{max-width:85%;display:flex;flex-direction:column;gap:4px}
.msg .bubble{padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e5e7eb}
.msg.user{align-self:flex-end}
.msg.user .bubble{background:var(--c);color:var(--on);border-color:var(--c)}
.msg.sending .bubble{opacity:.65}
.msg.system{align-self:center;max-width:95%;text-align:center}
.msg.system .bubble{background:transparent;border:0;color:#6b7280;font-size:13px}
.msg.failed .bubble{border-color:#fca5a5}
.who{font-size:12px;color:#6b7280}
.sources{margin:0;padding:0 0 0 4px;list-style:none;font-size:13px}
.sources a{color:#1d4ed8}
.disclaimer{font-size:12px;color:#6b7280;margin:0}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chips button,.human{background:#fff;border:1px solid var(--c);color:#111827;border-radius:999px;padding:4px 10px;font-size:13px}
.fb{display:flex;gap:4px}
.fb button{background:transparent;border:1px solid transparent;border-radius:6px;padding:2px 4px;opacity:.6;display:grid}
.fb svg{width:16px;height:16px;fill:#4b5563}
.fb .down svg{transform:rotate(180deg)}
.fb button[aria-pressed=true]{opacity:1;border-color:#9ca3af}
.typing{display:inline-flex;gap:3px}
.typing i{width:6px;height:6px;border-radius:50%;background:#9ca3af;animation:b 1s infinite}
.typing i:nth-child(2){animation-delay:.15s}.typing i:nth-child(3){animation-delay:.3s}
@keyframes b{50%{transform:translateY(-3px);opacity:.4}}
@media (prefers-reduced-motion:reduce){.typing i{animation:none}}
.end-box{align-self:stretch;max-width:100%;align-items:center;gap:8px}
.rate{display:flex;gap:4px}
.rate button{border:1px solid #d1d5db;background:#fff;border-radius:6px;padding:0 8px;font-size:20px;color:#9ca3af}
.rate button:hover,.rate button:focus{color:#d97706}
.new{background:var(--c);color:var(--on);border:0;border-radius:999px;padding:6px 14px}
.end-box textarea{align-self:stretch;min-height:48px;font-size:13px}
.ask{align-self:flex-start;max-width:85%;text-align:left;align-items:flex-start}
.ask .bubble{color:#111827;font-size:14px;padding:0}
.yn{display:flex;gap:8px}
.yn button{background:#fff;border:1px solid var(--c);color:#111827;border-radius:999px;padding:4px 14px;font-size:13px}
.msg form.email{border:0;padding:4px 0;background:none}.email input{flex:1;min-width:0;border:1px solid #d1d5db;border-radius:8px;padding:6px}
.card{border:1px solid var(--c);border-radius:10px;padding:8px 10px;background:#fff;display:flex;flex-direction:column;gap:6px}
.card p{margin:0;font-weight:600}
.card .done{font-weight:400;color:#6b7280;font-size:13px}
.progress{align-self:flex-start;color:#6b7280;font-size:13px;font-style:italic;margin:0}
.alert{margin:0;padding:6px 12px;background:#fef2f2;color:#b91c1c;font-size:13px}
.alert:empty{display:none}
form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;align-items:flex-end;background:#fff}
textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:8px;padding:8px;max-height:120px;min-height:40px;background:#fff}
.send{background:var(--c);color:var(--on);border:0;border-radius:8px;padding:8px 14px}
.send:disabled{opacity:.5;cursor:default}
.count{font-size:12px;color:#6b7280;padding:0 12px 6px;text-align:right;background:#fff}
.count.over{color:#b91c1c}
.count[hidden]{display:none}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
`;

  const THUMB = '<path d="M1 21h4V9H1zm22-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L14.2 1 7.6 7.6C7.2 8 7 8.4 7 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7c.1-.3.2-.5.2-.8z"/>';
  const SKELETON = `
<button class="launcher" type="button" aria-expanded="false" aria-controls="panel"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg></button>
<div class="panel" id="panel" role="dialog" aria-modal="true" aria-labelledby="name" hidden>
  <header><h2><span class="name" id="name"></span><span class="status" aria-live="polite"></span></h2>
    <button type="button" class="escalate">Talk to a person</button>
    <button type="button" class="close" aria-label="Close chat">\u00d7</button></header>
  <div class="log" role="log" aria-live="polite" aria-relevant="additions text" tabindex="0" aria-label="Messages"></div>
  <p class="alert" role="alert"></p>
  <p class="sr announce" role="status"></p>
  <form><label class="sr" for="text">Your message</label>
    <textarea id="text" rows="1" placeholder="Type your message\u2026" aria-describedby="count"></textarea>
    <button class="send" type="submit">Send</button></form>
  <div class="count" id="count" hidden></div>
</div>`;

  // Styles without an inline <style> where possible (pages whose CSP refuses those); else one
  // carrying the script tag's nonce.
  let sheet = null;
  function adoptStyles(root) {
    try {
      if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(STYLES); }
      root.adoptedStyleSheets = [sheet];
    } catch {
      const style = h("style", { text: STYLES });
      if (SCRIPT && SCRIPT.nonce) style.nonce = SCRIPT.nonce;
      root.prepend(style);
    }
  }

  class HandoffChat extends HTMLElement {
    connectedCallback() {
      if (this.root) {
        // Moved within the page: pick the conversation up again.
        if (this.paused && this.dataset.state === "ready") { this.paused = false; this.connect(); }
        return;
      }
      this.key = this.getAttribute("bot") || "";
      this.host = (this.getAttribute("host") || SCRIPT_ORIGIN || location.origin).replace(/\/$/, "");
      this.channel = this.getAttribute("channel") || "widget";
      this.page = this.getAttribute("mode") === "page";
      this.storeKey = `handoff:${this.key}:${this.channel}`;
      this.state = store.get(this.storeKey) || {};
      if (!ID_RE.test(this.state.visitor_id || "")) this.state.visitor_id = newId();
      this.state.outbox = this.state.outbox || [];
      this.messages = new Map(); // id -> {el, msg}
      this.attempt = 0;
      this.save();
      this.hidden = true; // until the config says this site may show the chat
      this.root = this.attachShadow({ mode: "open" });
      this.root.innerHTML = SKELETON;
      adoptStyles(this.root);
      const $ = (s) => this.root.querySelector(s);
      Object.assign(this, {
        $launcher: $(".launcher"), $panel: $(".panel"), $log: $(".log"), $alert: $(".alert"),
        $text: $("textarea"), $send: $(".send"), $count: $(".count"), $status: $(".status"),
        $escalate: $(".escalate"), $announce: $(".announce"),
      });
      this.gone = new Set(); // conversations left for a new one
      this.$launcher.addEventListener("click", () => this.toggle(this.$panel.hidden));
      $(".close").addEventListener("click", () => this.toggle(false));
      this.$escalate.addEventListener("click", () => this.escalate());
      $("form").addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
      this.$text.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); }
      });
      this.$text.addEventListener("input", () => { this.counter(); this.typed(); });
      this.$panel.addEventListener("keydown", (e) => this.trap(e));
      if (this.page) {
        this.$launcher.remove();
        $(".close").remove();
        this.$panel.removeAttribute("aria-modal");
        this.$panel.setAttribute("role", "region");
      }
      this.start();
    }

    disconnectedCallback() {
      this.paused = true;
      clearTimeout(this.retry);
      clearInterval(this.pinger);
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
    }

    save() { store.set(this.storeKey, this.state); }

    async start() {
      let config;
      try {
        const res = await fetch(`${this.host}/widget/${encodeURIComponent(this.key)}/config.json`);
        config = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(config.error || `HTTP ${res.status}`);
      } catch (err) {
        this.setAttribute("data-state", "unavailable");
        log(`The chat cannot load on this page: ${err.message}`);
        if (this.page) { this.hidden = false; this.$panel.hidden = false; this.alert(err.message); }
        return;
      }
      this.theme(config);
      this.hidden = false;
      this.setAttribute("data-state", "ready");
      // Open again after a reload if it was open: the customer is mid-conversation.
      if (this.page || this.hasAttribute("open") || this.state.open) this.toggle(true, false);
      this.connect();
    }

    theme({ name, greeting, colour, position }) {
      if (/^#[0-9a-f]{6}$/i.test(colour || "")) {
        this.style.setProperty("--c", colour);
        this.style.setProperty("--on", readableOn(colour));
      }
      this.setAttribute("data-position", position === "left" ? "left" : "right");
      this.root.querySelector(".name").textContent = name || "Chat";
      this.$launcher.setAttribute("aria-label", `Chat with ${name || "us"}`);
      if (greeting && !this.$greeting) {
        this.$greeting = h("div", { class: "msg ai greeting" }, h("div", { class: "bubble", text: greeting }));
        this.$log.prepend(this.$greeting);
      }
    }

    /* --- Opening, closing, keyboard ------------------------------------------------------ */
    toggle(open, focus = true) {
      if (this.page) open = true;
      this.$panel.hidden = !open;
      this.$launcher.setAttribute("aria-expanded", String(open));
      if (!this.page && this.state.open !== open) { this.state.open = open; this.save(); }
      if (open && focus) this.$text.focus();
      else if (!open && focus) this.$launcher.focus();
      if (open) this.scrollDown();
      if (open && this.unread) {
        this.unread = 0;
        delete this.$launcher.dataset.unread;
        this.$launcher.setAttribute("aria-label", this.$launcher.getAttribute("aria-label").split(" (")[0]);
      }
    }

    trap(e) {
      if (e.key === "Escape" && !this.page) { e.preventDefault(); this.toggle(false); return; }
      if (e.key !== "Tab" || this.page) return;
      const items = [...this.$panel.querySelectorAll("button,textarea,a[href],[tabindex='0']")]
        .filter((el) => !el.disabled && el.tabIndex >= 0 && !el.closest("[hidden]") && el.getClientRects().length);
      if (!items.length) return;
      const first = items[0], last = items[items.length - 1];
      const active = this.root.activeElement;
      if (e.shiftKey && (active === first || !this.$panel.contains(active))) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && active === last) { e.preventDefault(); first.focus(); }
    }

    /* --- The socket ---------------------------------------------------------------------- */
    connect() {
      if (this.stopped || this.paused) return;
      const url = `${this.host.replace(/^http/, "ws")}/ws/widget/${encodeURIComponent(this.key)}/`;
      const ws = (this.ws = new WebSocket(url));
      ws.onopen = () => { this.attempt = 0; this.hello(); };
      ws.onmessage = (e) => {
        let frame;
        try { frame = JSON.parse(e.data); } catch { return; }
        this.receive(frame);
      };
      ws.onclose = (e) => {
        clearInterval(this.pinger);
        this.ready = false;
        if (ws !== this.ws || this.stopped) return;
        if (STOP_CODES[e.code]) {
          this.stopped = true;
          this.setAttribute("data-state", "unavailable");
          log(`${STOP_CODES[e.code]} (socket closed with ${e.code}; check the bot's allowed origins)`);
          this.alert(STOP_CODES[e.code]);
          return;
        }
        this.status("Reconnecting\u2026");
        // Exponential, capped, jittered: a server restart is not met by every widget at once.
        const base = Math.min(BACKOFF_MS[1], BACKOFF_MS[0] * 2 ** this.attempt++);
        this.retry = setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
      };
    }

    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(frame)); return true; }
      return false;
    }

    hello() {
      const frame = { type: "hello", visitor_id: this.state.visitor_id, after_id: this.afterId() };
      if (this.state.conversation_id) frame.conversation_id = this.state.conversation_id;
      if (this.channel !== "widget") frame.channel = this.channel;
      const who = window.HandoffSettings || {};
      for (const f of ["user_id", "user_hash", "name", "email"]) if (typeof who[f] === "string" && who[f]) frame[f] = who[f];
      this.send(frame);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
    }

    /* Messages after this id are asked for: everything after a reload (nothing is rendered),
     * and after a reconnect all from the oldest answer still being written, so its completion
     * is not missed. */
    afterId() {
      let last = 0, pending = Infinity;
      for (const [id, { msg }] of this.messages) {
        last = Math.max(last, id);
        if (msg.state === "pending") pending = Math.min(pending, id - 1);
      }
      return Math.min(last, pending);
    }

    receive(frame) {
      switch (frame.type) {
        case "ready": {
          this.ready = true;
          this.status("");
          this.alert("");
          if (frame.bot) this.theme(frame.bot);
          // Not the conversation asked for (it was closed): the server's one from its start, or none.
          const had = this.state.conversation_id, now = frame.conversation && frame.conversation.id;
          if (had && now !== had) {
            this.clear();
            this.state.conversation_id = now || undefined;
            this.save();
            if (now) { this.hello(); break; }
          }
          this.conversation(frame.conversation);
          for (const m of frame.messages || []) this.render(m);
          for (const m of this.state.outbox) if (!this.local(m.id)) this.renderLocal(m);
          // Resent with the same client_message_id: stored once however often it arrives.
          for (const m of this.state.outbox) this.send({ type: "message", client_message_id: m.id, text: m.text });
          break;
        }
        case "message.created":
        case "message.updated":
          if (frame.message && this.gone.has(frame.message.conversation_id)) break;
          this.unseen(frame.message);
          this.render(frame.message);
          break;
        case "message.token": {
          const known = this.messages.get(frame.message_id);
          if (known && known.msg.state === "pending") {
            known.msg.text = (known.msg.text || "") + frame.text;
            this.render(known.msg);
          }
          break;
        }
        case "conversation.updated":
          if (frame.conversation && this.gone.has(frame.conversation.id)) break;
          this.conversation(frame.conversation);
          break;
        case "typing":
          this.typing(frame);
          break;
        case "tool_call":
          this.progress(frame.state === "running" ? frame.progress || "Working on it\u2026" : "");
          break;
        case "error":
          this.error(frame);
          break;
      }
    }

    /* null: no conversation yet (the first message or escalate starts one). */
    conversation(c) {
      this.convo = c || null;
      if (c && c.id && c.id !== this.state.conversation_id) { this.state.conversation_id = c.id; this.save(); }
      const s = c ? c.status : "", over = s === "resolved" || s === "closed";
      const helping = c && c.assigned_agent ? `${c.assigned_agent} is here to help` : "A person is here to help";
      const text = { waiting: "Waiting for a person\u2026", active: helping, awaiting_customer: c && c.assigned_agent ? helping : "", resolved: "Resolved", closed: "Closed" };
      this.status(text[s] || "");
      // A finished chat offers a new one, not a person who would never come.
      this.$escalate.hidden = over || this.personHere();
      this.askAnswered();
      const end = this.root.querySelector(".end-box");
      if (!over) { if (end) { end.remove(); this.announce(""); } return; }
      if (end) return; // shown once, though this runs again after every typing pause
      this.$log.append(this.ending(c));
      this.scrollDown(); // in view and said: the customer may be scrolled up, or looking away
      this.announce(`This conversation is ${s}.${this.$log.querySelector(".rate") ? " How did we do? Rate it from 1 to 5 stars, or start a new conversation." : ""}`);
    }

    ending(c) {
      const box = h("div", { class: "msg system end-box" }, h("div", { class: "bubble", text: `This conversation is ${c.status}.` }));
      const again = h("button", { type: "button", class: "new", text: "Start a new conversation", onclick: () => this.fresh() });
      if (c.csat == null && c.resolution !== "abandoned") {
        const ask = h("div", { class: "bubble", id: "rate-q", text: "How did we do?" });
        // Optional, and sent with the stars: a conversation is rated once.
        const comment = h("textarea", { rows: "2", maxlength: "2000", "aria-label": "Anything to add? (optional)", placeholder: "Anything to add? (optional), then pick the stars" });
        const stars = h("div", { class: "rate", role: "radiogroup", "aria-labelledby": "rate-q" });
        for (let n = 1; n <= 5; n++) {
          stars.append(h("button", { type: "button", role: "radio", "aria-checked": "false", tabindex: n > 1 ? "-1" : "0", "aria-label": `${n} star${n > 1 ? "s" : ""}`, text: "\u2605",
            onclick: () => {
              const frame = { type: "rate", score: n };
              if (comment.value.trim()) frame.comment = comment.value.trim();
              if (!this.send(frame)) return this.alert("Not connected yet; try again in a moment.");
              ask.textContent = "Thank you!";
              stars.remove();
              comment.remove();
              this.announce("Thank you for your rating.");
              again.focus();
            } }));
        }
        // One tab stop; arrows move between the stars, as in a radio group.
        stars.addEventListener("keydown", (e) => {
          const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
          if (!step) return;
          e.preventDefault();
          const all = [...stars.children], next = all[(Math.max(all.indexOf(this.root.activeElement), 0) + step + 5) % 5];
          all.forEach((b) => b.setAttribute("tabindex", b === next ? "0" : "-1"));
          next.focus();
        });
        box.append(ask, comment, stars);
      }
      box.append(again);
      return box;
    }

    /* "Start a new conversation": forget this one (its late events too) and greet without it. */
    fresh() {
      if (this.state.conversation_id) this.gone.add(this.state.conversation_id);
      delete this.state.conversation_id;
      this.save();
      this.clear();
      this.conversation(null);
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.hello();
      this.announce("New conversation.");
      this.$text.focus();
    }

    clear() {
      for (const { el } of this.messages.values()) el.remove();
      this.messages.clear();
      this.root.querySelectorAll(".end-box, .ask").forEach((e) => e.remove());
      this.emailLeft = false;
    }

    error({ code, message }) {
      // A refused message comes back to the text box, so nothing typed is lost.
      if (["too_long", "empty", "rate_limited", "closed"].includes(code) && this.state.outbox.length) {
        const lost = this.state.outbox.pop();
        this.save();
        const el = this.local(lost.id);
        if (el) el.remove();
        if (!this.$text.value) { this.$text.value = lost.text; this.counter(); }
      }
      this.alert(message || "Something went wrong.");
    }

    /* --- Sending --------------------------------------------------------------------------- */
    submit(text = this.$text.value) {
      if (!text.trim()) return;
      if (text.length > MAX_CHARS) { this.alert(`That message is too long: at most ${MAX_CHARS} characters.`); return; }
      const pending = { id: newId(), text };
      this.state.outbox.push(pending);
      this.save();
      if (text === this.$text.value) { this.$text.value = ""; this.counter(); }
      this.alert("");
      this.typed(false);
      this.renderLocal(pending);
      if (this.ready) this.send({ type: "message", client_message_id: pending.id, text });
      // Not ready: the outbox goes out after the next `ready`.
    }

    escalate() {
      if (!this.send({ type: "escalate" })) this.alert("Not connected yet; try again in a moment.");
    }

    // Typing frames only while a person has the chat: one per 2.5 s, "stopped" after 3 s idle.
    typed(on = true) {
      const now = Date.now();
      clearTimeout(this.idle);
      if (!this.personHere()) return;
      if (!on) { if (this.typedAt) this.send({ type: "typing", active: false }); this.typedAt = 0; return; }
      if (!(now - this.typedAt < 2500)) { this.typedAt = now; this.send({ type: "typing", active: true }); }
      this.idle = setTimeout(() => this.typed(false), 3000);
    }

    // "Sam is typing…" in the header, until they stop or 8 s pass.
    typing({ name, active }) {
      clearTimeout(this.shown);
      if (!active) return this.conversation(this.convo);
      this.status(`${name} is typing\u2026`);
      this.shown = setTimeout(() => this.typing({}), 8000);
    }

    counter() {
      const n = this.$text.value.length;
      this.$count.hidden = n < MAX_CHARS * 0.8;
      this.$count.textContent = n > MAX_CHARS ? `${n} / ${MAX_CHARS}: ${n - MAX_CHARS} too many` : `${n} / ${MAX_CHARS}`;
      this.$count.classList.toggle("over", n > MAX_CHARS);
      this.$send.disabled = n > MAX_CHARS;
    }

    /* --- Rendering ------------------------------------------------------------------------- */
    renderLocal(pending) {
      const el = h("div", { class: "msg user sending", "data-cid": pending.id }, h("div", { class: "bubble", text: pending.text }));
      this.$log.append(el);
      this.scrollDown();
    }

    render(msg) {
      if (!msg || typeof msg.id !== "number") return;
      let known = this.messages.get(msg.id);
      if (!known && msg.client_message_id) {
        // The echo of our own message: it takes over the bubble shown while sending.
        const i = this.state.outbox.findIndex((m) => m.id === msg.client_message_id);
        if (i >= 0) { this.state.outbox.splice(i, 1); this.save(); }
        const local = this.local(msg.client_message_id);
        if (local) local.remove();
      }
      const el = this.message(msg);
      if (known) known.el.replaceWith(el);
      else this.place(el, msg.id);
      this.messages.set(msg.id, { el, msg: { ...msg } });
      this.latestChips();
      this.askAnswered();
      this.scrollDown();
      if (msg.sender === "ai" && msg.state !== "pending") {
        if (!known || known.msg.state === "pending") this.progress(""); // the answer is here
        this.dispatchEvent(new CustomEvent("handoff:message", { detail: msg, bubbles: true, composed: true }));
      }
    }

    /* A reply that arrives while the chat is closed: a count on the launcher until it opens. */
    unseen(msg) {
      const was = msg && this.messages.get(msg.id);
      if (!this.$panel.hidden || !msg || msg.sender === "user" || msg.state !== "complete" || (was && was.msg.state === "complete")) return;
      this.unread = (this.unread || 0) + 1;
      this.$launcher.dataset.unread = this.unread;
      this.$launcher.setAttribute("aria-label", `${this.$launcher.getAttribute("aria-label").split(" (")[0]} (${this.unread} new)`);
    }

    place(el, id) {
      // In id order, before any bubble still being sent.
      const after = [...this.$log.children].find((c) => (c.dataset.id && Number(c.dataset.id) > id) || c.dataset.cid || c.classList.contains("end-box"));
      this.$log.insertBefore(el, after || null);
    }

    message(msg) {
      const mine = msg.sender === "user";
      const el = h("div", { class: `msg ${msg.sender} ${msg.state}`, "data-id": msg.id });
      if (msg.sender === "agent" && msg.agent_name) el.append(h("div", { class: "who", text: msg.agent_name }));
      const bubble = h("div", { class: "bubble" });
      if (msg.state === "pending" && !msg.text) {
        bubble.append(h("span", { class: "typing", role: "img", "aria-label": "Typing" }, h("i"), h("i"), h("i")));
        el.setAttribute("aria-busy", "true");
      } else {
        bubble.textContent = msg.text || "";
      }
      el.append(bubble);
      if (mine || msg.state !== "complete") return el;
      const extras = msg.extras || {};
      // The notice comes just before the status that says people have it: not checked here.
      if (extras.email_left) { this.emailLeft = true; this.$log.querySelectorAll("form.email").forEach((f) => f.remove()); }
      if (msg.sender === "system" && extras.ask_email && !this.emailLeft && !["resolved", "closed"].includes(this.convo && this.convo.status)) el.append(this.emailForm());
      const seen = new Set();
      // `link` goes to the cited section (the document's page, or its help page); older
      // answers have only `url`. Named by section and title: "Returns and refunds · Shop guide",
      // and by source when it says who answered: "… (Answers from the team)".
      const links = (msg.citations || []).map((c) => ({ text: [c.heading, c.title].filter(Boolean).join(" · ") + (c.source ? ` (${c.source})` : ""), href: webLink(c.link || c.url) }))
        .filter((c) => c.href && !seen.has(c.href) && seen.add(c.href));
      if (links.length) {
        el.append(h("ul", { class: "sources", "aria-label": "Sources" },
          ...links.map((c) => h("li", {}, h("a", { href: c.href, target: "_blank", rel: "noopener noreferrer", text: c.text || c.href })))));
      }
      if (extras.disclaimer) el.append(h("p", { class: "disclaimer", text: extras.disclaimer }));
      if (Array.isArray(extras.suggestions) && extras.suggestions.length) {
        el.append(h("div", { class: "chips", role: "group", "aria-label": "Suggestions" },
          ...extras.suggestions.map((s) => h("button", { type: "button", text: s, onclick: () => this.submit(String(s)) }))));
      }
      if (msg.sender === "ai" && extras.action_confirm && typeof extras.action_confirm.call_id === "number") el.append(this.card(extras.action_confirm));
      if (extras.offer_human && (!this.convo || this.withBot())) {
        el.append(h("div", {}, h("button", { type: "button", class: "human", text: "Talk to a person", onclick: () => this.escalate() })));
      }
      if (msg.sender === "ai") el.append(this.thumbs(msg));
      return el;
    }

    /* An action's confirmation card: exactly what will happen, and Confirm / Cancel, answered
     * once (`action_confirm`); the result comes as the bot's next message. */
    card(ask) {
      const box = h("div", { class: "card", role: "group", "aria-label": "Please confirm" }, h("p", { text: ask.text || "" }));
      if (ask.state) {
        box.append(h("span", { class: "done", text: ask.state === "confirmed" ? "Confirmed" : "Cancelled" }));
        return box;
      }
      const answer = (confirmed) => {
        if (!this.send({ type: "action_confirm", call_id: ask.call_id, confirmed })) return this.alert("Not connected yet; try again in a moment.");
        ask.state = confirmed ? "confirmed" : "cancelled";
        buttons.replaceWith(h("span", { class: "done", text: confirmed ? "Confirmed" : "Cancelled" }));
        this.announce(confirmed ? "Confirmed." : "Cancelled.");
      };
      const buttons = h("div", { class: "yn" },
        h("button", { type: "button", class: "confirm", text: "Confirm", onclick: () => answer(true) }),
        h("button", { type: "button", class: "cancel", text: "Cancel", onclick: () => answer(false) }));
      box.append(buttons);
      return box;
    }

    /* "Checking your order…" while an action runs; "" removes it. */
    progress(text) {
      let line = this.$log.querySelector(".progress");
      if (!text) { if (line) line.remove(); return; }
      if (!line) line = h("p", { class: "progress", role: "status" });
      line.textContent = text;
      this.$log.append(line);
      this.scrollDown();
    }

    /* Out of hours: an address for the answer by e-mail (leave_email, docs/chat-protocol.md). */
    emailForm() {
      const input = h("input", { type: "email", autocomplete: "email", required: true, "aria-label": "Your e-mail address", value: (window.HandoffSettings || {}).email });
      return h("form", { class: "email", onsubmit: (e) => {
        e.preventDefault();
        if (!this.send({ type: "leave_email", email: input.value.trim() })) this.alert("Not connected yet; try again in a moment.");
      } }, input, h("button", { class: "send", text: "Send" }));
    }

    thumbs(msg) {
      const box = h("div", { class: "fb", role: "group", "aria-label": "Was this helpful?" });
      for (const [value, label] of [[1, "Helpful"], [-1, "Not helpful"]]) {
        const icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        icon.setAttribute("viewBox", "0 0 24 24");
        icon.setAttribute("aria-hidden", "true");
        icon.innerHTML = THUMB; // a constant
        box.append(h("button", {
          type: "button", class: value > 0 ? "up" : "down", "aria-label": label, "aria-pressed": String(msg.feedback === value),
          onclick: (e) => {
            if (!this.send({ type: "feedback", message_id: msg.id, value })) return;
            const known = this.messages.get(msg.id);
            if (known) known.msg.feedback = value;
            for (const b of box.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
          },
        }, icon));
      }
      return box;
    }

    withBot() {
      const c = this.convo || {};
      return c.status === "ai" || (c.status === "awaiting_customer" && !c.assigned_agent);
    }

    personHere() {
      const c = this.convo || {};
      return c.status === "waiting" || c.status === "active" || (c.status === "awaiting_customer" && !!c.assigned_agent);
    }

    /* "Did that answer your question?" under the bot's latest answer, while the chat waits for
     * the customer with the bot and nothing came after it: Yes resolves it (then the stars),
     * No offers a person or hands off (the bot's setting). Answered once (`confirm`). */
    askAnswered() {
      const old = this.root.querySelector(".ask");
      const last = [...this.messages.values()].reduce((a, b) => (!a || b.msg.id > a.msg.id ? b : a), null);
      const msg = last && last.msg;
      const show = msg && msg.sender === "ai" && msg.state === "complete" && msg.outcome === "answered" &&
        (msg.extras || {}).ask_answered && msg.confirmed == null &&
        (this.convo || {}).status === "awaiting_customer" && this.withBot() && !this.state.outbox.length;
      if (old && (!show || Number(old.dataset.for) !== msg.id)) old.remove();
      if (!show || (old && old.isConnected)) return;
      const answer = (answered) => {
        if (!this.send({ type: "confirm", message_id: msg.id, answered })) return this.alert("Not connected yet; try again in a moment.");
        msg.confirmed = answered;
        box.remove();
        this.announce(answered ? "Thank you!" : "");
        if (!answered) this.$text.focus();
      };
      const box = h("div", { class: "msg system ask", role: "group", "aria-labelledby": "ask-q", "data-for": msg.id },
        h("div", { class: "bubble", id: "ask-q", text: "Did that answer your question?" }),
        h("div", { class: "yn" },
          h("button", { type: "button", text: "Yes", onclick: () => answer(true) }),
          h("button", { type: "button", text: "No", onclick: () => answer(false) })));
      last.el.after(box);
      this.announce("Did that answer your question? Answer Yes or No below the answer.");
    }

    latestChips() {
      const chips = [...this.$log.querySelectorAll(".chips")];
      chips.forEach((c, i) => { c.hidden = i !== chips.length - 1 || !!c.closest(".msg").nextElementSibling; });
    }

    local(cid) { return this.$log.querySelector(`[data-cid="${CSS.escape(cid)}"]`); }
    status(text) { this.$status.textContent = text || ""; }
    alert(text) { this.$alert.textContent = text || ""; }
    announce(text) { this.$announce.textContent = text || ""; }
    scrollDown() { this.$log.scrollTop = this.$log.scrollHeight; }
  }

  customElements.define("handoff-chat", HandoffChat);

  // The script tag alone is the embed: it mounts one chat for its data-bot.
  const key = SCRIPT && SCRIPT.dataset.bot;
  if (!key) return;
  const mount = () => {
    if (document.querySelector(`handoff-chat[bot="${CSS.escape(key)}"]`)) return;
    document.body.append(h("handoff-chat", { bot: key, host: SCRIPT_ORIGIN }));
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
