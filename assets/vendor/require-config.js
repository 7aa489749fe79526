// Written by hutchinson_course/authoring/vendor.py: edit that, not this.
// Loaded before require.min.js and html-manager on pages with widgets (nb_ipywidgets_js in
// _config.yml). Found from this script's own address, so it works from a page at any depth.
(function () {
  var vendor = document.currentScript.src.replace(/[^/]*$/, "");

  // html-manager asks require.js for further modules (anywidget, ...) by name, relative to
  // baseUrl. Its bundled modules look for their icon fonts beside their own require.js
  // address (their webpack public path), "@jupyter-widgets/NAME" or
  // "@jupyter-widgets/html-manager/dist/libembed-amd": map those names onto the folder that
  // holds the fonts.
  window.require = {
    baseUrl: vendor + "html-manager/",
    paths: {
      "@jupyter-widgets": ".",
      "@jupyter-widgets/html-manager/dist": ".",
      anywidget: "../anywidget/index",
    },
  };

  // ipywidgets' typeset() calls MathJax 2's MathJax.Hub.Queue whenever window.MathJax exists
  // (for widget labels), which throws under MathJax 3: give it a MathJax 3 equivalent.
  document.addEventListener("DOMContentLoaded", function () {
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup || !mathjax.startup.promise) return;
    mathjax.Hub = {
      Queue: function (job) {
        var element = job && job[2];
        if (!element) return;
        mathjax.startup.promise = mathjax.startup.promise
          .then(function () { return mathjax.typesetPromise([element]); })
          .catch(function (error) { console.warn("MathJax could not typeset a widget", error); });
      },
    };
  });
})();
