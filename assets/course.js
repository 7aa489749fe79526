// The course's fixes to names and landmarks that the theme and ipywidgets leave out (html_js_files
// in _config.yml). tests/test_site.py runs axe-core on every page, in both themes, with them.
(() => {
  // A button's accessible name must contain its visible text (WCAG 2.5.3, "label in name"), so
  // that a speech-input user can say what they see.
  function nameSearchButtons() {
    for (const button of document.querySelectorAll(".search-button-field")) {
      // Its text, "Search Ctrl+K", shortcut included: what is seen is what is announced.
      button.setAttribute("aria-label", button.textContent.replace(/\s+/g, " ").trim());
    }
  }

  // The switch shows one icon per mode, named by its title ("Light", "Dark", "System Settings":
  // the <i>'s attribute, or the <title> of the <svg> Font Awesome replaces it with); its name says
  // which one shows.
  function iconName(icon) {
    const title = icon.getAttribute("title") || icon.querySelector("title")?.textContent;
    return title ? title.trim() : icon.dataset.mode;
  }

  function nameThemeSwitches() {
    const mode = document.documentElement.dataset.mode || "auto";
    for (const button of document.querySelectorAll(".theme-switch-button")) {
      const icon = button.querySelector(`.theme-switch[data-mode="${mode}"]`);
      button.setAttribute("aria-label", `Color mode: ${icon ? iconName(icon) : mode}`);
    }
  }

  // myst-nb names every folded cell's summary "Toggle hidden content", which hides the text it
  // shows ("Show code cell source"); without the attribute that text is the name.
  function nameFoldedCells() {
    for (const summary of document.querySelectorAll("details.hide > summary[aria-label]")) {
      summary.removeAttribute("aria-label");
    }
  }

  // The sidebar's first item (the site's title, a link home) sits outside any landmark; the
  // sidebar is the site's navigation, so it becomes one, named apart from the chapter list inside.
  function markSidebar() {
    const sidebar = document.getElementById("pst-primary-sidebar");
    if (sidebar && !sidebar.hasAttribute("role")) {
      sidebar.setAttribute("role", "navigation");
      sidebar.setAttribute("aria-label", "Site");
    }
  }

  // ipywidgets draws a slider's handle as a div with role "slider" and no name; its description
  // is the label beside it.
  let lastId = 0;
  function nameSliderHandles(root) {
    for (const handle of root.querySelectorAll(".noUi-handle:not([aria-labelledby]):not([aria-label])")) {
      const slider = handle.closest(".widget-slider, .widget-hslider, .widget-vslider");
      const label = slider && slider.querySelector(".widget-label");
      if (!label || !label.textContent.trim()) continue;
      if (!label.id) {
        lastId += 1;
        label.id = `hc-slider-label-${lastId}`;
      }
      handle.setAttribute("aria-labelledby", label.id);
    }
  }

  function start() {
    nameSearchButtons();
    nameThemeSwitches();
    nameFoldedCells();
    markSidebar();
    nameSliderHandles(document);
    new MutationObserver(nameThemeSwitches).observe(document.documentElement, {
      attributes: true,
      attributeFilter: ["data-mode"],
    });
    // Widgets are drawn after the page loads, from their saved state; one pass per frame at most.
    let pending = false;
    new MutationObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        nameSliderHandles(document);
      });
    }).observe(document.body, {
      childList: true,
      subtree: true,
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
