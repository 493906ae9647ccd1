// Settings → Import and export. An import shows two progress bars: the upload (the browser's
// own progress events), then the server's work, which it reports as live `import` events
// ({stage, done, total}) while the request runs; the report comes back as the answer.

import { formatBytes, h, registerPage, showError, toast, upload } from "../api.js";

const STAGES = { upload: "Uploading", checking: "Checking the file", files: "Copying files",
  saving: "Saving" };
const NOUNS = { tags: "tags", bookmarks: "bookmarks", tasks: "tasks", notes: "notes",
  files: "files" };

/** The status block of one import form: a labelled bar that any stage can drive. */
function statusView(box) {
  const label = h("span", {}, "");
  const bar = h("span");
  const progress = h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0,
    "aria-valuemax": 100, "aria-valuenow": 0, "aria-label": "Import progress" }, bar);
  box.replaceChildren(h("p", { class: "small" }, label), progress);
  box.hidden = false;
  return {
    show(stage, done, total) {
      const percent = total ? Math.round((done / total) * 100) : 0;
      label.textContent = stage === "upload" ? `${STAGES.upload}… ${percent}%`
        : `${STAGES[stage] || stage}… ${done} of ${total}`;
      bar.style.width = `${percent}%`;
      progress.setAttribute("aria-valuenow", String(percent));
    },
    finished(report) {
      const parts = Object.entries(report.imported || {})
        .filter(([, count]) => count)
        .map(([kind, count]) => `${count} ${NOUNS[kind] || kind}`);
      const skipped = [];
      if (report.duplicates) skipped.push(`${report.duplicates} already saved`);
      if (report.invalid) skipped.push(`${report.invalid} not web links`);
      box.replaceChildren(h("div", { class: "alert notice", role: "status" },
        parts.length ? `Imported ${parts.join(", ")}.` : "Nothing new to import.",
        skipped.length ? ` Skipped ${skipped.join(" and ")}.` : ""));
    },
    failed(message) {
      box.replaceChildren(h("div", { class: "alert error", role: "alert" }, message));
    },
  };
}

let running = null; // the status view of the import in progress, for the live events

for (const form of document.querySelectorAll("form.import")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) {
      toast("Choose a file first.", { kind: "error" });
      form.elements.file.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    const view = statusView(form.querySelector(".import-status"));
    const data = new FormData();
    data.append("file", file, file.name);
    button.disabled = true;
    running = view;
    try {
      view.show("upload", 0, 1);
      const report = await upload(form.dataset.import, data,
        (fraction) => view.show("upload", Math.round(fraction * file.size), file.size));
      view.finished(report);
      toast(`${file.name} (${formatBytes(file.size)}) imported.`);
      form.reset();
    } catch (error) {
      view.failed(error.message);
      showError(error);
    } finally {
      running = null;
      button.disabled = false;
    }
  });
}

registerPage({
  onChange(event) {
    if (event.type === "import" && event.action === "progress" && running && event.item) {
      running.show(event.item.stage, event.item.done, event.item.total);
    }
  },
});
