// Cria's chat page: conversations in localStorage, replies streamed from /v1/chat/completions (SSE) and
// rendered with CriaMarkdown (markdown.js). No framework, no build step: the server compiles this file in.
"use strict";

const STORE = { chats: "cria.chats.v1", settings: "cria.settings.v1", key: "cria.apiKey.v1" };
const $ = (id) => document.getElementById(id);

// Server-sent events from a byte stream. The decoder keeps a UTF-8 character split across two network chunks
// until its last byte arrives, so Korean and other multi-byte text is never garbled.
class SseParser {
  constructor() {
    this.decoder = new TextDecoder("utf-8");
    this.buffer = "";
  }

  // The `data` of every event completed by `bytes`.
  push(bytes) {
    this.buffer += this.decoder.decode(bytes, { stream: true });
    return this.drain();
  }

  finish() {
    this.buffer += this.decoder.decode();
    return this.drain();
  }

  drain() {
    const events = [];
    let end;
    while ((end = this.buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""));
      if (data.length) events.push(data.join("\n"));
    }
    return events;
  }
}

// ---- stored state ----

function load(key, fallback) {
  try {
    const text = localStorage.getItem(key);
    return text ? JSON.parse(text) : fallback;
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, typeof value === "string" ? value : JSON.stringify(value));
  } catch (e) {
    notice("Could not save in this browser's storage: " + e.message);
  }
}

const state = {
  chats: load(STORE.chats, { current: null, list: [] }),
  settings: load(STORE.settings, {}),
  apiKey: localStorage.getItem(STORE.key) || "",
  streaming: null, // { controller, chat, message } while a reply streams
};

function saveChats() {
  save(STORE.chats, state.chats);
}

function currentChat() {
  return state.chats.list.find((c) => c.id === state.chats.current) || null;
}

function newChat() {
  const chat = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat",
    messages: [], updated: Date.now() };
  state.chats.list.unshift(chat);
  state.chats.current = chat.id;
  saveChats();
  return chat;
}

// ---- API ----

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.apiKey) h.Authorization = "Bearer " + state.apiKey;
  return h;
}

// The error message of a failed API response (OpenAI's error body, or the status).
async function apiError(res) {
  let message = res.status + " " + res.statusText;
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch { /* not JSON */ }
  if (res.status === 401) askForKey();
  return new Error(message);
}

async function loadModels() {
  const select = $("model");
  try {
    const res = await fetch("/v1/models", { headers: headers() });
    if (!res.ok) throw await apiError(res);
    const { data } = await res.json();
    select.replaceChildren(...data.map((m) => new Option(m.id, m.id)));
    const wanted = state.settings.model;
    if (wanted && data.some((m) => m.id === wanted)) select.value = wanted;
    $("title").textContent = select.value || "Cria";
    notice("");
    return true;
  } catch (e) {
    notice("Models: " + e.message);
    return false;
  }
}

function askForKey() {
  openSidebar();
  $("settings").open = true;
  $("api-key").focus();
  notice("This server needs an API key: enter it in Settings.");
}

// The request body for the chat's messages and the current settings (fields left empty take the server's
// defaults).
function requestBody(chat) {
  const s = readSettings();
  const messages = [];
  if (s.system.trim()) messages.push({ role: "system", content: s.system });
  // Failed replies and the one being written are not part of the conversation; stopped ones are.
  for (const m of chat.messages) {
    if (m.role === "user" || (m.role === "assistant" && m.state !== "error" && m.state !== "streaming")) {
      messages.push({ role: m.role, content: m.content });
    }
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (s.model) body.model = s.model;
  for (const [field, value] of [["temperature", s.temperature], ["top_p", s.top_p],
    ["max_tokens", s.max_tokens], ["seed", s.seed]]) {
    if (value !== "" && Number.isFinite(Number(value))) body[field] = Number(value);
  }
  return body;
}

// Streams one reply into `message`, re-rendering as text arrives.
async function streamReply(chat, message) {
  const controller = new AbortController();
  state.streaming = { controller, chat, message };
  showStreaming(true);
  const started = performance.now();
  let firstAt = null;
  let lastAt = null;
  let chunks = 0;
  let usage = null;
  try {
    const res = await fetch("/v1/chat/completions", { method: "POST", headers: headers(),
      body: JSON.stringify(requestBody(chat)), signal: controller.signal });
    if (!res.ok) throw await apiError(res);
    const reader = res.body.getReader();
    const parser = new SseParser();
    const handle = (data) => {
      if (data === "[DONE]") return;
      const event = JSON.parse(data);
      if (event.error) throw new Error(event.error.message || "the stream failed");
      if (event.usage) usage = event.usage;
      const choice = event.choices && event.choices[0];
      if (!choice) return;
      const text = choice.delta && choice.delta.content;
      if (text) {
        const now = performance.now();
        if (firstAt === null) firstAt = now;
        lastAt = now;
        chunks++;
        message.content += text;
        scheduleRender(message);
      }
      if (choice.finish_reason) message.finish = choice.finish_reason;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value).forEach(handle);
    }
    parser.finish().forEach(handle);
    message.state = "done";
  } catch (e) {
    if (e.name === "AbortError") {
      message.state = "stopped";
    } else {
      message.state = "error";
      message.error = e.message;
      controller.abort(); // closes a stream that ended with an error event
    }
  }
  message.stats = stats(started, firstAt, lastAt, usage ? usage.completion_tokens : chunks, !!usage);
  state.streaming = null;
  chat.updated = Date.now();
  saveChats();
  showStreaming(false);
  renderMessages();
}

