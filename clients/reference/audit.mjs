// Runs graphql-http's GraphQL-over-HTTP server audit against a URL; one JSON line per audit.
import { serverAudits } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node audit.mjs <graphql url>");
  process.exit(2);
}
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  const line = { id: audit.id, name: audit.name, status: result.status };
  if (result.status !== "ok") {
    line.reason = result.reason;
    if (result.response) {
      line.httpStatus = result.response.status;
      try {
        line.body = (await result.response.clone().text()).slice(0, 300);
      } catch {}
    }
  }
  console.log(JSON.stringify(line));
}
