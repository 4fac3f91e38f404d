// Tell the server the browser's time zone (a `tz` cookie), so the pages it renders, and the
// fragments it sends, show times in it (runway_project/timezones.py). Apart from the other scripts:
// it runs on every page, the login page first, before the dashboard shows a time.
(function () {
  "use strict";
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    return;
  }
  // IANA names ("Europe/Paris", "Etc/GMT+5") need no escaping in a cookie; anything else is not one.
  if (!/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) return;
  const current = document.cookie.split("; ").find(function (part) { return part.startsWith("tz="); });
  if (current === "tz=" + zone) return;
  document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax" +
    (window.location.protocol === "https:" ? "; Secure" : "");
})();