// Tokens/s over the generation (first token to last), and the time to the first token.
function stats(started, firstAt, lastAt, tokens, exact) {
  const out = { tokens, exact };
  if (firstAt !== null) out.ttft_ms = Math.round(firstAt - started);
  if (tokens > 1 && lastAt > firstAt) out.tps = (tokens - 1) / ((lastAt - firstAt) / 1000);
  return out;
}

// ---- actions ----

async function send(text) {
  if (state.streaming || !text.trim()) return;
  const chat = currentChat() || newChat();
  chat.messages.push({ role: "user", content: text });
  if (chat.title === "New chat") chat.title = text.trim().slice(0, 48);
  await reply(chat);
}

async function reply(chat) {
  const message = { role: "assistant", content: "", state: "streaming" };
  chat.messages.push(message);
  saveChats();
  renderAll();
  await streamReply(chat, message);
}

// Drops the last reply (or a failed one) and asks again.
async function regenerate() {
  const chat = currentChat();
  if (state.streaming || !chat || !chat.messages.length) return;
  if (chat.messages[chat.messages.length - 1].role === "assistant") chat.messages.pop();
  if (!chat.messages.length) return;
  await reply(chat);
}

function stop() {
  if (state.streaming) state.streaming.controller.abort();
}

function selectChat(id) {
  stop();
  state.chats.current = id;
  saveChats();
  closeSidebar();
  renderAll();
}

function deleteChat(id) {
  if (state.streaming && state.streaming.chat.id === id) stop();
  state.chats.list = state.chats.list.filter((c) => c.id !== id);
  if (state.chats.current === id) state.chats.current = state.chats.list.length ? state.chats.list[0].id : null;
  saveChats();
  renderAll();
}

// ---- settings ----

const SETTING_FIELDS = ["model", "system", "temperature", "top_p", "max_tokens", "seed"];

function readSettings() {
  const s = {};
  for (const f of SETTING_FIELDS) s[f] = $(f).value;
  return s;
}

function restoreSettings() {
  for (const f of SETTING_FIELDS) {
    if (f !== "model" && state.settings[f] !== undefined) $(f).value = state.settings[f];
  }
  $("api-key").value = state.apiKey;
}

function settingsChanged() {
  state.settings = readSettings();
  save(STORE.settings, state.settings);
  $("title").textContent = state.settings.model || "Cria";
}

// ---- rendering ----

let renderQueued = new Set();

function scheduleRender(message) {
  if (renderQueued.size === 0) {
    requestAnimationFrame(() => {
      const queued = renderQueued;
      renderQueued = new Set();
      queued.forEach((message) => updateMessage(message));
    });
  }
  renderQueued.add(message);
}

const messageNodes = new WeakMap();

function renderAll() {
  renderChatList();
  renderMessages();
}

function renderChatList() {
  const list = $("conversations");
  list.replaceChildren(...state.chats.list.map((chat) => {
    const li = document.createElement("li");
    li.className = chat.id === state.chats.current ? "current" : "";
    li.dataset.id = chat.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-chat";
    open.textContent = chat.title;
    open.title = chat.title;
    open.addEventListener("click", () => selectChat(chat.id));
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "×";
    del.setAttribute("aria-label", "Delete " + chat.title);
    del.addEventListener("click", () => deleteChat(chat.id));
    li.append(open, del);
    return li;
  }));
}

