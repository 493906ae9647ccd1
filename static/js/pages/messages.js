// Messages: the conversation list (unread badges, last message), the open thread (day
// separators, grouped consecutive messages, replies, reactions, edit and delete, infinite
// scroll up), the composer (Enter sends, Shift+Enter starts a line) and the typing line,
// kept live by the /messages socket. Every conversation event carries its `seq`: an event
// already seen is ignored, a gap is filled with `sync`, so a reconnect has no holes or
// doubles.

import { api, h, icon, iconButton, openDialog, registerPage, showError, toast } from "../api.js";

const root = document.getElementById("chat");
const me = Number(root.dataset.userId);
const list = document.getElementById("conversations");
const thread = document.getElementById("messages");
const title = document.getElementById("thread-title");
const topic = document.getElementById("thread-topic");
const typingLine = document.getElementById("typing");
const composer = document.getElementById("composer");
const input = document.getElementById("composer-input");
const replying = document.getElementById("replying");
const replyingText = document.getElementById("replying-text");

const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];
const GROUP_WINDOW_MS = 5 * 60 * 1000;

const state = {
  conversations: new Map(), // id -> conversation (with unread_count, last_message, peer)
  lastSeq: new Map(),       // id -> the last seq applied
  current: null,            // the open conversation's id
  messages: [],             // the open thread, oldest first
  nextCursor: null,         // older page, or null at the start
  loadingOlder: false,
  replyTo: null,
  typing: new Map(),        // user id -> {username, timer}
  filter: "",
};

const socket = window.trackeepMessages;

// ---------------------------------------------------------------------------------- names

function conversationName(c) {
  if (c.type === "general") return "#general";
  if (c.type === "self") return "Notes to self";
  if (c.type === "dm") return c.peer ? (c.peer.full_name || c.peer.username) : "Direct message";
  return c.name;
}

function senderName(message) {
  if (!message.sender) return "Someone";
  return message.sender.id === me ? "You" : (message.sender.full_name || message.sender.username);
}

function preview(message) {
  if (!message) return "No messages yet";
  if (message.deleted) return "Message deleted";
  const text = message.body || (message.attachments.length ? "📎 attachment" : "");
  return `${message.sender_id === me ? "You: " : ""}${text}`.slice(0, 80);
}

// --------------------------------------------------------------------- conversation list

function renderList() {
  const rows = [...state.conversations.values()]
    .filter((c) => !state.filter || conversationName(c).toLowerCase().includes(state.filter))
    .sort((a, b) => (b.last_message?.id ?? 0) - (a.last_message?.id ?? 0) || b.id - a.id);
  list.replaceChildren(...rows.map((c) => h("li", {},
    h("a", { href: `#c${c.id}`, class: "conversation", dataset: { id: c.id },
      "aria-current": c.id === state.current ? "true" : false },
    h("span", { class: "avatar", "aria-hidden": "true" },
      conversationName(c).replace("#", "").slice(0, 1).toUpperCase()),
    h("span", { class: "conversation-text" },
      h("strong", {}, conversationName(c)),
      h("span", { class: "muted small last" }, preview(c.last_message))),
    c.unread_count ? h("span", { class: "unread", "aria-label": `${c.unread_count} unread` },
      String(c.unread_count)) : null))));
}

async function loadConversations() {
  const data = await api.get("/messages/conversations");
  state.conversations = new Map(data.conversations.map((c) => [c.id, c]));
  for (const c of data.conversations) {
    if (!state.lastSeq.has(c.id)) state.lastSeq.set(c.id, c.last_seq);
  }
  renderList();
}

// ------------------------------------------------------------------------------- thread

