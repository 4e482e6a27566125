// Indelible console: the only script the pages load (the CSP allows no other, and no inline
// script). It shows each <time datetime="…Z"> in the viewer's own time zone, keeping UTC in
// the title so hovering shows it. Without script the page still reads, in UTC.
"use strict";
(function () {
  function localise() {
    var format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "short"
    });
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) continue;
      if (!el.title) el.title = el.textContent;
      el.textContent = format.format(at);
      el.setAttribute("data-localised", "1");
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localise);
  } else {
    localise();
  }
})();
