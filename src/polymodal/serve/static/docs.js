// A reader for the server's OpenAPI schema, served from the package (Swagger UI would need a CDN).
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const root = document.getElementById("endpoints");
  const spec = await (await fetch("/openapi.json")).json();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const h = document.createElement("h2");
      h.textContent = `${method.toUpperCase()} ${path}`;
      const p = document.createElement("p");
      p.textContent = op.description || op.summary || "";
      root.append(h, p);
      const content = op.requestBody && op.requestBody.content;
      if (content) {
        const pre = document.createElement("pre");
        pre.textContent = Object.entries(content)
          .map(([type, c]) => `${type}: ${JSON.stringify(c.schema.properties || c.schema, null, 1)}`).join("\n");
        root.append(pre);
      }
    }
  }
});
