// Swagger UI over this API's OpenAPI document, served from this origin (works offline).
"use strict";

window.addEventListener("DOMContentLoaded", async () => {
  const base = document.baseURI.replace(/\/$/, "");
  const spec = await (await fetch("openapi.json")).json();
  spec.servers = [{ url: base, description: "this API" }];
  window.ui = SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: (request) => {
      const key = sessionStorage.getItem("recsys.apiKey");
      if (key) request.headers["x-api-key"] = key;
      return request;
    },
  });
});