function dayOf(iso) {
  return new Date(iso).toLocaleDateString(undefined,
    { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function timeOf(iso) {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function html(markup) {
  // body_html is rendered and sanitized by the server (the notes' sanitizer).
  const node = h("div", { class: "body markdown" });
  node.innerHTML = markup;
  return node;
}

function messageNode(message, grouped) {
  const own = message.sender_id === me;
  const replied = message.reply_to ? state.messages.find((m) => m.id === message.reply_to) : null;
  const actions = h("div", { class: "msg-actions" },
    message.deleted ? null : iconButton("reply", "Reply", () => startReply(message)),
    message.deleted ? null : iconButton("smile", "React", (event) => pickReaction(event, message)),
    own && !message.deleted ? iconButton("edit", "Edit", () => editMessage(message)) : null,
    own && !message.deleted ? iconButton("trash", "Delete", () => deleteMessage(message), "danger") : null);
  return h("article", { class: `msg${grouped ? " grouped" : ""}${own ? " own" : ""}${message.deleted ? " deleted" : ""}`,
    dataset: { id: message.id } },
  grouped ? null : h("header", {}, h("strong", {}, senderName(message)),
    h("time", { class: "muted small", datetime: message.created_at }, timeOf(message.created_at))),
  message.reply_to ? h("div", { class: "reply-quote muted small" }, icon("reply"),
    replied ? `${senderName(replied)}: ${preview({ ...replied, sender_id: null })}` : "an earlier message") : null,
  message.deleted ? h("p", { class: "muted small tombstone" }, "This message was deleted.")
    : html(message.body_html),
  message.attachments.length ? h("div", { class: "cards" }, message.attachments.map((card) =>
    h("span", { class: "card-chip" }, icon(card.type === "bookmark" ? "bookmark" : card.type), card.title)))
    : null,
  message.edited && !message.deleted ? h("span", { class: "muted small edited", title: message.edited_at }, "(edited)") : null,
  message.reactions.length ? h("div", { class: "reactions" }, message.reactions.map((r) =>
    h("button", { type: "button", class: `reaction${r.user_ids.includes(me) ? " mine" : ""}`,
      "aria-pressed": String(r.user_ids.includes(me)), title: `${r.count}`,
      onclick: () => toggleReaction(message, r.emoji, r.user_ids.includes(me)) },
    `${r.emoji} ${r.count}`))) : null,
  actions);
}

function renderThread({ keepBottom = true, anchor = null } = {}) {
  const nodes = [];
  let previous = null;
  for (const message of state.messages) {
    const day = dayOf(message.created_at);
    if (!previous || dayOf(previous.created_at) !== day) {
      nodes.push(h("div", { class: "day", role: "separator" }, h("span", {}, day)));
      previous = null;
    }
    const grouped = previous && previous.sender_id === message.sender_id && !message.reply_to &&
      new Date(message.created_at) - new Date(previous.created_at) < GROUP_WINDOW_MS;
    nodes.push(messageNode(message, grouped));
    previous = message;
  }
  if (!state.messages.length) nodes.push(h("p", { class: "muted empty" }, "No messages yet: say hello."));
  const fromBottom = thread.scrollHeight - thread.scrollTop;
  thread.replaceChildren(...nodes);
  if (anchor) thread.scrollTop = thread.scrollHeight - fromBottom;
  else if (keepBottom) thread.scrollTop = thread.scrollHeight;
}

function nearBottom() {
  return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 120;
}

async function openConversation(id) {
  const c = state.conversations.get(id);
  if (!c) return;
  state.current = id;
  state.replyTo = null;
  replying.hidden = true;
  state.typing.clear();
  showTyping();
  title.textContent = conversationName(c);
  topic.textContent = c.topic || (c.type === "general" ? "Everyone on this Trackeep" : "");
  composer.hidden = false;
  const page = await api.get(`/messages/conversations/${id}/messages`, { limit: 50 });
  if (state.current !== id) return;
  state.messages = page.messages.reverse();
  state.nextCursor = page.next_cursor;
  renderThread();
  renderList();
  markRead();
  input.focus();
  fillUp().catch(showError);
}

/** Load older pages until the thread can scroll (scrolling up is what loads the rest). */
async function fillUp() {
  while (state.nextCursor && thread.scrollHeight <= thread.clientHeight && !state.loadingOlder) {
    await loadOlder();
  }
}

async function loadOlder() {
  if (state.loadingOlder || !state.nextCursor || !state.current) return;
  state.loadingOlder = true;
  const id = state.current;
  try {
    const page = await api.get(`/messages/conversations/${id}/messages`,
      { limit: 50, cursor: state.nextCursor });
    if (state.current !== id) return;
    state.messages = [...page.messages.reverse(), ...state.messages];
    state.nextCursor = page.next_cursor;
    renderThread({ anchor: true });
  } finally {
    state.loadingOlder = false;
  }
}

async function markRead() {
  const c = state.conversations.get(state.current);
  if (!c || document.hidden) return;
  const last = state.messages[state.messages.length - 1];
  if (!last || (c.unread_count === 0 && c.membership?.last_read_message_id >= last.id)) return;
  c.unread_count = 0;
  if (c.membership) c.membership.last_read_message_id = last.id;
  renderList();
  await api.post(`/messages/conversations/${c.id}/read`, { message_id: last.id });
}

// ------------------------------------------------------------------------------ actions

function startReply(message) {
  state.replyTo = message;
  replyingText.textContent = `Replying to ${senderName(message)}: ${preview({ ...message, sender_id: null })}`;
  replying.hidden = false;
  input.focus();
}

document.getElementById("cancel-reply").addEventListener("click", () => {
  state.replyTo = null;
  replying.hidden = true;
});

function pickReaction(event, message) {
  const dialog = openDialog("React", h("div", { class: "emoji-picker" }, REACTIONS.map((emoji) =>
    h("button", { type: "button", class: "secondary", onclick: () => {
      dialog.close();
      toggleReaction(message, emoji, false);
    } }, emoji))));
}

async function toggleReaction(message, emoji, mine) {
  try {
    if (mine) await api.delete(`/messages/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`);
    else await api.post(`/messages/messages/${message.id}/reactions`, { emoji });
  } catch (error) {
    showError(error);
  }
}

function editMessage(message) {
  const area = h("textarea", { rows: 4, maxlength: 10000 });
  area.value = message.body;
  const dialog = openDialog("Edit the message", area, h("div", { class: "form-actions" },
    h("button", { type: "button", onclick: async () => {
      try {
        await api.patch(`/messages/messages/${message.id}`, { body: area.value });
        dialog.close();
      } catch (error) {
        showError(error);
      }
    } }, "Save")));
  area.focus();
}

async function deleteMessage(message) {
  try {
    await api.delete(`/messages/messages/${message.id}`);
  } catch (error) {
    showError(error);
  }
}

async function send() {
  const body = input.value.trim();
  if (!body || !state.current) return;
  const payload = { body };
  if (state.replyTo) payload.reply_to = state.replyTo.id;
  input.value = "";
  state.replyTo = null;
  replying.hidden = true;
  socket?.emit("typing", { conversation_id: state.current, typing: false });
  lastTypingSent = 0;
  try {
    await api.post(`/messages/conversations/${state.current}/messages`, payload);
  } catch (error) {
    input.value = body;
    showError(error);
  }
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});

let lastTypingSent = 0;
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
input.addEventListener("input", () => {
  const now = Date.now();
  if (socket && state.current && input.value && now - lastTypingSent > 2000) {
    lastTypingSent = now;
    socket.emit("typing", { conversation_id: state.current, typing: true });
  }
});

thread.addEventListener("scroll", () => {
  if (thread.scrollTop < 80) loadOlder().catch(showError);
});

async function newConversation() {
  const { users } = await api.get("/messages/users");
  const people = h("select", { multiple: true, size: Math.min(8, Math.max(3, users.length)),
    "aria-label": "People" }, users.map((u) => h("option", { value: u.id },
    u.full_name ? `${u.full_name} (@${u.username})` : `@${u.username}`)));
  const name = h("input", { type: "text", placeholder: "Group name (for more than one person)",
    maxlength: 100, "aria-label": "Group name" });
  const dialog = openDialog("New conversation",
    h("p", { class: "muted small" }, "Pick one person for a direct conversation, several for a group, nobody for notes to self."),
    people, name, h("div", { class: "form-actions" }, h("button", { type: "button", onclick: async () => {
      const ids = [...people.selectedOptions].map((o) => Number(o.value));
      const body = ids.length > 1 ? { type: "group", name: name.value.trim(), user_ids: ids }
        : ids.length === 1 ? { type: "dm", user_ids: ids } : { type: "self" };
      try {
        const { conversation } = await api.post("/messages/conversations", body);
        dialog.close();
        await loadConversations();
        location.hash = `c${conversation.id}`;
      } catch (error) {
        showError(error);
      }
    } }, "Open")));
}

document.getElementById("new-conversation").addEventListener("click",
  () => newConversation().catch(showError));

// --------------------------------------------------------------------------------- live

function showTyping() {
  const names = [...state.typing.values()].map((t) => t.username);
  typingLine.textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function replaceMessage(message) {
  const at = state.messages.findIndex((m) => m.id === message.id);
  if (at >= 0) state.messages[at] = message;
}

function apply(event) {
  const id = event.conversation_id;
  const c = state.conversations.get(id);
  const open = id === state.current;
  const data = event.data;
  if (event.type === "typing.started" || event.type === "typing.stopped") {
    if (!open || data.user_id === me) return;
    clearTimeout(state.typing.get(data.user_id)?.timer);
    if (event.type === "typing.started") {
      const timer = setTimeout(() => { state.typing.delete(data.user_id); showTyping(); },
        (data.expires_in || 5) * 1000);
      state.typing.set(data.user_id, { username: data.username, timer });
    } else {
      state.typing.delete(data.user_id);
    }
    showTyping();
    return;
  }
  if (event.type === "message.created") {
    if (c) {
      c.last_message = data;
      if (data.sender_id !== me && !(open && !document.hidden)) c.unread_count += 1;
    } else {
      loadConversations().catch(showError);
    }
    if (open) {
      const bottom = nearBottom() || data.sender_id === me;
      state.typing.delete(data.sender_id);
      showTyping();
      state.messages.push(data);
      renderThread({ keepBottom: bottom });
      markRead().catch(showError);
    }
    renderList();
  } else if (event.type === "message.updated" || event.type === "message.deleted") {
    if (open) { replaceMessage(data); renderThread({ keepBottom: false }); }
    if (c?.last_message?.id === data.id) { c.last_message = data; renderList(); }
  } else if (event.type === "reaction.added" || event.type === "reaction.removed") {
    if (open) { replaceMessage(data.message); renderThread({ keepBottom: false }); }
  } else if (event.type === "read.updated") {
    if (c && data.user_id === me) { c.unread_count = 0; renderList(); }
  } else if (event.type === "conversation.updated") {
    if (data.action === "member_removed" && data.user_id === me) {
      state.conversations.delete(id);
      if (open) {
        state.current = null;
        composer.hidden = true;
        title.textContent = "You left this conversation";
        thread.replaceChildren();
      }
      renderList();
    } else {
      loadConversations().then(() => {
        if (open) title.textContent = conversationName(state.conversations.get(id));
      }).catch(showError);
    }
  }
}

/** Apply a numbered event once, in order; a gap asks the server for what is missing. */
function receive(event) {
  if (event.seq === null || event.seq === undefined) {
    apply(event);
    return;
  }
  const id = event.conversation_id;
  const last = state.lastSeq.get(id);
  if (last === undefined) { // a conversation this page did not know: read it afresh
    state.lastSeq.set(id, event.seq);
    loadConversations().then(() => state.current === id && openConversation(id)).catch(showError);
  } else if (event.seq > last + 1) {
    sync();
  } else if (event.seq === last + 1) {
    state.lastSeq.set(id, event.seq);
    apply(event);
  }
}

let syncing = false;
let again = false; // a gap seen while a sync was on its way: ask once more after it
function sync() {
  if (!socket) return;
  if (syncing) {
    again = true;
    return;
  }
  syncing = true;
  again = false;
  const conversations = Object.fromEntries(state.lastSeq);
  socket.emit("sync", { conversations }, (answer) => {
    syncing = false;
    let more = false;
    for (const [id, events] of Object.entries(answer.events || {})) {
      for (const event of events) receive(event);
      if (answer.more?.[id]) more = true;
    }
    if (more || again) sync();
  });
}

if (socket) {
  socket.on("event", receive);
  socket.on("connect", () => { if (state.lastSeq.size) sync(); });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) markRead().catch(showError);
});

// -------------------------------------------------------------------------------- start

function fromHash() {
  const match = /^#c(\d+)$/.exec(location.hash);
  if (match) openConversation(Number(match[1])).catch(showError);
}

window.addEventListener("hashchange", fromHash);
registerPage({
  onNew: () => newConversation().catch(showError),
  onSearch: (text) => { state.filter = text.toLowerCase(); renderList(); },
});

loadConversations().then(() => {
  if (location.hash) fromHash();
  else {
    const first = [...state.conversations.values()].sort((a, b) =>
      (b.last_message?.id ?? 0) - (a.last_message?.id ?? 0))[0];
    if (first) location.hash = `c${first.id}`;
  }
  if (socket?.connected) sync();
}).catch((error) => {
  showError(error);
  toast("The conversations could not be loaded.", { kind: "error" });
});
