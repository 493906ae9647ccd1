// The shell around every signed-in page: the sidebar on phones, the theme switch, the help
// overlay, keyboard shortcuts, the search box, and live updates over Socket.IO.

import { api, h, icon, openDialog, page, showError, timeAgo, toast } from "./api.js";
import "./timer.js";

const shell = document.getElementById("shell");

// ---------------------------------------------------------------------- sidebar on a phone

const menuButton = document.querySelector(".menu-toggle");

function setNav(open) {
  shell.classList.toggle("nav-open", open);
  menuButton.setAttribute("aria-expanded", String(open));
  if (open) document.querySelector("#sidebar .nav a")?.focus();
}

menuButton?.addEventListener("click", () => setNav(!shell.classList.contains("nav-open")));
document.querySelector('[data-action="close-nav"]')?.addEventListener("click", () => setNav(false));

// ------------------------------------------------------------------------------------ theme

const THEMES = ["light", "dark", "system"];
const THEME_ICONS = { light: "sun", dark: "moon", system: "monitor" };
const themeButton = document.getElementById("theme-toggle");

function showTheme(theme) {
  document.documentElement.dataset.theme = theme;
  themeButton.dataset.themeValue = theme;
  themeButton.querySelector("use").setAttribute("href", `#i-${THEME_ICONS[theme]}`);
  const next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  const label = `Theme: ${theme} (switch to ${next})`;
  themeButton.setAttribute("aria-label", label);
  themeButton.title = label;
}

themeButton?.addEventListener("click", async () => {
  const previous = themeButton.dataset.themeValue;
  const theme = THEMES[(THEMES.indexOf(previous) + 1) % THEMES.length];
  showTheme(theme);
  try {
    await api.patch("/auth/profile", { theme });
    toast(`Theme: ${theme}`);
  } catch (error) {
    showTheme(previous);
    showError(error);
  }
});
if (themeButton) showTheme(themeButton.dataset.themeValue || "system");

// ------------------------------------------------------------------------------ help dialog

const help = document.getElementById("help");
document.querySelector('[data-action="help"]')?.addEventListener("click", () => help.showModal());
help?.querySelector("[data-close]")?.addEventListener("click", () => help.close());

// ------------------------------------------------------------------------------- search box

const searchForm = document.querySelector("form.search");
const searchInput = document.getElementById("global-search");
let searchTimer;

// Quick results: on every page but /search (which shows them in full), the box answers as
// you type with the best few matches of the whole collection, from the search index: all
// types, or on a list page that page's type (its own rows are filtered in place too).
const LIST_TYPES = { "/bookmarks": "bookmark", "/tasks": "task", "/notes": "note",
  "/files": "file" };
const QUICK_LIMIT = 6;
const onSearchPage = location.pathname === "/search";
const quick = h("div", { class: "quick-results", id: "quick-results", hidden: true });
let quickRun = 0;

if (searchInput && !onSearchPage) {
  searchForm.append(quick);
  searchInput.setAttribute("aria-controls", "quick-results");
  searchInput.setAttribute("aria-expanded", "false");
}

function hideQuick() {
  quickRun += 1;  // an answer still on its way is dropped
  quick.hidden = true;
  searchInput?.setAttribute("aria-expanded", "false");
}

function searchQuery(text) {
  const type = LIST_TYPES[location.pathname];
  return type ? `${text} type:${type}` : text;
}

async function showQuick(text) {
  if (onSearchPage || !searchInput) return;
  if (!text) { hideQuick(); return; }
  const run = ++quickRun;
  let answer;
  try {
    answer = await api.get("/search", { q: searchQuery(text), limit: QUICK_LIMIT });
  } catch {
    if (run === quickRun) hideQuick();  // a query still being typed ("tag:") is no error
    return;
  }
  if (run !== quickRun) return;  // a later keystroke's answer wins
  const all = `/search?q=${encodeURIComponent(searchQuery(text))}`;
  const rows = (answer.results || []).map((result) => {
    const title = h("span", { class: "quick-title" });
    title.innerHTML = result.title_html || "";  // escaped by the server, matches in <mark>
    if (!title.textContent.trim()) title.textContent = result.url || "(untitled)";
    return h("li", {}, h("a", { href: result.link, class: "quick-result",
      target: result.type === "bookmark" ? "_blank" : null,
      rel: result.type === "bookmark" ? "noopener" : null },
    h("span", { class: `item-icon t-${result.type}` }, icon(result.type)), title));
  });
  quick.replaceChildren(
    rows.length ? h("ul", {}, rows)
      : h("p", { class: "muted small quick-none" }, "Nothing matches yet."),
    h("a", { class: "quick-all", href: all },
      `See all ${answer.total ?? rows.length} result${answer.total === 1 ? "" : "s"} →`));
  quick.hidden = false;
  searchInput.setAttribute("aria-expanded", "true");
}

