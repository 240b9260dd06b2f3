// The npm `graphql-ws` client, as the web admin and Node partners use it, against a server.
//
//   node graphql_ws.mjs <http://host:port> <scenario> [<json options>]
//
// Options: {"storeId", "skuIds", "token"}. Prints one JSON object a line:
//   {"event": "connected" | "closed" | "next" | "error" | "complete" | "done", "sub", ...}
// and runs until stdin closes (the test's signal to stop), except `refused`, which ends itself.
//
// Scenarios:
//   stock      stockChanged(storeId, skuIds) on an anonymous connection
//   staff      lowStockAlerts(storeIds: [storeId]) with connectionParams.authorization, then
//              stockChanged(storeId, skuIds) on the same socket if skuIds are given
//   refused    lowStockAlerts without credentials, then stockChanged on the same connection
//   reconnect  stockChanged that retries for ever, resubscribing after each reconnect
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, scenario, rawOptions = "{}"] = process.argv.slice(2);
const options = JSON.parse(rawOptions);

const STOCK = `subscription Stock($storeId: ID!, $skuIds: [ID!]) {
  stockChanged(storeId: $storeId, skuIds: $skuIds) { sku { id } available soldOut version }
}`;
const ALERTS = `subscription Alerts($storeIds: [ID!]!) {
  lowStockAlerts(storeIds: $storeIds) { sku { id } available threshold }
}`;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function describe(error) {
  if (Array.isArray(error)) return { errors: error }; // GraphQL errors from the server
  if (error && typeof error === "object" && "code" in error && "reason" in error) {
    return { closeCode: error.code, reason: error.reason }; // a CloseEvent
  }
  return { message: String(error?.message ?? error) };
}

let connections = 0;
let closes = 0;

function client(extra = {}) {
  return createClient({
    url: url.replace(/^http/, "ws") + "/graphql",
    webSocketImpl: WebSocket,
    on: {
      connected: () => {
        connections += 1;
        emit("connected", { connections });
      },
      closed: (event) => {
        closes += 1;
        emit("closed", { closes, code: event?.code });
      },
    },
    ...extra,
  });
}

function subscribe(ws, sub, query, variables, onNext = () => {}) {
  return new Promise((resolve) => {
    ws.subscribe(
      { query, variables },
      {
        next: (payload) => {
          emit("next", { sub, payload });
          onNext(payload);
        },
        error: (error) => {
          emit("error", { sub, ...describe(error) });
          resolve();
        },
        complete: () => {
          emit("complete", { sub });
          resolve();
        },
      },
    );
  });
}

function untilStdinCloses() {
  return new Promise((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
}

const stockVariables = { storeId: options.storeId, skuIds: options.skuIds ?? null };

async function main() {
  if (scenario === "stock") {
    const ws = client();
    subscribe(ws, "stock", STOCK, stockVariables);
    await untilStdinCloses();
    await ws.dispose();
  } else if (scenario === "staff") {
    const ws = client({ connectionParams: { authorization: `Bearer ${options.token}` } });
    subscribe(ws, "alerts", ALERTS, { storeIds: [options.storeId] });
    // The same socket also carries the stock of the SKUs asked for, if any.
    if (options.skuIds) subscribe(ws, "stock", STOCK, stockVariables);
    await untilStdinCloses();
    await ws.dispose();
  } else if (scenario === "refused") {
    // Not lazy: the socket stays open between operations, so we can see it outlive the refusal.
    const ws = client({ lazy: false, retryAttempts: 0 });
    await subscribe(ws, "alerts", ALERTS, { storeIds: [options.storeId] });
    let unsubscribe;
    await new Promise((resolve, reject) => {
      unsubscribe = ws.subscribe(
        { query: STOCK, variables: stockVariables },
        {
          next: (payload) => {
            emit("next", { sub: "stock", payload });
            resolve();
          },
          error: (error) => reject(new Error(JSON.stringify(describe(error)))),
          complete: () => resolve(),
        },
      );
    });
    unsubscribe();
    emit("done", { connections, closes });
    await ws.dispose();
  } else if (scenario === "reconnect") {
    const ws = client({
      retryAttempts: Infinity,
      shouldRetry: () => true,
      // Try again soon: the test restarts the server at once.
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 200)),
    });
    subscribe(ws, "stock", STOCK, stockVariables);
    await untilStdinCloses();
    await ws.dispose();
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    emit("failed", { message: String(error?.stack ?? error) });
    process.exit(1);
  },
);
