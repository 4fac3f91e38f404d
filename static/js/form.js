// The Generate form: pickers that follow the chosen model, the cost estimate, and a submit
// without reloading. The new job's card is shown by videos.js, on the "generation:created" event.
(function () {
  "use strict";

  // As the server writes it (videos/templatetags/money.py): 1 credit = 1 US cent.
  function creditsText(credits) {
    const dollars = (credits / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return credits.toLocaleString("en-US") + (credits === 1 ? " credit" : " credits") + " (US$" + dollars + ")";
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

  // A field's messages are the server's answer to what was sent: once the user changes that
  // field they no longer apply, and go (the server checks again on the next submit).
  function clearErrors(field) {
    const list = document.getElementById(field + "-errors");
    if (list) list.querySelectorAll("li:not([data-script])").forEach(function (item) { item.remove(); });
  }

  // A message of the page's own, next to its field, in the server's words; "" takes it away.
  function fieldProblem(field, text) {
    const list = document.getElementById(field + "-errors");
    if (!list) return;
    const old = list.querySelector("li[data-script]");
    if (old && old.textContent === text) return;
    if (old) old.remove();
    if (!text) return;
    const item = document.createElement("li");
    item.dataset.script = "true";
    item.textContent = text;
    list.appendChild(item);
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

  // The prompt's length as Runway counts it (UTF-16 code units, which is what a JS string's length
  // is), against the chosen model's limit (its data-max, which the pickers set): shown as the user
  // types or pastes, never cut. Returns the function that counts again.
  function promptCounter() {
    const prompt = form.querySelector("#id_prompt");
    const counter = document.getElementById("prompt-count");
    if (!prompt || !counter) return function () {};
    const count = function () {
      const promptMax = Number(prompt.dataset.max);
      const length = prompt.value.length;
      const over = length - promptMax;
      counter.textContent = length.toLocaleString("en-US") + " of " + promptMax.toLocaleString("en-US") +
        " characters" + (over > 0 ? ": " + over.toLocaleString("en-US") + " too many, shorten it to generate." : " (an emoji counts as two).");
      counter.classList.toggle("over", over > 0);
      prompt.setAttribute("aria-invalid", over > 0 ? "true" : "false");
    };
    prompt.addEventListener("input", count);
    form.addEventListener("reset", function () { setTimeout(count, 0); });
    // Ctrl+Enter (Cmd+Enter on a Mac) generates, as in most tools with a prompt.
    prompt.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    return count;
  }

  // Whether a chosen file is an image Runway takes, by its type and size, as the server would say:
  // a file it refuses is never uploaded (the server still checks what it receives, byte by byte).
  function imageProblem(file, rules) {
    if (!rules.types.includes(file.type)) return rules.notAnImage;
    if (file.size > rules.maxBytes) return rules.tooLarge.replace("{size}", (file.size / 1e6).toFixed(1));
    return "";
  }

  // A preview of the chosen image, a button to remove it, and a drop anywhere on the form.
  function imagePicker(rules) {
    const input = form.querySelector("#id_image");
    const preview = document.getElementById("image-preview");
    if (!input || !preview) return;
    const picture = preview.querySelector("img");
    const reuse = form.querySelector("input[name=from_generation][type=checkbox]");
    let shown = "";
    const forget = function () {
      if (shown) URL.revokeObjectURL(shown);
      shown = "";
      picture.removeAttribute("src");
      preview.hidden = true;
    };
    const show = function () {
      forget();
      clearErrors("image");
      fieldProblem("image", "");
      const file = input.files[0];
      if (!file) return;
      const problem = rules ? imageProblem(file, rules) : "";
      if (problem) {
        input.value = ""; // not uploaded with the form
        fieldProblem("image", problem);
        input.dispatchEvent(new Event("input", { bubbles: true })); // the pickers follow: no image now
        return;
      }
      if (reuse) reuse.checked = false; // a new file replaces the earlier video's image
      if (file.type.startsWith("image/")) {
        shown = URL.createObjectURL(file);
        picture.src = shown;
        picture.alt = "Preview of " + file.name;
      } else {
        picture.alt = file.name + " (no preview)";
      }
      preview.hidden = false;
    };
    input.addEventListener("change", show);
    form.addEventListener("reset", forget);
    document.getElementById("image-remove").addEventListener("click", function () {
      input.value = "";
      input.dispatchEvent(new Event("change", { bubbles: true }));
      input.focus();
    });
    const carriesFiles = function (event) {
      return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
    };
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) {
        if (!carriesFiles(event)) return;
        event.preventDefault(); // allows the drop
        event.dataTransfer.dropEffect = "copy";
        form.classList.add("dragging");
      });
    });
    form.addEventListener("dragleave", function (event) {
      if (!form.contains(event.relatedTarget)) form.classList.remove("dragging");
    });
    form.addEventListener("drop", function (event) {
      form.classList.remove("dragging");
      if (!carriesFiles(event) || event.dataTransfer.files.length === 0) return;
      event.preventDefault(); // or the browser opens the file instead of the page
      const chosen = new DataTransfer();
      chosen.items.add(event.dataTransfer.files[0]);
      input.files = chosen.files;
      form.querySelector("details.advanced").open = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    if (input.files.length > 0) show(); // a file the browser kept over a back/forward
  }

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
          // videos.js shows the new card.
          document.dispatchEvent(new CustomEvent("generation:created", { detail: data }));
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

  // The pickers offer only what the chosen model allows (the same table the server checks), and
  // show only the fields it takes: a hidden field is disabled, so it is not sent either.
  const pickers = document.getElementById("pickers");
  if (form && pickers) {
    const { offers, defaults, free, modelProblems } = JSON.parse(pickers.textContent);
    const button = form.querySelector("button[type=submit]");
    const estimate = document.getElementById("estimate");
    const model = form.querySelector("#id_model");
    const ratio = form.querySelector("#id_ratio");
    const resolution = form.querySelector("#id_resolution");
    const duration = form.querySelector("#id_duration");
    const audio = form.querySelector("#id_audio");
    const prompt = form.querySelector("#id_prompt");
    const promptHelp = document.getElementById("prompt-help");
    const reuse = form.querySelector("input[name=from_generation][type=checkbox]");
    const recount = promptCounter();
    const clip = form.querySelector("#id_video");
    const performance = form.querySelector("#id_performance");
    // A chosen clip's length, read by the browser from its metadata: what an edit (or, for a
    // performance, Act-Two) is billed by.
    const seconds = new Map();
    [clip, performance].forEach(function (input) {
      if (!input) return;
      input.addEventListener("change", function () {
        seconds.delete(input);
        const file = input.files[0];
        if (!file) return;
        if (input === clip && reuse) reuse.checked = false; // a new clip replaces the earlier video's
        const probe = document.createElement("video");
        probe.preload = "metadata";
        const done = function () { URL.revokeObjectURL(probe.src); update(); };
        probe.addEventListener("loadedmetadata", function () { seconds.set(input, probe.duration || 0); done(); });
        probe.addEventListener("error", done);
        probe.src = URL.createObjectURL(file);
      });
    });
    const reusing = function (kind) { return Boolean(reuse && reuse.checked && reuse.dataset.kind === kind); };
    const hasPerformance = function () { return Boolean(performance && performance.files.length > 0); };
    const hasClip = function () { return Boolean(clip && clip.files.length > 0) || reusing("clip"); };
    const hasImage = function () {
      return form.querySelector("#id_image").files.length > 0 || form.querySelector("#id_image_url").value.trim() !== "" ||
        reusing("image");
    };
    const fill = function (select, values, label) {
      const keep = select.value;
      select.replaceChildren(new Option("Default", ""));
      values.forEach(function (value) { select.add(new Option(label(value), String(value))); });
      select.value = values.map(String).includes(keep) ? keep : "";
    };
    const show = function (name, taken) {
      const wrapper = form.querySelector(".field-" + name);
      if (!wrapper) return;
      wrapper.hidden = !taken;
      wrapper.querySelectorAll("input, select, textarea").forEach(function (control) { control.disabled = !taken; });
    };
    const update = function () {
      const endpoint = hasPerformance() ? "character_performance" : hasClip() ? "video_to_video" :
        hasImage() ? "image_to_video" : "text_to_video";
      const chosen = model.value || defaults[endpoint];
      const its = offers[chosen] || {};
      // A model that cannot serve this input says so at once, in the server's words; its pickers and
      // price stay its own (those of the input it can start from), for when that input is given.
      const problem = its[endpoint] ? "" : (modelProblems[endpoint] || {})[chosen] || "";
      fieldProblem("model", problem);
      model.setAttribute("aria-invalid", problem ? "true" : "false");
      const offer = its[endpoint] || its.image_to_video || its.text_to_video || its.video_to_video ||
        its.character_performance;
      if (!offer) return;
      fill(ratio, offer.ratios, function (r) { return r; });
      fill(resolution, offer.resolutions, function (r) { return r; });
      fill(duration, offer.durations, function (d) { return d + " s"; });
      show("ratio", offer.ratios.length > 0);
      show("resolution", offer.resolutions.length > 0);
      show("duration", offer.durations.length > 0);
      show("seed", offer.seed);
      show("audio", offer.audio);
      show("negative_prompt", offer.negativePrompt);
      show("body_control", offer.bodyControl);
      show("last_image", offer.lastFrame && endpoint === "image_to_video");
      show("expression_intensity", offer.expressionIntensities.length > 0);
      prompt.dataset.max = offer.promptMax;
      if (promptHelp) {
        promptHelp.textContent = !offer.promptSent ? offer.label + " takes no description: it names the video in your history." :
          offer.promptRequired ? "" : "Optional for " + offer.label + ".";
      }
      recount();
      const measured = endpoint === "character_performance" ? seconds.get(performance) :
        endpoint === "video_to_video" ? seconds.get(clip) : 0;
      const billed = Number(duration.value) || Math.ceil(measured || 0) || offer.defaultDuration;
      showCost(offer, billed || Math.max(5, ...offer.durations));
    };
    // What the chosen model and duration cost at Runway's published prices (the server's table), or
    // at most, for a model with no published price (reserved at the ceiling).
    const showCost = function (offer, seconds) {
      const perSecond = offer.audio && audio.value === "off" ? offer.priceSilent : offer.price;
      const credits = Math.ceil(perSecond * seconds);
      const bound = offer.priceKnown ? "" : "at most ";
      estimate.textContent = "Estimated cost: " + bound + creditsText(credits) +
        (free ? " at Runway's prices; the simulator bills nothing." : offer.priceKnown ? "." : " (Runway publishes no price for " + offer.label + ").");
      button.textContent = free ? "Generate for free" : "Generate · " + bound + credits.toLocaleString("en-US") + " credits";
    };
    ["change", "input"].forEach(function (name) { form.addEventListener(name, function (event) {
      const followed = ["id_model", "id_image", "id_image_url", "id_video", "id_performance", "id_duration", "id_audio"];
      if (followed.includes(event.target.id) ||
          event.target.name === "from_generation") update();
    }); });
    update();
  }
  // What the server said of a field goes once the user changes it (the model's own message is the
  // pickers' to keep; an image's, the picker's).
  if (form) {
    form.addEventListener("input", function (event) {
      const field = (event.target.name || "").replace(/^from_generation$/, "image");
      if (field && !["model", "image", "token"].includes(field)) clearErrors(field);
      if (field === "image_url" || field === "image") clearErrors("model");
    });
    form.addEventListener("change", function (event) {
      if (event.target.name === "model") clearErrors("model");
    });
  }
  if (form) imagePicker(pickers ? JSON.parse(pickers.textContent).image : null);
})();
