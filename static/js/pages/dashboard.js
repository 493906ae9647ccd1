// Dashboard: counts per type, recent activity across types, and quick-add of a bookmark, a
// task or a note. Any change in another window refreshes the figures.

import { api, ApiError, debounce, emptyState, formatDate, h, icon, registerPage, showError,
  timeAgo, toast } from "../api.js";

const PAGES = { bookmark: "/bookmarks", task: "/tasks", note: "/notes", file: "/files" };
const STAT_KEYS = { bookmark: "totalBookmarks", task: "totalTasks", note: "totalNotes",
  file: "totalFiles" };
const ACTIONS = { created: "Added", updated: "Changed" };
const HINTS = {
  bookmark: ["https://…", "Paste a link: its title is fetched in the background."],
  task: ["What needs doing?", "Adds a task with medium priority; set the rest on Tasks."],
  note: ["Title of the note", "Creates the note and opens it in the editor."],
};

const activity = document.getElementById("activity");
const quickForm = document.getElementById("quick-add");
const quickText = document.getElementById("quick-text");
const quickHint = document.getElementById("quick-hint");
let kind = "bookmark";

/** The item itself: its row on its list page (scrolled to and highlighted), or the note. */
function itemLink(entry) {
  if (!PAGES[entry.type]) return "/";
  return `${PAGES[entry.type]}#${entry.type}-${entry.id}`;
}

async function loadStats() {
  try {
    const stats = await api.get("/dashboard/stats");
    for (const [type, key] of Object.entries(STAT_KEYS)) {
      const node = document.querySelector(`[data-stat="${type}"]`);
      if (node) node.textContent = stats[key] ?? 0;
    }
    renderActivity(stats.recentActivity || []);
  } catch (error) {
    showError(error);
  }
}

function renderActivity(entries) {
  if (!entries.length) {
    activity.replaceChildren(emptyState({
      iconName: "dashboard", title: "Nothing here yet",
      text: "What you add or change shows up here. Start with the quick-add box: paste a " +
        "link, or type a task or a note title.",
      actionLabel: "Quick add", onAction: () => quickText.focus(),
    }));
    return;
  }
  activity.replaceChildren(h("ul", { class: "activity" }, entries.map((entry) => h("li", {},
    h("span", { class: `item-icon t-${entry.type}` }, icon(entry.type)),
    h("span", { class: "what" },
      h("a", { href: itemLink(entry) }, entry.title || "Untitled"),
      h("span", { class: "muted small" }, `${ACTIONS[entry.action] || "Changed"} · ${entry.type}`)),
    h("span", { class: "when", title: formatDate(entry.timestamp, true) },
      timeAgo(entry.timestamp))))));
}

// ------------------------------------------------------------------------------ quick add

function setKind(value) {
  kind = value;
  for (const button of quickForm.querySelectorAll("[data-kind]")) {
    button.setAttribute("aria-pressed", String(button.dataset.kind === kind));
  }
  [quickText.placeholder, quickHint.textContent] = HINTS[kind];
  quickText.focus();
}

quickForm.addEventListener("click", (event) => {
  const button = event.target.closest("[data-kind]");
  if (button) setKind(button.dataset.kind);
});

quickForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = quickText.value.trim();
  if (!text) {
    toast(kind === "bookmark" ? "Paste the link to save." : "Type a title first.",
      { kind: "error" });
    quickText.focus();
    return;
  }
  try {
    if (kind === "bookmark") {
      const url = /^[a-z][a-z0-9+.-]*:/i.test(text) ? text : `https://${text}`;
      await api.post("/bookmarks", { url });
      toast("Bookmark saved.", { action: { label: "Open Bookmarks",
        run: () => { location.href = "/bookmarks"; } } });
    } else if (kind === "task") {
      await api.post("/tasks", { title: text });
      toast("Task added.", { action: { label: "Open Tasks",
        run: () => { location.href = "/tasks"; } } });
    } else {
      const note = await api.post("/notes", { title: text });
      location.href = `/notes#note-${note.id}`;
      return;
    }
    quickText.value = "";
    loadStats();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.body?.duplicate) {
      toast("You already saved this link.", { kind: "error", action: { label: "Show it",
        run: () => { location.href = "/bookmarks"; } } });
    } else {
      showError(error);
    }
  }
});

const refresh = debounce(loadStats, 300);

registerPage({
  onNew: () => quickText.focus(),
  onChange: refresh,
});

loadStats();
