/*
 * Concierge web chat client: plain JavaScript, no framework, no build step.
 *
 * Keeps the visitor's session id in localStorage (the same id is the same customer), sends
 * each message to POST api/chat/messages and shows the bot's replies, with quick-reply chips
 * for their buttons. Text is always rendered with textContent, never as HTML.
 */
"use strict";

(function () {
  const LABELS = {
    en: {
      title: "{business} · Chat",
      subtitle: "Your assistant · usually replies at once",
      intro: "Say hello to start the conversation.",
      input: "Your message",
      placeholder: "Type a message…",
      send: "Send",
      typing: "The assistant is typing…",
      you: "You said:",
      bot: "Assistant said:",
      choices: "Suggested replies",
      conversation: "Conversation",
      notSent: "Not sent",
      failed: "Your message could not be sent. Check your connection, then press Send to try again.",
      unavailable: "The assistant is briefly unavailable. Please press Send to try again.",
      rejected: "The message was not accepted: ",
    },
    zh: {
      title: "{business} · 在线咨询",
      subtitle: "您的专属助理 · 通常即时回复",
      intro: "打个招呼，开始对话吧。",
      input: "您的消息",
      placeholder: "请输入消息…",
      send: "发送",
      typing: "助理正在输入…",
      you: "您说：",
      bot: "助理说：",
      choices: "快捷回复",
      conversation: "对话记录",
      notSent: "未发送",
      failed: "消息发送失败。请检查网络连接，然后点击“发送”重试。",
      unavailable: "助理暂时无法回复，请稍后点击“发送”重试。",
      rejected: "消息未被接受：",
    },
  };
  const SESSION_KEY = "concierge.session";
  const INBOX_KEY = "concierge.inbox";
  const INBOX_POLL_MS = 4000;
  const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
  const TIMEOUT_MS = 30000;
  const MAX_INPUT_HEIGHT_PX = 160;

  const language = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  const labels = LABELS[language];

  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const announcer = $("announcer");
  const typing = $("typing");
  const notice = $("notice");
  const form = $("composer");
  const input = $("input");
  const sendButton = $("send");

  /** A random id: crypto.randomUUID needs a secure context, which a LAN http address is not. */
  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    const bytes = new Uint8Array(16);
    if (window.crypto && typeof window.crypto.getRandomValues === "function") {
      window.crypto.getRandomValues(bytes);
    } else {
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join("-");
  }

  /** The visitor's id; stored, so a visitor who comes back is the same customer. */
  function sessionId() {
    try {
      let id = window.localStorage.getItem(SESSION_KEY);
      if (!id || !ID_PATTERN.test(id)) {
        id = newId();
        window.localStorage.setItem(SESSION_KEY, id);
      }
      return id;
    } catch (error) {
      return newId(); // storage is blocked (private mode): the visitor is known for this visit only
    }
  }

  const session = sessionId();
  let busy = false;
  // A message whose request failed: resending the same text reuses its id, so if the server did
  // handle it after all, the retry returns the first replies instead of answering twice.
  let pending = null;

  function applyLabels() {
    const meta = document.querySelector('meta[name="concierge-business"]');
    const raw = meta ? meta.getAttribute("content") : "";
    const business = raw && !raw.includes("{{") ? raw : "Concierge";
    document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
    document.title = labels.title.replace("{business}", business);
    $("chat-title").textContent = business;
    $("avatar").textContent = Array.from(business)[0] || "C";
    $("chat-subtitle").textContent = labels.subtitle;
    $("intro").textContent = labels.intro;
    messages.setAttribute("aria-label", labels.conversation);
    $("input-label").textContent = labels.input;
    $("typing-label").textContent = labels.typing;
    input.placeholder = labels.placeholder;
    sendButton.textContent = labels.send;
  }

  function scrollToEnd() {
    messages.scrollTop = messages.scrollHeight;
  }

  function announce(text) {
    const line = document.createElement("p");
    line.textContent = text;
    announcer.appendChild(line);
    while (announcer.childElementCount > 3) announcer.firstElementChild.remove();
  }

  function addMessage(role, text, buttons) {
    const intro = $("intro");
    if (intro) intro.remove();
    const item = document.createElement("div");
    item.className = "message " + role;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = (role === "user" ? labels.you : labels.bot) + " ";
    const bubble = document.createElement("p");
    bubble.className = "bubble";
    bubble.appendChild(who);
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text; // never innerHTML; CSS keeps the newlines
    bubble.appendChild(body);
    item.appendChild(bubble);
    if (buttons && buttons.length) {
      const chips = document.createElement("div");
      chips.className = "chips";
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", labels.choices);
      for (const label of buttons) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = label;
        chip.addEventListener("click", () => send(label, false));
        chips.appendChild(chip);
      }
      item.appendChild(chips);
    }
    messages.appendChild(item);
    if (role === "bot") announce(text);
    scrollToEnd();
    return item;
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    typing.hidden = !value;
    messages.setAttribute("aria-busy", String(value));
    for (const chip of messages.querySelectorAll(".chip")) chip.disabled = value;
    scrollToEnd(); // the typing line and the notice change the room the messages have
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  function hideNotice() {
    notice.hidden = true;
    notice.textContent = "";
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, MAX_INPUT_HEIGHT_PX) + "px";
  }

  async function post(body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch("api/chat/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (error) {
      throw new Error(labels.failed);
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.ok && data && Array.isArray(data.replies)) return data;
    if (response.status === 503) throw new Error(labels.unavailable);
    if (response.status === 422 && data && typeof data.error === "string") {
      throw new Error(labels.rejected + data.error);
    }
    throw new Error(labels.failed);
  }

  /** Send `text`; `typed` says it came from the input box (a chip leaves the draft alone). */
  async function send(text, typed) {
    if (busy || !text.trim()) return;
    hideNotice();
    const messageId = pending && pending.text === text ? pending.messageId : newId();
    if (pending) pending.item.remove();
    pending = null;
    const item = addMessage("user", text);
    if (typed) {
      input.value = "";
      autosize();
    }
    setBusy(true);
    try {
      const answer = await post({ session, text, language, message_id: messageId });
      for (const old of messages.querySelectorAll(".chips")) old.remove();
      for (const reply of answer.replies) {
        addMessage("bot", String(reply.text), Array.isArray(reply.buttons) ? reply.buttons : []);
      }
    } catch (error) {
      item.classList.add("failed");
      const mark = document.createElement("span");
      mark.className = "status";
      mark.textContent = labels.notSent;
      item.appendChild(mark);
      pending = { text, messageId, item };
      // Nothing typed is lost: the text goes back into the box, ahead of any new draft.
      if (typed) input.value = input.value ? text + "\n" + input.value : text;
      autosize();
      showNotice(error instanceof Error ? error.message : labels.failed);
    } finally {
      setBusy(false);
      // On touch screens a tapped chip should not pop the keyboard up.
      if (typed || !window.matchMedia("(pointer: coarse)").matches) input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value, true);
  });
  input.addEventListener("keydown", (event) => {
    // Enter while an input method is composing (Chinese pinyin) picks a word; it must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send(input.value, true);
    }
  });
  input.addEventListener("input", autosize);

  // Messages the bot sends on its own (a staff member's answer, a reminder) wait in the inbox;
  // the page asks for new ones every few seconds and remembers the last one it showed.
  let inboxAfter = 0;
  try {
    inboxAfter = Number(window.localStorage.getItem(INBOX_KEY)) || 0;
  } catch (error) {
    inboxAfter = 0;
  }

  async function pollInbox() {
    if (document.hidden || busy) return;
    let data = null;
    try {
      const url = "api/chat/inbox?session=" + encodeURIComponent(session) + "&after=" + inboxAfter;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      data = await response.json();
    } catch (error) {
      return; // offline for a moment: the next poll catches up
    }
    if (!data || !Array.isArray(data.messages)) return;
    for (const message of data.messages) {
      if (typeof message.id !== "number" || message.id <= inboxAfter) continue;
      const buttons = Array.isArray(message.buttons) ? message.buttons : [];
      if (buttons.length) for (const old of messages.querySelectorAll(".chips")) old.remove();
      addMessage("bot", String(message.text), buttons);
      inboxAfter = message.id;
    }
    try {
      window.localStorage.setItem(INBOX_KEY, String(inboxAfter));
    } catch (error) {
      // storage blocked: the visitor may see these again after a reload, which is harmless
    }
  }

  applyLabels();
  input.focus();
  pollInbox();
  setInterval(pollInbox, INBOX_POLL_MS);
  document.addEventListener("visibilitychange", pollInbox);
})();
