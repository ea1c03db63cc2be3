// Starts Swagger UI on /api/docs from a file (the app's Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  function start() {
    var node = document.getElementById("swagger-ui");
    if (!node || !window.SwaggerUIBundle) return;
    window.SwaggerUIBundle({
      url: node.getAttribute("data-openapi-url"),
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: false,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
