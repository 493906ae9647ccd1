// Trash: everything deleted, newest first; restore an item or delete it for good, or empty
// the whole trash. Items older than the retention are purged by the server on its own.

import {
  api, confirmDialog, emptyState, formatDate, h, icon, registerPage, showError, timeAgo, toast,
} from "../api.js";
import { bindSegments, ItemList } from "../list.js";

const TYPES = { bookmark: ["Bookmark", "bookmark", "/bookmarks"], task: ["Task", "task", "/tasks"],
  note: ["Note", "note", "/notes"], file: ["File", "file", "/files"] };

const emptyButton = document.getElementById("empty-trash");
const totalLabel = document.getElementById("total");
const state = { type: "" };

const list = new ItemList({
  container: document.getElementById("list"),
  searchFields: ["title", "type"],
  keyOf: (entry) => `${entry.type}:${entry.id}`,
  fetchPage: (offset, limit) => api.list("/trash", { offset, limit, type: state.type }),
  isFiltered: () => Boolean(state.type),
  onTotal: (total) => {
    totalLabel.textContent = total ? `${total} ${total === 1 ? "item" : "items"} in the trash`
      : "";
    emptyButton.hidden = !total || Boolean(state.type);
  },
  renderEmpty: () => emptyState({
    iconName: "trash", title: "The trash is empty",
    text: "What you delete lands here first, so you can bring it back. Deleting it here " +
      "removes it for good.",
  }),
  renderItem,
});

function renderItem(entry) {
  const [label, iconName] = TYPES[entry.type] || [entry.type, "file"];
  return h("li", { class: "item" },
    h("span", { class: `item-icon t-${entry.type}` }, icon(iconName)),
    h("div", { class: "item-body" },
      h("span", { class: "item-title" }, entry.title || "Untitled"),
      h("div", { class: "item-meta" },
        h("span", { class: "badge" }, label),
        h("span", { title: formatDate(entry.deleted_at, true) },
          `Deleted ${timeAgo(entry.deleted_at)}`),
        entry.purge_at ? h("span", {}, `Removed for good on ${formatDate(entry.purge_at)}`)
          : null)),
    h("div", { class: "item-actions" },
      h("button", { type: "button", class: "small secondary", onclick: () => restore(entry),
        "aria-label": `Restore “${entry.title}”` }, icon("restore"), "Restore"),
      h("button", { type: "button", class: "small secondary", onclick: () => purge(entry),
        "aria-label": `Delete “${entry.title}” for good` }, "Delete for good")));
}

async function restore(entry) {
  try {
    await api.post(`/trash/${entry.type}/${entry.id}/restore`);
    list.remove(list.keyOf(entry));
    const [label, , path] = TYPES[entry.type] || [entry.type, "", "/"];
    toast(`${label} “${entry.title}” restored.`, {
      action: { label: "Show", run: () => { location.href = path; } },
    });
  } catch (error) {
    showError(error);
  }
}

async function purge(entry) {
  const ok = await confirmDialog(`Delete “${entry.title}” for good?`,
    "It cannot be restored afterwards." + (entry.type === "task"
      ? " Its subtasks in the trash go with it." : ""), { confirmLabel: "Delete for good" });
  if (!ok) return;
  try {
    await api.delete(`/trash/${entry.type}/${entry.id}`);
    list.remove(list.keyOf(entry));
    toast("Deleted for good.");
  } catch (error) {
    showError(error);
  }
}

emptyButton.addEventListener("click", async () => {
  const ok = await confirmDialog("Empty the trash?",
    `All ${list.total} items in it are deleted for good; this cannot be undone.`,
    { confirmLabel: "Empty the trash" });
  if (!ok) return;
  try {
    const { purged } = await api.delete("/trash");
    await list.reload();
    toast(`${purged} ${purged === 1 ? "item" : "items"} deleted for good.`);
  } catch (error) {
    showError(error);
  }
});

bindSegments(document.getElementById("filter"), (value) => {
  state.type = value;
  list.reload();
});

registerPage({
  onSearch: () => list.render(),
  onChange: (event) => {
    if (["deleted", "restored", "purged"].includes(event.action)) {
      list.reloadSoon(event.type && event.id ? `${event.type}:${event.id}` : undefined);
    }
  },
});

list.reload();
