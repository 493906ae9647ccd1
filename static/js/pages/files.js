// Files: drag-and-drop (or chosen) uploads with a progress bar each (XMLHttpRequest's upload
// progress, through api.js's upload()), previews of images and text, download, edit the
// name, description and tags, share links, delete with undo.

import {
  api, confirmDialog, emptyState, formatBytes, formatDate, h, icon, iconButton, openDialog,
  parseTags, registerPage, showError, tagChips, tagNames, timeAgo, toast, upload,
} from "../api.js";
import { bindTagSuggestions, ItemList, TagFilter, tagFromUrl } from "../list.js";

const KIND_ICONS = { image: "image", document: "text", video: "file", audio: "file",
  archive: "file", other: "file" };

const dropzone = document.getElementById("dropzone");
const fileInput = document.getElementById("file-input");
const uploads = document.getElementById("uploads");
const typeFilter = document.getElementById("type-filter");
const sortSelect = document.getElementById("sort");
const totalLabel = document.getElementById("total");
const maxBytes = Number(dropzone.dataset.maxBytes) || Infinity;
const state = { type: "", tag: tagFromUrl(), sort: sortSelect.value };
const tagFilter = new TagFilter(document.getElementById("tag-filter"), state,
  () => list.reload());

const list = new ItemList({
  container: document.getElementById("list"),
  searchFields: ["name", "description", "mime_type"],
  fetchPage: (offset, limit) => api.list("/files", { offset, limit, sort: state.sort,
    tag: state.tag, type: state.type }),
  isFiltered: () => Boolean(state.type || state.tag),
  onTotal: (total) => {
    totalLabel.textContent = `${total} ${total === 1 ? "file" : "files"}`;
  },
  renderEmpty: () => emptyState({
    iconName: "file", title: "No files yet",
    text: "Drop files on the area above, or choose them from your computer. They are kept " +
      "in your Trackeep data folder; share a link to one when someone else needs it.",
    actionLabel: "Choose files to upload", onAction: () => fileInput.click(),
  }),
  renderItem,
});

// ------------------------------------------------------------------------------ rendering

function renderItem(file) {
  const thumb = file.file_type === "image" && file.preview_url
    ? h("img", { class: "thumb", src: file.preview_url, alt: "", loading: "lazy" })
    : h("span", { class: "item-icon t-file" }, icon(KIND_ICONS[file.file_type] || "file"));
  const name = file.previewable
    ? h("button", { type: "button", class: "link item-title", title: "Preview",
      "aria-label": `Preview ${file.name}`, onclick: () => showPreview(file) }, file.name)
    : h("span", { class: "item-title" }, file.name);
  return h("li", { class: "item" },
    thumb,
    h("div", { class: "item-body" },
      name,
      h("div", { class: "item-meta" },
        h("span", {}, formatBytes(file.file_size)),
        h("span", {}, file.mime_type),
        h("span", { title: formatDate(file.created_at, true) }, timeAgo(file.created_at)),
        tagChips(file.tags, tagFilter.pick)),
      file.description ? h("p", { class: "item-desc" }, file.description) : null),
    h("div", { class: "item-actions" },
      h("a", { class: "icon-button button", href: file.download_url, download: file.name,
        title: "Download", "aria-label": `Download ${file.name}` }, icon("download")),
      iconButton("link", "Share links", () => showShares(file)),
      iconButton("edit", "Edit", (event) => edit(file, event.currentTarget.closest("li"))),
      iconButton("trash", "Move to the trash", () => remove(file), "danger")));
}

async function showPreview(file) {
  let body;
  if (file.file_type === "image") {
    body = h("img", { class: "file-preview", src: file.preview_url, alt: file.name });
  } else {
    const response = await fetch(file.preview_url, { credentials: "same-origin" });
    if (!response.ok) {
      showError(new Error(`the preview is unavailable (${response.status})`));
      return;
    }
    const truncated = response.headers.get("X-Preview-Truncated") === "true";
    body = [h("pre", { class: "file-preview" }, await response.text()),
      truncated ? h("p", { class: "muted small" }, "Only the beginning is shown; download " +
        "the file to read all of it.") : null];
  }
  openDialog(file.name, body, h("div", { class: "form-actions" },
    h("a", { class: "button", href: file.download_url, download: file.name }, icon("download"),
      "Download"),
    h("span", { class: "muted small" }, `${formatBytes(file.file_size)} · ${file.mime_type}`)));
}

