// Challenges: the ones you take part in, every one you may join, and the form that creates
// one. Each card shows the goal, the period, the status and (when you joined) your progress;
// the leaderboard itself is on the challenge's own page (challenge.js).

import { ApiError, api, emptyState, h, registerPage, showError, toast } from "../api.js";
import { UNITS, goal, period, progressBar } from "../challenge-parts.js";

const form = document.getElementById("challenge-form");
const newButton = document.getElementById("new-challenge");
const errorLine = document.getElementById("challenge-error");
const unitLine = document.getElementById("challenge-unit");
const mine = document.getElementById("mine");
const open = document.getElementById("open");

const STATUS = { upcoming: "Starts soon", active: "Under way", finished: "Finished" };

function card(challenge) {
  const href = `/challenges/${challenge.id}`;
  return h("li", { class: "card compact challenge-card", dataset: { id: challenge.id } },
    h("div", { class: "challenge-top" },
      h("a", { href, class: "challenge-title" }, challenge.title),
      h("span", { class: `badge status-${challenge.status}` }, STATUS[challenge.status])),
    h("p", { class: "muted small" }, `${goal(challenge)} · ${period(challenge)} · `,
      `${challenge.participants} ${challenge.participants === 1 ? "member" : "members"}`),
    challenge.joined
      ? h("div", { class: "challenge-progress" },
        progressBar(challenge.my_score, challenge.rule.target, `Your progress in ${challenge.title}`),
        h("span", { class: "small" }, `${challenge.my_score} / ${challenge.rule.target}`))
      : null,
    h("div", { class: "form-actions" },
      !challenge.joined && challenge.status !== "finished"
        ? h("button", { type: "button", class: "small", onclick: () => join(challenge) }, "Join")
        : null,
      h("a", { class: "button small secondary", href }, "Leaderboard")));
}

function render(container, challenges, empty) {
  container.replaceChildren(challenges.length
    ? h("ul", { class: "challenge-grid" }, challenges.map(card))
    : empty);
}

async function load() {
  const [own, all] = await Promise.all([
    api.get("/community/my-challenges"), api.get("/community/challenges", { limit: 100 })]);
  const joined = new Set(own.challenges.map((c) => c.id));
  render(mine, own.challenges, h("p", { class: "muted" },
    "You have not joined a challenge yet: join one below, or start your own."));
  const others = all.challenges.filter((c) => !joined.has(c.id));
  render(open, others, emptyState({
    iconName: "star", title: joined.size ? "No other challenges" : "No challenges yet",
    text: "A challenge sets a goal for a period, such as reading 20 bookmarks in a month. " +
      "Scores count themselves from what members do.",
    actionLabel: "New challenge", onAction: showForm,
  }));
}

async function join(challenge) {
  try {
    await api.post(`/community/challenges/${challenge.id}/join`);
    toast(`You joined “${challenge.title}”.`);
    await load();
  } catch (error) {
    showError(error);
  }
}

function showForm() {
  form.hidden = false;
  const today = new Date();
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-` +
    `${String(d.getDate()).padStart(2, "0")}`;
  if (!form.elements.start_date.value) form.elements.start_date.value = iso(today);
  if (!form.elements.end_date.value) {
    form.elements.end_date.value = iso(new Date(today.getTime() + 29 * 86400000));
  }
  showUnit();
  form.elements.title.focus();
}

function showUnit() {
  unitLine.textContent = UNITS[form.elements.rule_type.value] || "";
}

form.elements.rule_type.addEventListener("change", showUnit);
newButton.addEventListener("click", showForm);
document.getElementById("cancel-challenge").addEventListener("click", () => {
  form.hidden = true;
  errorLine.hidden = true;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorLine.hidden = true;
  const fields = form.elements;
  const tag = fields.tag.value.trim();
  const body = {
    title: fields.title.value.trim(), description: fields.description.value.trim(),
    start_date: fields.start_date.value, end_date: fields.end_date.value,
    visibility: fields.visibility.value,
    rule: { type: fields.rule_type.value, target: Number(fields.target.value), tag: tag || null },
  };
  try {
    const created = await api.post("/community/challenges", body);
    location.href = `/challenges/${created.id}`;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    errorLine.textContent = error.message;
    errorLine.hidden = false;
  }
});

registerPage({ onNew: showForm });
load().catch(showError);
