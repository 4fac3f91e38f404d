// The video cards on the page. The server draws every card (templates/videos/_generation.html,
// also at GET <id>/card/); this script only swaps the server's card in when it changes, moves the
// progress bar between status checks, does the list's actions in place, and tells the user.
(function () {
  "use strict";
  // How the page follows its jobs: one timer for the page and one request for all its live cards
  // (GET status/?ids=3,8,12, views.statuses), every 2 s while the tab is seen. The answer carries,
  // per job, a `version` of what its card shows; a card's HTML is fetched only when that differs
  // from the card's data-version: a handful of times in a job's life. The answer's ETag covers all
  // but the clock, so an unchanged page gets a 304 with no body and keeps its last data and the time
  // it received it, from which the bar and the clock move on (paint). A hidden tab asks every 15 s:
  // what it shows then is only the tab's title and a notification when a job ends (a job takes
  // minutes, and Runway's progress is read every 5 to 10 s), and it asks at once when seen again.
  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 15000;
  const script = document.currentScript;
  const STATUS_URL = script.dataset.statusUrl;
  const STATUS_MAX = Number(script.dataset.statusMax) || 50;
  const PAINT_MS = 500;
  // Where Runway holds the task and its progress moves; before that the card shows its place in line.
  const AT_RUNWAY = ["pending", "throttled", "running"];
  const FINAL = ["succeeded", "failed", "cancelled", "timed_out"];
  const live = document.getElementById("live-status");
  const baseTitle = document.title;
  // What each followed card last learned, by the card's element id (the element is replaced on a swap).
  const followed = new Map();

  // ---- Telling the user: the polite live region, the tab's title, a notification ----

  function announce(text) {
    if (!live || !text) return;
    // Emptied first, so that the same words said twice are announced twice.
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function titleOf(card) {
    return card.dataset.title || "";
  }

  // What the live region says when a card's status changes; nothing for the steps in between.
  function statusWords(card) {
    const name = "Video “" + titleOf(card) + "”";
    const message = (card.querySelector(".message") || {}).textContent || "";
    switch (card.dataset.status) {
      case "running": return name + " is generating.";
      case "succeeded": return name + " is done.";
      case "failed": return name + " failed: " + message.trim();
      case "timed_out": return name + " timed out: " + message.trim();
      case "cancelled": return name + " was cancelled.";
      default: return "";
    }
  }

  // A job that ended while the tab was in the background: the title says so until the tab is seen.
  function tellHiddenTab(card) {
    if (!document.hidden) return;
    const done = card.dataset.status === "succeeded";
    const label = (card.querySelector(".status-label") || {}).textContent || "";
    document.title = (done ? "✓ Done" : "✗ " + label.trim()) + " · " + baseTitle;
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(done ? "Your video is done" : "Your video " + label.trim().toLowerCase(), { body: titleOf(card), tag: card.id });
      } catch (error) {
        // Some browsers allow notifications only from a service worker: the title still says it.
      }
    }
  }


  // "Notify me when videos finish": offered only where the browser can, and has not been answered.
  const notifyButton = document.getElementById("notify-me");
  if (notifyButton && "Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async function () {
      const answer = await Notification.requestPermission();
      notifyButton.hidden = true;
      announce(answer === "granted" ? "You will be notified when a video finishes." : "Notifications stay off.");
    });
  }

  // ---- The progress bar and the clock, between status checks ----

  function clock(seconds) {
    const s = Math.round(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // The estimate is a median: past 90 % of it the bar slows, towards 99 %, rather than stop dead.
  function easeOut(percent) {
    return percent <= 90 ? percent : 90 + 9 * (1 - Math.exp(-(percent - 90) / 30));
  }

  // How far along a job at Runway is now, in per cent, and how long it takes in all, in seconds:
  // from its time at Runway against what the model takes there (the median of its last jobs), or,
  // once Runway has given a figure, that figure carried on at the pace it was reached, whichever is
  // further. The wait before it was sent counts for neither.
  function atRunway(data, runwayElapsed) {
    let total = data.estimated_seconds;
    let percent = total ? (100 * runwayElapsed) / total : 0;
    if (data.progress > 0 && data.progress_seconds > 0) {
      const pace = data.progress / data.progress_seconds; // per cent a second, as Runway measured it
      percent = Math.max(percent, data.progress + pace * Math.max(0, runwayElapsed - data.progress_seconds));
      if (data.progress >= 10) total = (100 * data.progress_seconds) / data.progress; // Runway's own pace
    }
    return { percent: percent, total: total };
  }

  // The bar never goes back, moves smoothly between the worker's readings (every 10 s at Runway's),
  // and stays below 100 until the server's card says the job is done.
  function paint(card) {
    const state = followed.get(card.id) || {};
    const bar = card.querySelector(".progress");
    const timing = card.querySelector(".timing");
    const data = state.data;
    let shown = Math.max(state.shown || 0, Number(bar.getAttribute("aria-valuenow")) || 0);
    let elapsed = null;
    let left = null;
    if (data && data.version === card.dataset.version) {
      const since = (performance.now() - state.at) / 1000;
      elapsed = data.elapsed_seconds + since;
      if (AT_RUNWAY.includes(card.dataset.status) && data.runway_seconds !== null) {
        const runwayElapsed = data.runway_seconds + since;
        const now = atRunway(data, runwayElapsed);
        shown = Math.max(shown, data.progress, easeOut(now.percent));
        if (now.total) left = { seconds: now.total - runwayElapsed, late: runwayElapsed > now.total * 1.5 };
      }
    }
    if (!FINAL.includes(card.dataset.status)) shown = Math.min(shown, 99);
    state.shown = shown;
    bar.setAttribute("aria-valuenow", String(Math.floor(shown)));
    bar.querySelector(".progress-bar").style.width = shown + "%";
    bar.querySelector(".progress-text").textContent = Math.floor(shown) + "%";
    if (!timing) return;
    let text = "";
    if (elapsed !== null && !FINAL.includes(card.dataset.status)) {
      text = clock(elapsed) + " so far";
      if (left && Math.ceil(left.seconds) >= 1) text += ", about " + clock(Math.ceil(left.seconds)) + " left";
      else if (left && !left.late) text += ", almost done";
      else if (left) text += ", taking longer than usual";
    }
    timing.textContent = text;
    timing.hidden = !text;
  }

  window.setInterval(function () {
    followed.forEach(function (state, id) {
      const card = document.getElementById(id);
      if (card) paint(card);
      else followed.delete(id);
    });
  }, PAINT_MS);

  // ---- Swapping in the server's card ----

  // What makes a focused element "the same" in the new card: its form, link and words.
  function focusKey(element) {
    const form = element.closest("form");
    return [element.tagName, form ? form.getAttribute("action") : "", element.getAttribute("href") || "", element.textContent.trim()].join("|");
  }

  function fromHtml(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }

  // Other scripts that dress a card (e.g. local times) hear of every card put in the page after load.
  function drawn(card) {
    document.dispatchEvent(new CustomEvent("generation:card", { detail: { card: card } }));
  }

  // Replace a card by the server's; the focus stays on the same control (or goes to the card),
  // and a video that is already there is kept, playing or not.
  function swap(old, html) {
    const fresh = fromHtml(html);
    // Read before the video moves: moving a focused element takes its focus away.
    const active = document.activeElement;
    const hadFocus = old.contains(active);
    const key = hadFocus && active !== old ? focusKey(active) : null;
    const oldVideo = old.querySelector(".player video");
    const newVideo = fresh.querySelector(".player video");
    if (oldVideo && newVideo && oldVideo.getAttribute("src") === newVideo.getAttribute("src")) {
      if (newVideo.getAttribute("poster") && !oldVideo.getAttribute("poster")) oldVideo.poster = newVideo.getAttribute("poster");
      newVideo.replaceWith(oldVideo); // moved and put back in the page in the same task: it does not pause
    }
    const before = old.dataset.status;
    old.replaceWith(fresh);
    drawn(fresh);
    if (hadFocus) {
      const same = key && Array.from(fresh.querySelectorAll("a, button, video")).find(function (e) { return focusKey(e) === key; });
      (same || fresh).focus({ preventScroll: true });
    }
    paint(fresh);
    if (fresh.dataset.status !== before) {
      refreshAccount(); // what it cost: reserved, settled or given back
      announce(statusWords(fresh));
      if (FINAL.includes(fresh.dataset.status) && !FINAL.includes(before)) tellHiddenTab(fresh);
    }
    return fresh;
  }

  async function refresh(card) {
    const response = await fetch(card.dataset.cardUrl, { headers: { Accept: "text/html" } });
    if (!response.ok) return card;
    const html = await response.text();
    // The card may have been replaced meanwhile (an action done in place): swap the one on the page.
    const now = document.getElementById(card.id);
    return now ? swap(now, html) : card;
  }

  // Cards whose job the server no longer answers for (deleted in another tab): not asked about again.
  const gone = new Set();
  let timer = null; // the page's one timer: the next status check, while any card is live
  let asking = false;
  let askAgain = false; // seen again while a check was under way (sent while hidden): another at once
  const etags = []; // the last answer's ETag, for each group of STATUS_MAX cards

  function liveCards() {
    return Array.from(document.querySelectorAll(".generation[data-id]")).filter(function (card) {
      return card.dataset.settled !== "true" && !gone.has(card.id);
    });
  }

  // The next check in `delay` ms, unless one is due or under way already, or nothing is live.
  function follow(delay) {
    if (timer !== null || asking || !liveCards().length) return;
    timer = window.setTimeout(check, delay);
  }

  async function check() {
    timer = null;
    const cards = liveCards();
    asking = true;
    try {
      for (let group = 0; group * STATUS_MAX < cards.length; group++) {
        await askAbout(cards.slice(group * STATUS_MAX, (group + 1) * STATUS_MAX), group);
      }
    } finally {
      asking = false;
      follow(askAgain ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS); // cards added meanwhile are in it
      askAgain = false;
    }
  }

  // One status request for `cards`; each card then matches its job's version, and is painted.
  async function askAbout(cards, group) {
    const headers = { Accept: "application/json" };
    if (etags[group]) headers["If-None-Match"] = etags[group];
    try {
      // "no-store": the browser's cache would turn a 304 into the old answer, received now (its clock wrong).
      const ids = cards.map(function (card) { return card.dataset.id; }).join(",");
      const response = await fetch(STATUS_URL + "?ids=" + ids, { headers: headers, cache: "no-store" });
      if (response.status === 200) {
        const answer = await response.json();
        etags[group] = response.headers.get("ETag");
        learn(cards, answer.jobs, performance.now());
      } else if (response.status !== 304) {
        return; // refused or failed: asked again next time
      }
      await Promise.all(cards.map(match));
    } catch (error) {
      // A dropped request is retried on the next check.
    }
  }

  function learn(cards, jobs, at) {
    const found = new Map(jobs.map(function (job) { return [String(job.id), job]; }));
    cards.forEach(function (card) {
      const data = found.get(card.dataset.id);
      if (!data) {
        gone.add(card.id); // deleted meanwhile (in another tab): nothing more to follow
        return;
      }
      const state = followed.get(card.id) || {};
      followed.set(card.id, state);
      state.data = data;
      state.at = at;
    });
  }

  // The server's card when the job's version differs from the card's (also after a 304, so that a
  // card whose fetch failed is fetched again); then the bar and clock from the data.
  async function match(card) {
    const state = followed.get(card.id);
    let current = document.getElementById(card.id);
    if (!state || !state.data || !current) return;
    if (state.data.version !== current.dataset.version) current = await refresh(current);
    if (current) paint(current);
  }

  // Hidden: the next check in 15 s. Seen again: the title loses its news, and the page asks at once,
  // then every 2 s.
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.title = baseTitle;
    askAgain = asking && !document.hidden;
    window.clearTimeout(timer);
    timer = null;
    follow(document.hidden ? HIDDEN_POLL_MS : 0);
  });

  function watch(card) {
    const id = card.id;
    if (card.dataset.settled === "true" && !followed.has(id)) {
      paint(card); // the bar's width once (the page carries no style attribute: the CSP refuses them)
      return;
    }
    if (!followed.has(id)) followed.set(id, {});
    paint(card);
    follow(POLL_MS);
  }

  // ---- The account's lines above the form: what was spent, the credit balance ----

  // Fetched again from the server (the same template as the page's) when a job starts or ends,
  // which changes what was spent, and every half minute while the tab is seen, for the balance.
  const ACCOUNT_MS = 30000;
  let accountAsked = null;
  function refreshAccount() {
    const account = document.getElementById("account");
    if (!account || accountAsked) return;
    accountAsked = window.setTimeout(async function () {
      accountAsked = null;
      try {
        const response = await fetch(account.dataset.url, { headers: { Accept: "text/html" } });
        if (response.ok) document.getElementById("account").replaceWith(fromHtml(await response.text()));
      } catch (error) {
        // The next reason to ask asks again.
      }
    }, 300); // the changes of one moment, in one request
  }
  window.setInterval(function () { if (!document.hidden) refreshAccount(); }, ACCOUNT_MS);

  // ---- Cards in the list: a new one, and the actions done in place ----

  const history = document.getElementById("history");

  // A new job's card first in the list, followed, focused and in view.
  function insertCard(html) {
    const fresh = fromHtml(html);
    const there = document.getElementById(fresh.id);
    if (there) {
      there.replaceWith(fresh); // the same job again (a repeated one-time token)
    } else {
      const empty = history.querySelector(".empty");
      if (empty) empty.remove();
      history.prepend(fresh);
    }
    drawn(fresh);
    watch(fresh);
    fresh.scrollIntoView({ block: "center" });
    fresh.focus({ preventScroll: true });
    return fresh;
  }

  function removeCard(card) {
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    followed.delete(card.id);
    if (next) {
      next.focus({ preventScroll: true });
    } else {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.tabIndex = -1;
      empty.textContent = "No videos yet: describe one above.";
      history.appendChild(empty);
      empty.focus();
    }
  }

  // A refused action says why above the list (and in the live region); it goes with the next action.
  function showProblem(text) {
    let problem = document.getElementById("card-problem");
    if (!problem) {
      problem = document.createElement("div");
      problem.id = "card-problem";
      problem.className = "flash flash-error";
      history.insertAdjacentElement("beforebegin", problem);
    }
    problem.textContent = text;
    problem.hidden = !text;
  }

  async function act(form, card) {
    // Not `disabled`: that would take the focus away from the button, and the swap puts it back.
    if (form.dataset.busy) return;
    form.dataset.busy = "true";
    showProblem("");
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } });
      const data = await response.json().catch(function () { return {}; });
      if (!response.ok) {
        const text = data.error || "Something went wrong. Please try again.";
        showProblem(text);
        announce(text);
        return;
      }
      refreshAccount();
      if (data.deleted) {
        removeCard(card);
      } else if ("generation-" + data.id === card.id) {
        swap(document.getElementById(card.id) || card, data.html); // cancelled: the same card, changed
        watch(document.getElementById(card.id));
      } else {
        insertCard(data.html); // a re-run or a try again: a new job
        refresh(card); // the old card's buttons spent their one-time tokens
      }
      announce(data.message + (data.notice ? " " + data.notice : ""));
    } catch (error) {
      showProblem("Could not reach the server. Please try again.");
      announce("Could not reach the server. Please try again.");
    } finally {
      delete form.dataset.busy;
    }
  }

  // "Delete “…”?" in a dialog of the page's own (the CSP refuses inline handlers; confirm() is not stylable or named).
  let dialog = null;
  function ask(form, button) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "confirm-dialog";
      dialog.className = "confirm";
      dialog.setAttribute("aria-labelledby", "confirm-question");
      dialog.innerHTML = '<form method="dialog"><p class="question" id="confirm-question"></p>' +
        '<div class="actions"><button type="submit" value="keep" class="secondary small">Keep it</button>' +
        '<button type="submit" value="confirm" class="danger small">Delete</button></div></form>';
      document.body.appendChild(dialog);
    }
    dialog.querySelector("#confirm-question").textContent = form.dataset.confirm;
    dialog.returnValue = "";
    dialog.addEventListener("close", function () {
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "true";
        form.requestSubmit(button || undefined);
      } else if (button && button.isConnected) {
        button.focus();
      }
    }, { once: true });
    dialog.showModal();
    dialog.querySelector("button[value=keep]").focus(); // the safe answer first
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const card = form.closest(".generation");
    if (!card || !form.closest(".actions")) return;
    if (form.dataset.confirm && form.dataset.confirmed !== "true") {
      event.preventDefault();
      ask(form, event.submitter);
      return;
    }
    delete form.dataset.confirmed;
    // In the list, in place; on a job's own page, the ordinary post and the page it leads to.
    if (!history || !history.contains(card)) return;
    event.preventDefault();
    act(form, card);
  });

  // form.js made a job: show its card (the server's fragment) first in the history, and follow it.
  document.addEventListener("generation:created", function (event) {
    if (!history) return;
    const card = insertCard(event.detail.html);
    refreshAccount();
    announce("Your video “" + titleOf(card) + "” is on its way.");
  });

  document.querySelectorAll(".generation[data-id]").forEach(watch);
})();