// -------------------------------------------------------------------------------- uploads

function uploadRow(file) {
  const bar = h("span");
  const status = h("span", { class: "muted" }, "Waiting…");
  const row = h("li", {}, h("strong", {}, file.name), status,
    h("div", { class: "progress", role: "progressbar", "aria-label": `Uploading ${file.name}`,
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0 }, bar));
  uploads.append(row);
  return {
    progress(fraction) {
      const percent = Math.round(fraction * 100);
      bar.style.width = `${percent}%`;
      bar.parentElement.setAttribute("aria-valuenow", percent);
      status.textContent = `${percent}% of ${formatBytes(file.size)}`;
    },
    done() {
      bar.parentElement.classList.add("done");
      status.textContent = "Uploaded";
      setTimeout(() => row.remove(), 2500);
    },
    failed(message) {
      status.textContent = message;
      status.className = "failed";
      row.append(h("button", { type: "button", class: "small secondary",
        onclick: () => row.remove() }, "Dismiss"));
    },
  };
}

async function sendFile(file, row) {
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    await upload("/files/upload", form, (fraction) => row.progress(fraction));
    row.done();
    return true;
  } catch (error) {
    row.failed(error.message);
    if (error.status) toast(`${file.name}: ${error.message}`, { kind: "error" });
    return false;
  }
}

let queue = Promise.resolve();

function uploadFiles(files) {
  for (const file of files) {
    const row = uploadRow(file);
    if (file.size > maxBytes) {
      row.failed(`Too large: files can be at most ${formatBytes(maxBytes)}.`);
      continue;
    }
    queue = queue.then(async () => {
      if (await sendFile(file, row)) list.reloadSoon();
    });
  }
  queue.then(() => tagFilter.load());
}

