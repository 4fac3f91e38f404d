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
      player.appendChild(video);
    }
    if (data.is_final) card.querySelectorAll(".actions form[action$='/cancel/']").forEach(function (f) { f.remove(); });
    card.dataset.final = data.is_final ? "true" : "false";
  }

  function watch(card) {
    if (card.dataset.final === "true" || card.dataset.watching) return;
    card.dataset.watching = "1";
    const tick = async function () {
      try {
        const response = await fetch(card.dataset.statusUrl, { headers: { Accept: "application/json" } });
        if (response.ok) render(card, await response.json());
      } catch (error) {
        // A dropped request is retried on the next tick.
      }
      if (card.dataset.final !== "true") setTimeout(tick, POLL_MS);
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
          const history = document.getElementById("history");
          const empty = history.querySelector(".empty");
          if (empty) empty.remove();
          history.insertAdjacentHTML("afterbegin", data.html);
          watch(history.firstElementChild);
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

  document.querySelectorAll(".generation").forEach(watch);
})();
