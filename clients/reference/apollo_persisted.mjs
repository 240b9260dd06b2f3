// Apollo Client 4 with automatic persisted queries, as the web admin is set up, against a server.
//
//   node apollo_persisted.mjs <http://host:port> [<json variables>]
//
// Runs the same query twice (the second time past the cache) and prints one JSON line:
//   {"results": [data, data], "requests": [{method, url, body, status, response}, ...]}
// where `requests` are the HTTP requests Apollo actually made, in order.
import { createHash } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, rawVariables = "{}"] = process.argv.slice(2);
const variables = JSON.parse(rawVariables);

const requests = [];

async function recordingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const text = await response.clone().text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  requests.push({
    method: init.method ?? "GET",
    url: String(input),
    body: typeof init.body === "string" ? JSON.parse(init.body) : null,
    status: response.status,
    response: parsed,
  });
  return response;
}

const persisted = createPersistedQueryLink({
  sha256: (query) => createHash("sha256").update(query).digest("hex"),
  useGETForHashedQueries: true,
});
const http = new HttpLink({ uri: `${url}/graphql`, fetch: recordingFetch });

const client = new ApolloClient({
  link: ApolloLink.from([persisted, http]),
  cache: new InMemoryCache(),
});

const STORE = gql`
  query PersistedStore($id: ID!) {
    node(id: $id) {
      id
      ... on Store {
        name
      }
    }
  }
`;

try {
  const results = [];
  for (let i = 0; i < 2; i += 1) {
    const result = await client.query({ query: STORE, variables, fetchPolicy: "network-only" });
    results.push(result.data ?? null);
  }
  process.stdout.write(`${JSON.stringify({ results, requests })}\n`);
} catch (error) {
  process.stdout.write(
    `${JSON.stringify({ failed: String(error?.stack ?? error), requests })}\n`,
  );
  process.exitCode = 1;
}
