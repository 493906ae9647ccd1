// One challenge: its goal and period, your progress, and the leaderboard (the top 100 with
// your row highlighted, and you and your neighbours when you are further down), kept live by
// the /challenges socket: every score event, from any instance, reads the board again.

import { api, h, showError, toast } from "../api.js";
import { dayLabel, goal, progressBar } from "../challenge-parts.js";

const root = document.getElementById("challenge");
const id = Number(root.dataset.id);
const token = root.dataset.token || undefined;
const me = Number(root.dataset.userId);
const rows = document.getElementById("board-rows");
const joinButton = document.getElementById("join-button");
const leaveButton = document.getElementById("leave-button");
const liveDot = document.getElementById("board-live");

const STATUS = { upcoming: "starts soon", active: "under way", finished: "finished" };

let challenge = null;

function showChallenge() {
  document.getElementById("challenge-title").textContent = challenge.title;
  document.getElementById("challenge-summary").textContent =
    `Goal: ${goal(challenge)} · ${dayLabel(challenge.start_date)} – ` +
    `${dayLabel(challenge.end_date)} (${challenge.timezone}) · ${STATUS[challenge.status]}`;
  document.getElementById("challenge-description").textContent = challenge.description || "";
  const finished = challenge.status === "finished";
  document.getElementById("finished-note").hidden = !finished;
  joinButton.hidden = challenge.joined || finished;
  leaveButton.hidden = !challenge.joined || finished;
  const invite = document.getElementById("invite");
  if (challenge.invite_token && challenge.visibility === "invite") {
    document.getElementById("invite-link").textContent =
      `${location.origin}/challenges/${challenge.id}?token=${challenge.invite_token}`;
    invite.hidden = false;
  } else {
    invite.hidden = true;
  }
}

function row(entry) {
  const mine = entry.user_id === me;
  return h("tr", { class: mine ? "me" : "", dataset: { userId: entry.user_id },
    "aria-current": mine ? "true" : false },
  h("td", { class: "rank" }, `#${entry.rank}`),
  h("td", {}, mine ? `${entry.username} (you)` : entry.username),
  h("td", { class: "score" }, String(entry.score)),
  h("td", { class: "progress-col" },
    progressBar(entry.score, challenge.rule.target, `${entry.username}'s progress`)));
}

async function loadBoard() {
  const board = await api.get(`/community/challenges/${id}/leaderboard`,
    { limit: 100, around: "me", token });
  const shown = new Set(board.entries.map((e) => e.user_id));
  const body = board.entries.map(row);
  const extra = (board.around || []).filter((e) => !shown.has(e.user_id));
  if (extra.length) {
    body.push(h("tr", { class: "gap" }, h("td", { colspan: 4 }, "…")), ...extra.map(row));
  }
  rows.replaceChildren(...body);
  document.getElementById("board-empty").hidden = board.participants > 0;
  document.getElementById("participants").textContent =
    `${board.participants} ${board.participants === 1 ? "member" : "members"}`;
  const progress = document.getElementById("my-progress");
  if (board.me) {
    const score = board.me.score;
    progress.hidden = false;
    progress.querySelector(".progress").replaceWith(
      progressBar(score, challenge.rule.target, "Your progress"));
    document.getElementById("my-progress-text").textContent =
      `${score} / ${challenge.rule.target}${score >= challenge.rule.target ? " · goal reached" : ""}`;
    document.getElementById("my-rank").textContent =
      `Rank ${board.me.rank} of ${board.participants}`;
  } else {
    progress.hidden = true;
  }
}

async function loadChallenge() {
  challenge = await api.get(`/community/challenges/${id}`, { token });
  showChallenge();
}

async function refresh() {
  await loadChallenge();
  await loadBoard();
}

// Score events come in bursts (an import completes 50 tasks): read the board at most every
// 300 ms, and once more after the last event.
let pending = null;
function scheduleBoard() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    loadBoard().catch(showError);
  }, 300);
}

function connect() {
  if (typeof window.io !== "function") return;
  const socket = window.io("/challenges");
  socket.on("connect", () => {
    socket.emit("watch", { challenge_id: id, token }, (answer) => {
      liveDot.hidden = !(answer && answer.ok);
      // After a reconnect, whatever changed meanwhile is read once.
      if (answer && answer.ok) scheduleBoard();
    });
  });
  socket.on("disconnect", () => { liveDot.hidden = true; });
  socket.on("score", (event) => {
    if (event && event.challenge_id === id) scheduleBoard();
  });
  window.trackeepChallenges = socket; // for the browser tests and the console
}

joinButton.addEventListener("click", async () => {
  try {
    challenge = await api.post(`/community/challenges/${id}/join${token ? `?token=${encodeURIComponent(token)}` : ""}`);
    showChallenge();
    await loadBoard();
    toast("You joined: your score counts what you already did in the period.");
  } catch (error) {
    showError(error);
  }
});

leaveButton.addEventListener("click", async () => {
  try {
    challenge = await api.post(`/community/challenges/${id}/leave`);
    showChallenge();
    await loadBoard();
  } catch (error) {
    showError(error);
  }
});

refresh().then(connect).catch(showError);
