// The video cards on the page: live status, and the new card the form (form.js) announces.
(function () {
  "use strict";
  const POLL_MS = 2000;

  function render(card, data) {
    card.className = "generation status-" + data.status;
    card.querySelector(".status-label").textContent = data.status_label;
    const bar = card.querySelector(".progress");
    bar.hidden = data.is_final;
    bar.setAttribute("aria-valuenow", data.progress);
    bar.querySelector(".progress-bar").style.width = data.progress + "%";
    bar.querySelector(".progress-text").textContent = data.progress + "%";
    const message = card.querySelector(".message");
    message.textContent = data.message;
    message.hidden = !data.message;
    const player = card.querySelector(".player");
    if (data.output_url && !player.querySelector("video")) {
      const video = document.createElement("video");
      video.controls = true;
      video.preload = "metadata";
      video.src = data.output_url;
      if (data.poster_url) video.poster = data.poster_url;
      player.appendChild(video);
    }
    if (data.is_final) card.querySelectorAll(".actions form[action$='/cancel/']").forEach(function (f) { f.remove(); });
    const timing = card.querySelector(".timing");
    if (timing) {
      let text = data.is_final ? "" : clock(data.elapsed_seconds) + " so far";
      if (!data.is_final && data.estimated_seconds) {
        text += ", about " + clock(Math.max(0, data.estimated_seconds - data.elapsed_seconds)) + " left";
      }
      timing.textContent = text;
      timing.hidden = !text;
    }
    const cost = card.querySelector(".cost");
    if (cost && data.cost) cost.textContent = "· " + (data.cost.final ? "" : "about ") + creditsText(data.cost.credits);
    card.dataset.settled = data.settled ? "true" : "false";
  }

  // As the server writes it (videos/templatetags/money.py): 1 credit = 1 US cent.
  function creditsText(credits) {
    const dollars = (credits / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return credits.toLocaleString("en-US") + (credits === 1 ? " credit" : " credits") + " (US$" + dollars + ")";
  }

  function clock(seconds) {
    const s = Math.round(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // The bar's width from the card's progress (the page carries no style attribute: the CSP refuses them).
  function sizeBar(card) {
    const bar = card.querySelector(".progress");
    bar.querySelector(".progress-bar").style.width = bar.getAttribute("aria-valuenow") + "%";
  }

  function watch(card) {
    sizeBar(card);
    if (card.dataset.settled === "true" || card.dataset.watching) return;
    card.dataset.watching = "1";
    const tick = async function () {
      try {
        const response = await fetch(card.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (response.ok) render(card, await response.json());
      } catch (error) {
        // A dropped request is retried on the next tick.
      }
      // An ended job may still be settling ("Cancelling…" until Runway's task is deleted).
      if (card.dataset.settled !== "true") setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
  }

  // A form that asks first (Delete): no inline handler, the CSP refuses them.
  document.addEventListener("submit", function (event) {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // form.js made a job: show its card (the server's fragment) first in the history, and follow it.
  document.addEventListener("generation:created", function (event) {
    const history = document.getElementById("history");
    if (!history) return;
    const empty = history.querySelector(".empty");
    if (empty) empty.remove();
    history.insertAdjacentHTML("afterbegin", event.detail.html);
    watch(history.firstElementChild);
  });

  document.querySelectorAll(".generation").forEach(watch);
})();