function renderMessages() {
  const chat = currentChat();
  const box = $("messages");
  const nodes = chat ? chat.messages.map(messageNode) : [];
  if (!nodes.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "Send a message to start.";
    nodes.push(empty);
  }
  box.replaceChildren(...nodes);
  const last = chat && chat.messages[chat.messages.length - 1];
  $("regenerate").hidden = !!state.streaming || !last;
  box.scrollTop = box.scrollHeight;
}

function messageNode(message) {
  let node = messageNodes.get(message);
  if (!node) {
    node = document.createElement("article");
    node.className = "msg";
    node.dataset.role = message.role;
    const body = document.createElement("div");
    body.className = "body";
    const meta = document.createElement("div");
    meta.className = "meta";
    node.append(body, meta);
    messageNodes.set(message, node);
  }
  updateMessage(message, node);
  return node;
}

function updateMessage(message, node = messageNodes.get(message)) {
  if (!node) return;
  const [body, meta] = node.children;
  node.dataset.state = message.state || "done";
  if (message.role === "user") {
    body.textContent = message.content; // the user's own words, shown as typed
  } else {
    body.replaceChildren(CriaMarkdown.render(message.content));
  }
  meta.textContent = metaText(message);
  const box = $("messages");
  if (state.streaming && box.scrollHeight - box.scrollTop - box.clientHeight < 120) {
    box.scrollTop = box.scrollHeight;
  }
}

function metaText(message) {
  if (message.role !== "assistant") return "";
  if (message.state === "streaming") return "…";
  const parts = [];
  if (message.state === "error") parts.push("Error: " + message.error);
  if (message.state === "stopped") parts.push("stopped");
  const s = message.stats;
  if (s && s.tokens) {
    parts.push((s.exact ? "" : "≈") + s.tokens + " tokens");
    if (s.tps) parts.push(s.tps.toFixed(1) + " tok/s");
    if (s.ttft_ms !== undefined) parts.push("first token " + s.ttft_ms + " ms");
  }
  if (message.finish === "length") parts.push("cut at max tokens");
  return parts.join(" · ");
}

function showStreaming(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  $("regenerate").hidden = true;
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function openSidebar() {
  document.body.classList.add("sidebar-open");
}

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
}

// Copies a code block's text (the button is drawn by markdown.js).
function copyCode(button) {
  const code = button.closest(".code-block").querySelector("code").textContent;
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(code).then(done, () => {});
  } else {
    const area = document.createElement("textarea");
    area.value = code;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }
}

// ---- start ----

async function waitForHealth() {
  for (;;) {
    try {
      const res = await fetch("/health");
      if (res.ok) {
        $("status").textContent = "";
        return;
      }
      const body = await res.json();
      $("status").textContent = body.status || "unavailable";
    } catch {
      $("status").textContent = "server unreachable";
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function wire() {
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("input");
    const text = input.value;
    if (!text.trim() || state.streaming) return;
    input.value = "";
    send(text);
  });
  $("input").addEventListener("keydown", (e) => {
    // Enter sends, except while an input method (Korean, Japanese, Chinese) is still composing a character.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", stop);
  $("regenerate").addEventListener("click", regenerate);
  $("new-chat").addEventListener("click", () => {
    stop();
    const chat = currentChat();
    if (!chat || chat.messages.length) newChat(); // an empty conversation is reused
    closeSidebar();
    renderAll();
    $("input").focus();
  });
  $("open-sidebar").addEventListener("click", openSidebar);
  $("close-sidebar").addEventListener("click", closeSidebar);
  for (const f of SETTING_FIELDS) $(f).addEventListener("change", settingsChanged);
  $("api-key").addEventListener("change", () => {
    state.apiKey = $("api-key").value.trim();
    save(STORE.key, state.apiKey);
    loadModels();
  });
  $("messages").addEventListener("click", (e) => {
    if (e.target.matches(".code-block .copy")) copyCode(e.target);
  });
}

async function start() {
  wire();
  restoreSettings();
  for (const m of state.chats.list.flatMap((c) => c.messages)) {
    if (m.state === "streaming") m.state = "stopped"; // the page closed mid-reply
  }
  renderAll();
  await waitForHealth();
  if (await loadModels()) settingsChanged();
}

window.CriaApp = { SseParser, state };
start();
