// Show each <time> in the reader's own time zone too (the page itself says UTC). Nothing else runs here.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime").replace(" UTC", "Z").replace(" ", "T"));
  if (!isNaN(when)) { el.title = when.toLocaleString(); }
});

// The search box: names holding what is typed (any case), from /search/names, as a list of links under
// it. Enter still submits the form (names and content on /search). Arrow keys move through the list.
(function () {
  var box = document.getElementById("find");
  var list = document.getElementById("find-list");
  if (!box || !list) { return; }
  var timer = null;
  var asked = 0;
  function hide() { list.hidden = true; list.textContent = ""; }
  function show(names, more, text) {
    list.textContent = "";
    names.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.href;
      a.textContent = item.path;
      li.appendChild(a);
      list.appendChild(li);
    });
    var li = document.createElement("li");
    li.className = "all";
    var a = document.createElement("a");
    a.href = "/search?q=" + encodeURIComponent(text);
    a.textContent = names.length ? (more ? "More names, and text in files…" : "Text in files…")
                                 : "No name holds this: search text in files…";
    li.appendChild(a);
    list.appendChild(li);
    list.hidden = false;
  }
  function ask() {
    var text = box.value.trim();
    if (!text) { hide(); return; }
    var mine = ++asked;
    fetch("/search/names?q=" + encodeURIComponent(text), {credentials: "same-origin",
                                                          headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {names: [], more: false}; })
      .then(function (data) { if (mine === asked) { show(data.names || [], data.more, text); } })
      .catch(function () { /* the list stays as it was; Enter still searches */ });
  }
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { hide(); }
    if (event.key === "ArrowDown" && !list.hidden) {
      var first = list.querySelector("a");
      if (first) { event.preventDefault(); first.focus(); }
    }
  });
  list.addEventListener("keydown", function (event) {
    var here = document.activeElement;
    if (!here || here.tagName !== "A") { return; }
    var item = here.parentNode;
    if (event.key === "ArrowDown" && item.nextElementSibling) {
      event.preventDefault(); item.nextElementSibling.querySelector("a").focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      if (item.previousElementSibling) { item.previousElementSibling.querySelector("a").focus(); } else { box.focus(); }
    } else if (event.key === "Escape") { hide(); box.focus(); }
  });
  document.addEventListener("click", function (event) {
    if (!list.contains(event.target) && event.target !== box) { hide(); }
  });
})();