searchInput?.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const text = searchInput.value.trim();
    page.onSearch?.(text);
    showQuick(text);
  }, 120);
});
searchForm?.addEventListener("submit", (event) => {
  // Without a search page, the box filters the list in place; Enter does nothing more.
  if (searchForm.hasAttribute("data-local-only")) {
    event.preventDefault();
    page.onSearch?.(searchInput.value.trim());
  }
});
searchInput?.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    searchInput.value = "";
    page.onSearch?.("");
    hideQuick();
    searchInput.blur();
  } else if (event.key === "ArrowDown" && !quick.hidden) {
    event.preventDefault();
    quick.querySelector("a")?.focus();
  }
});
quick.addEventListener("keydown", (event) => {
  const links = [...quick.querySelectorAll("a")];
  const at = links.indexOf(document.activeElement);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const next = at + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0) searchInput.focus();
    else links[Math.min(next, links.length - 1)].focus();
  } else if (event.key === "Escape") {
    hideQuick();
    searchInput.focus();
  }
});
document.addEventListener("click", (event) => {
  if (!quick.hidden && !searchForm.contains(event.target)) hideQuick();
});

// ------------------------------------------------------------------------ keyboard shortcuts

const GO_TO = { d: "/", b: "/bookmarks", t: "/tasks", n: "/notes", f: "/files", i: "/time" };
let awaitingGo = false;

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  if (document.querySelector("dialog[open]")) return;
  if (awaitingGo) {
    awaitingGo = false;
    if (GO_TO[event.key]) {
      event.preventDefault();
      location.href = GO_TO[event.key];
    }
    return;
  }
  if (event.key === "/") {
    event.preventDefault();
    searchInput?.focus();
    searchInput?.select();
  } else if (event.key === "?") {
    event.preventDefault();
    help.showModal();
  } else if (event.key === "n" && page.onNew) {
    event.preventDefault();
    page.onNew();
  } else if (event.key === "g") {
    awaitingGo = true;
    setTimeout(() => { awaitingGo = false; }, 1500);
  } else if (event.key === "Escape") {
    setNav(false);
  }
});

// ----------------------------------------------------------------------------- live updates

const live = document.getElementById("live-status");

function connectLive() {
  if (typeof window.io !== "function") return;
  // The /events namespace carries the signed-in user's `change` events (see realtime.py).
  const socket = window.io("/events");
  const show = (connected) => {
    live.hidden = false;
    live.classList.toggle("on", connected);
    live.title = connected ? "Live updates are on" : "Live updates are reconnecting…";
  };
  socket.on("connect", () => show(true));
  socket.on("disconnect", () => show(false));
  socket.on("change", (event) => {
    document.dispatchEvent(new CustomEvent("trackeep:change", { detail: event }));
    page.onChange?.(event || {});
  });
  window.trackeepSocket = socket; // for the browser tests and the console
}

connectLive();

// ------------------------------------------------------------------------- copy buttons

/** <button data-copy="#selector">: copy that element's text, and say so. */
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    toast("Copied.");
  } catch {
    window.getSelection().selectAllChildren(source);  // the user can copy it by hand
    toast("Select the text and copy it with Ctrl+C.", { kind: "error" });
  }
});

// ------------------------------------------------------------------ notifications (the bell)

const bell = document.getElementById("bell");
const bellCount = document.getElementById("bell-count");
let unreadNotifications = 0;

function showBell(count) {
  unreadNotifications = Math.max(0, count);
  bellCount.hidden = unreadNotifications === 0;
  bellCount.textContent = unreadNotifications > 99 ? "99+" : String(unreadNotifications);
  bell.setAttribute("aria-label", unreadNotifications
    ? `Notifications: ${unreadNotifications} unread` : "Notifications");
}

async function openNotifications() {
  const data = await api.get("/notifications");
  showBell(data.unread_count);
  const list = h("ul", { class: "notifications" }, data.notifications.length
    ? data.notifications.map((n) => h("li", { class: n.read ? "" : "unread" },
      h("a", { href: n.conversation_id ? `/messages#c${n.conversation_id}` : "/messages" },
        n.text), h("span", { class: "muted small" }, timeAgo(n.created_at))))
    : h("li", { class: "muted" }, "Nothing new."));
  const markAll = h("button", { type: "button", class: "secondary", onclick: async () => {
    const done = await api.post("/notifications/read", { all: true });
    showBell(done.unread_count);
    dialog.close();
  } }, "Mark all read");
  const dialog = openDialog("Notifications", list, h("div", { class: "form-actions" }, markAll));
}

function connectMessages() {
  if (typeof window.io !== "function" || !bell) return;
  // /messages carries the user's conversation events and notifications (messages.js reads
  // the conversation events from this same socket).
  const socket = window.io("/messages");
  socket.on("notification", (event) => {
    showBell(unreadNotifications + 1);
    if (!location.pathname.startsWith("/messages")) toast(event.data.text);
  });
  window.trackeepMessages = socket;
  api.get("/notifications", { unread: "true" }).then((data) => showBell(data.unread_count))
    .catch(() => {});
}

bell?.addEventListener("click", () => openNotifications().catch(showError));
connectMessages();
