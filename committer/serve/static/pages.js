// Show each <time> in the reader's own time zone too (the page itself says UTC). Nothing else runs here.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime").replace(" UTC", "Z").replace(" ", "T"));
  if (!isNaN(when)) { el.title = when.toLocaleString(); }
});
