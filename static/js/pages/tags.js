// Tags: one per name per user, with a colour and counts per type of item. Create, rename
// and recolour in place, merge one into another, delete (the items stay).

import {
  api, confirmDialog, emptyState, h, icon, iconButton, openDialog, registerPage, showError,
  toast,
} from "../api.js";
import { ItemList } from "../list.js";

const TYPES = [["bookmark", "bookmarks", "/bookmarks"], ["task", "tasks", "/tasks"],
  ["note", "notes", "/notes"], ["file", "files", "/files"]];

const form = document.getElementById("new-form");
const totalLabel = document.getElementById("total");

const list = new ItemList({
  container: document.getElementById("list"),
  listClass: "tag-grid",
  searchFields: ["name"],
  fetchPage: async () => {
    const tags = await api.get("/tags");
    return { items: tags, total: tags.length };
  },
  isFiltered: () => false,
  onTotal: (total) => {
    totalLabel.textContent = `${total} ${total === 1 ? "tag" : "tags"}`;
  },
  renderEmpty: () => emptyState({
    iconName: "tag", title: "No tags yet",
    text: "Tags group bookmarks, tasks, notes and files by topic. Add one above, or type " +
      "tags when you save an item: they appear here with their counts.",
    actionLabel: "Add a tag", onAction: () => form.elements.name.focus(),
  }),
  renderItem,
});
list.pageSize = 200;

function renderItem(tag) {
  const counts = tag.counts || {};
  const used = TYPES.filter(([type]) => counts[type]);
  return h("li", { class: "tag-card", style: { "--tag": tag.color } },
    h("div", { class: "tag-top" },
      h("span", { class: "tag-name" }, h("span", { class: "swatch",
        style: { background: tag.color } }), tag.name),
      h("div", { class: "item-actions" },
        iconButton("edit", `Rename or recolour “${tag.name}”`,
          (event) => edit(tag, event.currentTarget.closest("li"))),
        // Words, not only a glyph: "merge" is not an icon people read at a glance.
        h("button", { type: "button", class: "small secondary merge-button",
          title: `Merge “${tag.name}” into another tag`,
          "aria-label": `Merge “${tag.name}” into another tag`, onclick: () => merge(tag) },
        icon("merge"), "Merge"),
        iconButton("trash", `Delete “${tag.name}”`, () => remove(tag), "danger"))),
    h("span", { class: "tag-counts" }, used.length
      ? used.map(([type, plural, path]) => h("a", {
        href: `${path}?tag=${encodeURIComponent(tag.name)}` },
      `${counts[type]} ${counts[type] === 1 ? type : plural}`))
      : "Not on any item yet"));
}

function edit(tag, li) {
  const cancel = () => {
    li.classList.remove("editing");
    li.replaceWith(list.row(list.get(tag.id) || tag));
  };
  const editor = h("form", { novalidate: true, "aria-label": `Edit the tag ${tag.name}` },
    h("label", { for: `e-name-${tag.id}`, class: "visually-hidden" }, "Name"),
    h("div", { class: "row" },
      h("input", { id: `e-name-${tag.id}`, name: "name", type: "text", value: tag.name }),
      h("input", { name: "color", type: "color", value: tag.color, "aria-label": "Colour" })),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "small" }, "Save"),
      h("button", { type: "button", class: "small secondary", onclick: cancel }, "Cancel")));
  editor.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const saved = await api.patch(`/tags/${tag.id}`, {
        name: editor.elements.name.value.trim(), color: editor.elements.color.value });
      li.classList.remove("editing");
      await list.reload();
      toast(`Tag “${saved.name}” saved.`);
    } catch (error) {
      showError(error);
    }
  });
  li.classList.add("editing");
  li.replaceChildren(editor);
  editor.elements.name.focus();
}

function merge(tag) {
  const others = list.items.filter((t) => t.id !== tag.id);
  if (!others.length) {
    toast("There is no other tag to merge into yet.", { kind: "error" });
    return;
  }
  const select = h("select", { id: "merge-into", name: "into" },
    others.map((t) => h("option", { value: String(t.id) }, t.name)));
  const mergeForm = h("form", { novalidate: true },
    h("p", { class: "muted" }, `Every item tagged “${tag.name}” gets the tag you choose, ` +
      `and “${tag.name}” is deleted.`),
    h("label", { for: "merge-into" }, "Merge into"), select,
    h("div", { class: "form-actions" },
      h("button", { type: "submit" }, icon("merge"), "Merge"),
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() },
        "Cancel")));
  mergeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const target = await api.post(`/tags/${tag.id}/merge`, { into: Number(select.value) });
      dialog.close();
      await list.reload();
      toast(`“${tag.name}” merged into “${target.name}”.`);
    } catch (error) {
      showError(error);
    }
  });
  const dialog = openDialog(`Merge “${tag.name}”`, mergeForm);
}

async function remove(tag) {
  const ok = await confirmDialog(`Delete the tag “${tag.name}”?`,
    `The ${tag.count ?? 0} items that carry it stay; they only lose this tag.`);
  if (!ok) return;
  try {
    await api.delete(`/tags/${tag.id}`);
    list.remove(tag.id);
    toast(`Tag “${tag.name}” deleted.`);
  } catch (error) {
    showError(error);
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = form.elements.name.value.trim();
  if (!name) {
    toast("Give the tag a name.", { kind: "error" });
    form.elements.name.focus();
    return;
  }
  try {
    await api.post("/tags", { name, color: form.elements.color.value });
    form.elements.name.value = "";
    await list.reload();
    list.flash(list.items.find((t) => t.name.toLowerCase() === name.toLowerCase())?.id);
    toast(`Tag “${name}” added.`);
  } catch (error) {
    showError(error);
  }
});

registerPage({
  onNew: () => form.elements.name.focus(),
  onSearch: () => list.render(),
  // Any item's change can change the counts.
  onChange: (event) => list.reloadSoon(event.type === "tag" ? event.id : undefined),
});

list.reload();
