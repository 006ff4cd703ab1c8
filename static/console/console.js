/* The agent console's behaviour around htmx: which conversation the socket watches, typing
 * indicators, de-duplicated transcript pushes, and alerts for new high and urgent chats.
 * Everything shown is server-rendered; this only sends frames and reacts to swaps. */
(() => {
  "use strict";
  const TYPING_EVERY_MS = 2500; // at most one "typing" frame per this while typing
  const TYPING_IDLE_MS = 3000; // then "stopped" after this long without a key
  const ALERT_PRIORITIES = new Set(["high", "urgent"]);
  const LIST_ITEMS = "#queue li[data-conversation-id], #mine li[data-conversation-id], #with-bot li[data-conversation-id]";

  let socket = null; // htmx ws extension's socket wrapper, set on open
  let watching = null;

  function send(frame) {
    if (socket) socket.send(JSON.stringify(frame));
  }

  function paneConversation() {
    const pane = document.getElementById("pane");
    const id = pane && Number(pane.dataset.conversationId);
    return id > 0 ? id : null;
  }

  /* --- Watching the open conversation -------------------------------------------------- */
  function watch(force) {
    const id = paneConversation();
    if (!id || (id === watching && !force)) return;
    watching = id;
    send({ type: "watch", conversation_id: id });
  }

  let opened = false;
  document.addEventListener("htmx:wsOpen", (event) => {
    // One wrapper for the page's life: it queues what is sent while reconnecting.
    socket = event.detail.socketWrapper;
    watch(true);
    // Pushes sent before this socket opened (since the page was rendered, or while it was
    // reconnecting) never arrived: every list re-syncs now, and after a reconnect the pane.
    htmx.trigger(document.body, "console-resync");
    if (opened) refreshPane();
    opened = true;
  });

  function refreshPane() {
    const id = paneConversation();
    if (!id) return;
    htmx.ajax("GET", location.pathname, { target: "#pane", swap: "outerHTML" });
  }

  /* --- Transcript pushes: a message already shown is replaced, never doubled ------------- */
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("transcript")) return;
    const incoming = event.detail.fragment.firstElementChild;
    const existing = incoming && incoming.id && document.getElementById(incoming.id);
    if (existing) {
      existing.replaceWith(incoming);
      htmx.process(incoming);
      event.detail.shouldSwap = false;
    }
    const typing = document.getElementById(`typing-${paneConversation()}`);
    if (typing && incoming && incoming.dataset.sender === "user") typing.textContent = "";
  });
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    const target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("transcript")) return;
    const last = target.lastElementChild;
    target.scrollTop = target.scrollHeight; // the transcript scrolls, never the page
    // The agent has it on screen: a customer message read here is not "unread" in the queue.
    const pane = document.getElementById("pane");
    if (last && last.dataset.sender === "user" && pane && pane.dataset.seenUrl) {
      htmx.ajax("POST", pane.dataset.seenUrl, { source: pane, swap: "none" });
      // A new question: the bot's suggestion follows it.
      htmx.trigger(document.body, "console-suggest");
    }
  });

  /* --- The suggested reply: Insert puts the bot's draft in the reply box, to edit and send -- */
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-insert-into]");
    if (!button) return;
    const box = document.getElementById(button.dataset.insertInto);
    const draft = button.parentElement.querySelector(".suggested-text");
    if (!box || !draft) return;
    // What the agent already wrote stays: the draft goes after it.
    const text = draft.textContent.trim();
    box.value = box.value.trim() ? `${box.value.trimEnd()}\n\n${text}` : text;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
    box.dispatchEvent(new Event("input", { bubbles: true })); // the customer sees "typing"
  });

  /* --- What the agent is typing or ticking survives a re-render ------------------------- */
  // The pane is re-rendered by pushes (its status bar, out of band) and by every action's
  // answer; a ticked "the bot should have handled this", a note or a half-written reply would
  // go with it. Fields marked data-keep remember their value here until their own form is
  // sent successfully, and get it back after any swap that re-creates them.
  const kept = new Map();
  function remember(event) {
    const field = event.target;
    if (!field.matches || !field.matches("[data-keep]") || !field.id) return;
    kept.set(field.id, field.type === "checkbox" ? field.checked : field.value);
  }
  document.addEventListener("input", remember);
  document.addEventListener("change", remember);
  function restore(root) {
    if (!root || !root.querySelectorAll) return;
    for (const field of root.querySelectorAll("[data-keep]")) {
      if (!kept.has(field.id)) continue;
      if (field.type === "checkbox") field.checked = kept.get(field.id);
      else field.value = kept.get(field.id);
    }
  }
  document.addEventListener("htmx:beforeSwap", (event) => {
    // A form the server accepted is done with: its fields start empty again.
    const form = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!form || !form.querySelectorAll || event.detail.xhr.status >= 400) return;
    for (const field of form.querySelectorAll("[data-keep]")) kept.delete(field.id);
  });
  document.addEventListener("htmx:afterSwap", () => restore(document));
  document.addEventListener("htmx:oobAfterSwap", (event) => restore(event.detail.target));

  /* --- The open conversation, marked in whichever list holds it ------------------------- */
  // The lists are rendered for everyone (pushed to the whole organization, or fetched by the
  // poll), so which row is open is this page's to mark, after every swap.
  function markOpen() {
    const id = String(paneConversation() || "");
    for (const item of document.querySelectorAll(LIST_ITEMS)) {
      const open = item.dataset.conversationId === id;
      item.classList.toggle("current", open);
      const link = item.querySelector("a");
      if (!link) continue;
      if (open) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  function showLatest() {
    const transcript = document.querySelector("#pane .transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
  }

  /* --- Typing, to the customer -------------------------------------------------------- */
  let lastTyping = 0;
  let idleTimer = null;
  function typing(box, active) {
    const id = Number(box.dataset.typing);
    if (!id) return;
    send({ type: "typing", conversation_id: id, active });
  }
  document.addEventListener("input", (event) => {
    const box = event.target.closest && event.target.closest("textarea[data-typing]");
    if (!box) return;
    const now = Date.now();
    if (now - lastTyping > TYPING_EVERY_MS) { lastTyping = now; typing(box, true); }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { lastTyping = 0; typing(box, false); }, TYPING_IDLE_MS);
  });
  document.addEventListener("submit", (event) => {
    const box = event.target.querySelector && event.target.querySelector("textarea[data-typing]");
    if (!box) return;
    clearTimeout(idleTimer);
    lastTyping = 0;
    typing(box, false);
  });
  // A customer who stopped typing without saying so (closed the tab) stops showing.
  const typingClear = new Map();
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    const el = event.detail.target;
    if (!el || !el.id || !el.id.startsWith("typing-")) return;
    clearTimeout(typingClear.get(el.id));
    if (el.textContent.trim()) {
      typingClear.set(el.id, setTimeout(() => {
        const now = document.getElementById(el.id);
        if (now) now.textContent = "";
      }, 8000));
    }
  });

  /* --- Alerts for new high and urgent chats --------------------------------------------- */
  const alerted = new Set();
  let primed = false;
  let audio = null;

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.35);
    } catch (err) { /* no audio here: the notification and the badge still show */ }
  }

  function announce(item) {
    item.dataset.alerted = "true";
    const detail = { conversationId: Number(item.dataset.conversationId), priority: item.dataset.priority, customer: item.dataset.customer };
    document.dispatchEvent(new CustomEvent("console:alert", { detail }));
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(`${detail.priority === "urgent" ? "Urgent" : "High"} priority chat waiting`, {
        body: `${detail.customer} is waiting for a person.`, tag: `handoff-${detail.conversationId}`,
      });
      const link = item.querySelector("a");
      note.onclick = () => { window.focus(); if (link) link.click(); };
    }
  }

  function scanQueue() {
    const queue = document.getElementById("queue");
    if (!queue) return;
    for (const item of queue.querySelectorAll(".queue-item")) {
      if (!ALERT_PRIORITIES.has(item.dataset.priority)) continue;
      const id = item.dataset.conversationId;
      if (alerted.has(id)) continue;
      alerted.add(id);
      // Chats already waiting when the console opened are on screen: no alarm for them.
      if (primed) announce(item);
    }
    primed = true;
  }

  document.addEventListener("htmx:load", (event) => {
    const elt = event.detail.elt;
    if (elt.id === "queue") {
      scanQueue();
      // The queue changed: the agent's own list may have too (a colleague transferred one).
      htmx.trigger(document.body, "console-mine");
    } else if (elt.id === "pane") {
      watch(false);
      showLatest();
    } else if (elt.classList && elt.classList.contains("suggestion")) {
      showLatest(); // the composer grew: the latest message stays the one in view
    }
    if (["queue", "mine", "with-bot", "pane"].includes(elt.id)) markOpen();
  });
  document.addEventListener("htmx:historyRestore", markOpen);

  function setupNotifications() {
    const button = document.getElementById("notify-enable");
    if (!button || !("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", () => {
      Notification.requestPermission().then(() => { button.hidden = Notification.permission === "default"; });
      beep(); // a click lets the page play sound from now on
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    scanQueue();
    setupNotifications();
    watch(false);
    markOpen();
    showLatest();
  });
})();
