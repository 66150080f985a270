// plbulk ui: a file dropped anywhere on a drop zone is sent as if picked and submitted; the
// zone says which file is picked. A running job's progress box is replaced by each
// server-sent event its stream pushes, and the page reloads to the results when it ends.
// Everything else works without this script (a reload shows the progress as it stands).
(function () {
  "use strict";
  function setUp(form) {
    var input = form.querySelector('input[type="file"]');
    var zone = form.querySelector(".drop");
    var picked = form.querySelector(".picked");
    if (!input || !zone) return;
    function show() {
      if (picked) picked.textContent = input.files.length ? "Picked: " + input.files[0].name : "";
    }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) {
        e.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () {
        zone.classList.remove("over");
      });
    });
    // A mapping file (.toml) dropped with the export goes to the mapping picker.
    var mapping = form.querySelector('input[name="mapping"]');
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      var data = new DataTransfer();
      var map = new DataTransfer();
      Array.prototype.forEach.call(e.dataTransfer.files, function (f) {
        (/\.toml$/i.test(f.name) ? map : data).items.add(f);
      });
      if (mapping && map.files.length) mapping.files = map.files;
      if (!data.files.length) return;
      input.files = data.files;
      show();
      form.requestSubmit();
    });
    form.addEventListener("submit", function () {
      var busy = form.querySelector(".busy");
      if (busy) busy.hidden = false;
    });
  }
  // A row wider than the page is scrolled to its first marked cell, so it shows without
  // scrolling.
  function showMarked(box) {
    var cell = box.querySelector("td.bad");
    if (!cell) return;
    var left = cell.offsetLeft - box.clientWidth / 3;
    if (left > 0) box.scrollLeft = left;
  }
  function watch(box) {
    if (!window.EventSource) return;
    var events = new EventSource(box.getAttribute("data-events"));
    events.addEventListener("progress", function (e) {
      box.innerHTML = e.data;
    });
    events.addEventListener("end", function () {
      events.close();
      window.location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-drop]").forEach(setUp);
    document.querySelectorAll("[data-events]").forEach(watch);
    document.querySelectorAll(".finding .scroll").forEach(showMarked);
  });
})();
