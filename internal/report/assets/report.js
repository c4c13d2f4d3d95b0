// Vigil report: sortable tables, and the window chooser of the
// distribution charts. No library, no network.
(function () {
  "use strict";
  var dataEl = document.getElementById("vigil-data");
  var data = dataEl ? JSON.parse(dataEl.textContent) : null;

  // Sortable tables: a click on a th[data-sort] sorts by that column's
  // td[data-v] values (numbers when they parse), again to reverse.
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
        th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
        rows.sort(function (a, b) {
          var x = a.cells[idx].getAttribute("data-v"), y = b.cells[idx].getAttribute("data-v");
          var nx = parseFloat(x), ny = parseFloat(y);
          if (!isNaN(nx) && !isNaN(ny)) { return (nx - ny) * dir; }
          return String(x).localeCompare(String(y)) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Distribution charts: moving the chooser redraws the current bars from
  // the embedded data (the reference bars stay).
  if (!data) { return; }
  var byName = {};
  (data.Features || []).forEach(function (f) { byName[f.Name] = f; });
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function label(t, f, i) {
    // as html.go's windowLabel: "2006-01-02 15:04 · method score[ · drift]"
    var d = new Date(t);
    var s = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    var v = f.Score[i];
    s += " · " + f.Method + " " + (v === null ? "-" : String(Number(v.toPrecision(4))));
    return f.Drifted[i] ? s + " · drift" : s;
  }
  document.querySelectorAll("select.window-chooser").forEach(function (sel) {
    var feature = byName[sel.getAttribute("data-feature")];
    if (feature && feature.Dist && feature.Dist.Cur) {
      var chosen = sel.value;
      sel.textContent = "";
      feature.Dist.Cur.forEach(function (cur, i) {
        if (!cur) { return; }
        var o = document.createElement("option");
        o.value = String(i);
        o.textContent = label(data.Windows[i], feature, i);
        o.selected = String(i) === chosen;
        sel.appendChild(o);
      });
    }
    sel.addEventListener("change", function () {
      var f = byName[sel.getAttribute("data-feature")];
      var svg = document.querySelector('svg[data-chart="distribution"][data-feature="' + sel.getAttribute("data-feature") + '"]');
      if (!f || !svg) { return; }
      var i = parseInt(sel.value, 10);
      var cur = (f.Dist.Cur || [])[i] || [];
      var total = cur.reduce(function (a, b) { return a + b; }, 0);
      var top = parseFloat(svg.getAttribute("data-top"));
      svg.querySelectorAll("rect.cur[data-bin]").forEach(function (r) {
        var k = parseInt(r.getAttribute("data-bin"), 10);
        var share = total > 0 ? (cur[k] || 0) / total : 0;
        var base = parseFloat(r.getAttribute("y")) + parseFloat(r.getAttribute("height"));
        var hgt = Math.min(share / top, 1) * (base - 14);
        r.setAttribute("y", (base - hgt).toFixed(1));
        r.setAttribute("height", hgt.toFixed(1));
        var t = r.querySelector("title");
        if (t) { t.textContent = "current " + f.Dist.Bins[k] + ": " + (share * 100).toFixed(2) + "%"; }
      });
      if (window.history && window.history.replaceState && location.protocol !== "file:") {
        var u = new URL(location.href);
        u.searchParams.set("window", data.Windows[i]);
        window.history.replaceState(null, "", u.toString());
      }
    });
  });
})();
