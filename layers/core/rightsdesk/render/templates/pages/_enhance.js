(function () {
  "use strict";
  // Progressive enhancement only: without this script every section is shown and the form still works.
  var form = document.querySelector("form[data-enhance]");
  if (!form) return;
  function chosen(name) {
    var input = form.querySelector('input[name="' + name + '"]:checked');
    return input ? input.value : "";
  }
  function update() {
    var current = { type: chosen("type"), relationship: chosen("relationship") };
    Array.prototype.forEach.call(form.querySelectorAll("[data-show-when]"), function (section) {
      var rule = section.getAttribute("data-show-when").split(":");
      var show = rule[1].split(" ").indexOf(current[rule[0]]) !== -1;
      section.hidden = !show;
      // A hidden choice must not be submitted behind the person's back.
      Array.prototype.forEach.call(section.querySelectorAll("input, textarea"), function (input) {
        input.disabled = !show;
      });
    });
    var label = form.querySelector("[data-label-rectification]");
    if (label) {
      label.textContent = current.type === "rectification"
        ? label.getAttribute("data-label-rectification")
        : label.getAttribute("data-label-default");
    }
  }
  form.addEventListener("change", update);
  update();
})();
