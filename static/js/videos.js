// Live status for the video cards on the page, and a form that submits without reloading.
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

  // Each field's messages go next to it; the rest above the form.
  function showErrors(errors) {
    document.querySelectorAll("#generate-form .errorlist").forEach(function (list) { list.replaceChildren(); });
    Object.entries(errors).forEach(function ([field, fieldErrors]) {
      const list = document.getElementById(field + "-errors") || document.getElementById("__all__-errors");
      fieldErrors.forEach(function (error) {
        const item = document.createElement("li");
        item.textContent = error.message;
        list.appendChild(item);
      });
      if (field !== "prompt" && field !== "__all__") form.querySelector("details.advanced").open = true;
    });
  }

  // A word from the server beside the new card, e.g. that the job waits for the queue.
  function showNotice(text) {
    const old = document.getElementById("queue-notice");
    if (old) old.remove();
    if (!text) return;
    const notice = document.createElement("div");
    notice.id = "queue-notice";
    notice.className = "flash flash-warning";
    notice.setAttribute("role", "status");
    notice.textContent = text;
    form.insertAdjacentElement("beforebegin", notice);
  }

  const form = document.getElementById("generate-form");
  if (form) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const response = await fetch(form.action || window.location.pathname, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/json" },
        });
        const data = await response.json();
        if (response.ok) {
          showErrors({});
          form.reset();
          // A new one-time token: the next click is a new request, a repeat of this one is not.
          form.querySelector("input[name=token]").value = data.token;
          // reset() fires no change event: let the pickers follow the model they show again.
          form.querySelector("#id_model").dispatchEvent(new Event("change", { bubbles: true }));
          const history = document.getElementById("history");
          const empty = history.querySelector(".empty");
          if (empty) empty.remove();
          history.insertAdjacentHTML("afterbegin", data.html);
          watch(history.firstElementChild);
          showNotice(data.notice);
        } else {
          showErrors(data.errors || { __all__: [{ message: "Something went wrong. Please try again." }] });
        }
      } catch (error) {
        showErrors({ __all__: [{ message: "Could not reach the server. Please try again." }] });
      } finally {
        button.disabled = false;
      }
    });
  }

  // The pickers offer only what the chosen model allows (the same table the server checks).
  const pickers = document.getElementById("pickers");
  if (form && pickers) {
    const { offers, defaults, prices, free } = JSON.parse(pickers.textContent);
    const button = form.querySelector("button[type=submit]");
    const estimate = document.getElementById("estimate");
    const model = form.querySelector("#id_model");
    const ratio = form.querySelector("#id_ratio");
    const duration = form.querySelector("#id_duration");
    const seed = form.querySelector("#id_seed");
    const hasImage = function () {
      return form.querySelector("#id_image").files.length > 0 || form.querySelector("#id_image_url").value.trim() !== "";
    };
    const fill = function (select, values, label) {
      const keep = select.value;
      select.replaceChildren(new Option("Default", ""));
      values.forEach(function (value) { select.add(new Option(label(value), String(value))); });
      select.value = values.map(String).includes(keep) ? keep : "";
    };
    const update = function () {
      const endpoint = hasImage() ? "image_to_video" : "text_to_video";
      const chosen = model.value || defaults[endpoint];
      const offer = (offers[chosen] || {})[endpoint];
      model.setCustomValidity(offer ? "" : "This model cannot make a video " + (hasImage() ? "from an image." : "from text alone."));
      if (!offer) return;
      fill(ratio, offer.ratios, function (r) { return r; });
      fill(duration, offer.durations, function (d) { return d + " s"; });
      seed.disabled = !offer.seed;
      showCost(chosen, Number(duration.value) || offer.defaultDuration);
    };
    // What the chosen model and duration cost at Runway's published prices (the server's table).
    const showCost = function (chosen, seconds) {
      const credits = prices[chosen] * seconds;
      estimate.textContent = "Estimated cost: " + creditsText(credits) +
        (free ? " at Runway's prices; the simulator bills nothing." : ".");
      button.textContent = free ? "Generate for free" : "Generate · " + credits.toLocaleString("en-US") + " credits";
    };
    ["change", "input"].forEach(function (name) { form.addEventListener(name, function (event) {
      if (["id_model", "id_image", "id_image_url", "id_duration"].includes(event.target.id)) update();
    }); });
    update();
  }

  // A form that asks first (Delete): no inline handler, the CSP refuses them.
  document.addEventListener("submit", function (event) {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.querySelectorAll(".generation").forEach(watch);
})();
