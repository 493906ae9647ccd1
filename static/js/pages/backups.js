// Settings → Backups: the list of backups, and "Back up now", whose progress is polled from
// GET /api/v1/backups (stage, done, total) until the backup is written.

import { ApiError, api, formatBytes, formatDate, h, registerPage, showError, toast } from "../api.js";

const STAGES = { starting: "Starting", database: "Copying the database",
  files: "Copying files", finished: "Finishing" };
const POLL_MS = 500;

const button = document.getElementById("backup-now");
const statusBox = document.getElementById("backup-status");
const tbody = document.querySelector("#backup-list tbody");
const folder = document.getElementById("backup-folder");

function showProgress(status) {
  const percent = status.total ? Math.round((status.done / status.total) * 100) : 0;
  const bar = h("span");
  bar.style.width = `${percent}%`;
  const label = status.total
    ? `${STAGES[status.stage] || status.stage}… ${status.done} of ${status.total}`
    : `${STAGES[status.stage] || "Working"}…`;
  statusBox.replaceChildren(h("p", { class: "small" }, label),
    h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-valuenow": percent, "aria-label": "Backup progress" }, bar));
  statusBox.hidden = false;
}

function showList(listing) {
  folder.textContent = `Kept in ${listing.folder}`;
  if (!listing.backups.length) {
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No backups yet.")));
    return;
  }
  tbody.replaceChildren(...listing.backups.map((b) => h("tr", {},
    h("td", {}, b.name),
    h("td", {}, formatBytes(b.size)),
    h("td", {}, formatDate(new Date(b.created_at * 1000).toISOString(), true)),
    h("td", {}, h("a", { href: `/api/v1/backups/${encodeURIComponent(b.name)}`, download: b.name },
      "Download")))));
}

async function refresh() {
  const listing = await api.get("/backups");
  showList(listing);
  return listing.status;
}

async function follow() {
  button.disabled = true;
  try {
    for (;;) {
      const status = await refresh();
      if (!status.running) {
        if (status.error) {
          statusBox.replaceChildren(h("div", { class: "alert error", role: "alert" }, status.error));
        } else if (status.last) {
          statusBox.replaceChildren(h("div", { class: "alert notice", role: "status" },
            `Backed up to ${status.last.name} (${formatBytes(status.last.size)}).`));
          toast("Backup made.");
        }
        return;
      }
      showProgress(status);
      await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    }
  } finally {
    button.disabled = false;
  }
}

button.addEventListener("click", async () => {
  try {
    await api.post("/backups", {});
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) {
      showError(error);
      return;
    }
  }
  await follow();
});

registerPage({});
refresh().then((status) => (status.running ? follow() : null)).catch(showError);