fileInput.addEventListener("change", () => {
  uploadFiles([...fileInput.files]);
  fileInput.value = "";
});
for (const name of ["dragenter", "dragover"]) {
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropzone.addEventListener(name, () => dropzone.classList.remove("over"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  uploadFiles([...event.dataTransfer.files]);
});
// Dropping a file anywhere else would open it in place of Trackeep.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());
document.getElementById("upload-button").addEventListener("click", () => fileInput.click());

// -------------------------------------------------------------------------------- actions

async function remove(file) {
  try {
    await api.delete(`/files/${file.id}`);
    list.remove(file.id);
    toast(`“${file.name}” moved to the trash.`, {
      action: { label: "Undo", run: () => list.restore("file", file.id) },
    });
  } catch (error) {
    showError(error);
  }
}

function edit(file, li) {
  const id = (name) => `e-${name}-${file.id}`;
  const cancel = () => {
    li.classList.remove("editing");
    li.replaceWith(list.row(list.get(file.id) || file));
  };
  const editor = h("form", { class: "edit", novalidate: true },
    h("div", { class: "form-grid" },
      h("div", {}, h("label", { for: id("name") }, "Name"),
        h("input", { id: id("name"), name: "name", type: "text", value: file.name })),
      h("div", {}, h("label", { for: id("tags") }, "Tags"),
        h("input", { id: id("tags"), name: "tags", type: "text", list: "tag-names",
          value: tagNames(file).join(", ") })),
      h("div", { class: "wide" }, h("label", { for: id("description") }, "Description"),
        h("textarea", { id: id("description"), name: "description", rows: 2,
          value: file.description }))),
    h("div", { class: "form-actions" },
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
  editor.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(editor);
    try {
      const saved = await api.patch(`/files/${file.id}`, { name: data.get("name").trim(),
        description: data.get("description").trim(), tags: parseTags(data.get("tags")) });
      li.classList.remove("editing");
      list.replace(saved);
      li.replaceWith(list.row(saved));
      toast("File saved.");
      tagFilter.load();
    } catch (error) {
      showError(error);
    }
  });
  li.classList.add("editing");
  li.replaceChildren(editor);
  bindTagSuggestions(editor.elements.tags, () => tagFilter.tags);
  editor.elements.name.focus();
}

// ---------------------------------------------------------------------------- share links

const EXPIRY = [["24", "1 day"], ["168", "7 days"], ["720", "30 days"], ["", "Never"]];
const SHARE_STATES = { active: "Active", expired: "Expired", revoked: "Revoked" };

async function showShares(file) {
  const shareList = h("ul", { class: "items" });
  const created = h("div");
  const expiry = h("select", { id: "share-expiry", name: "expiry" },
    EXPIRY.map(([hours, label]) => h("option", { value: hours }, label)));

  async function refresh() {
    try {
      const { shares } = await api.get(`/files/${file.id}/shares`);
      shareList.replaceChildren(...(shares.length ? shares.map(shareRow)
        : [h("li", { class: "muted" }, "No share links yet.")]));
    } catch (error) {
      showError(error);
    }
  }

  function shareRow(share) {
    return h("li", { class: "item" },
      h("div", { class: "item-body" },
        h("span", { class: "item-title" }, `…/s/${share.prefix}…`),
        h("div", { class: "item-meta" },
          h("span", { class: `badge${share.state === "active" ? " on" : ""}` },
            SHARE_STATES[share.state] || share.state),
          h("span", {}, `made ${timeAgo(share.created_at)}`),
          h("span", {}, share.expires_at ? `expires ${formatDate(share.expires_at, true)}`
            : "never expires"),
          h("span", {}, `${share.download_count} downloads`))),
      share.state === "active" ? h("div", { class: "item-actions" },
        h("button", { type: "button", class: "small secondary", onclick: async () => {
          if (!await confirmDialog("Revoke this link?", "Anyone who has it will no longer " +
            "be able to download the file.", { confirmLabel: "Revoke" })) return;
          try {
            await api.delete(`/files/${file.id}/shares/${share.id}`);
            toast("The link is revoked.");
            refresh();
          } catch (error) {
            showError(error);
          }
        } }, "Revoke")) : null);
  }

  const form = h("form", { class: "inline", novalidate: true },
    h("label", { for: "share-expiry" }, "Expires after"), expiry,
    h("button", { type: "submit", class: "small" }, icon("link"), "Make a link"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const share = await api.post(`/files/${file.id}/shares`, {
        expires_in_hours: expiry.value ? Number(expiry.value) : null });
      const input = h("input", { type: "text", readonly: true, value: share.url,
        "aria-label": "The share link" });
      created.replaceChildren(h("div", { class: "alert notice" },
        h("p", {}, "Copy the link now: it is shown only this once."), input,
        h("div", { class: "form-actions" }, h("button", { type: "button", class: "small",
          onclick: async () => {
            input.select();
            try {
              await navigator.clipboard.writeText(share.url);
              toast("Link copied.");
            } catch {
              toast("Press Ctrl+C to copy the selected link.");
            }
          } }, "Copy"))));
      input.select();
      refresh();
    } catch (error) {
      showError(error);
    }
  });
  openDialog(`Share “${file.name}”`,
    h("p", { class: "muted" }, "Anyone with a link can download the file without an account, " +
      "until the link expires or you revoke it."),
    form, created, h("h3", { style: { marginTop: "1rem" } }, "Links"), shareList);
  refresh();
}

// ------------------------------------------------------------------------- filters, tags

typeFilter.addEventListener("change", () => {
  state.type = typeFilter.value;
  list.reload();
});
sortSelect.addEventListener("change", () => {
  state.sort = sortSelect.value;
  list.reload();
});

registerPage({
  onNew: () => fileInput.click(),
  onSearch: () => list.render(),
  onChange(event) {
    if (event.type === "tag") {
      tagFilter.load();
      list.reloadSoon();
    } else if (event.type === "file" && !list.shows(event)) {
      list.reloadSoon(event.id);
    }
  },
});

list.reload().then(() => list.showLinked("file"));
tagFilter.load();
