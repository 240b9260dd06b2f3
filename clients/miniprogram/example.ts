// Sign in → quote → place → pay, typed by the generated types (`npm run codegen`).
// The transport is the page's own (wx.request in the mini-program): it posts
// `{query, operationName, variables}` with the document of that name from *.graphql.
import type {
  Channel,
  ErrorCode,
  LoginWithSmsCodeMutation,
  LoginWithSmsCodeMutationVariables,
  OrderDetailQuery,
  OrderDetailQueryVariables,
  OrderFieldsFragment,
  OrderLineInput,
  PayOrderMutation,
  PayOrderMutationVariables,
  PlaceOrderMutation,
  PlaceOrderMutationVariables,
  ProblemFragment,
  QuoteCartQuery,
  QuoteCartQueryVariables,
  RequestLoginCodeMutation,
  RequestLoginCodeMutationVariables,
} from "./generated/graphql";

/** The operations of this flow: name → [data, variables]. */
export interface CheckoutOperations {
  RequestLoginCode: [RequestLoginCodeMutation, RequestLoginCodeMutationVariables];
  LoginWithSmsCode: [LoginWithSmsCodeMutation, LoginWithSmsCodeMutationVariables];
  QuoteCart: [QuoteCartQuery, QuoteCartQueryVariables];
  PlaceOrder: [PlaceOrderMutation, PlaceOrderMutationVariables];
  PayOrder: [PayOrderMutation, PayOrderMutationVariables];
  OrderDetail: [OrderDetailQuery, OrderDetailQueryVariables];
}

/** Sends one named operation, with the member's access token once signed in. */
export type Send = <Name extends keyof CheckoutOperations>(
  operationName: Name,
  variables: CheckoutOperations[Name][1],
  token?: string,
) => Promise<CheckoutOperations[Name][0]>;

/** A mutation refused with a code: nothing changed on the server. */
export class Refused extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

function check(errors: readonly ProblemFragment[]): void {
  const [first] = errors;
  if (first !== undefined) {
    throw new Refused(first.code, first.message);
  }
}

/** What the cart page shows before the member taps 去结算. */
export interface CartSummary {
  placeable: boolean;
  total: string;
  problems: string[];
}

export function summarize(quote: QuoteCartQuery["quoteOrder"]): CartSummary {
  const problems = quote.lines.flatMap((line) =>
    line.problem === null ? [] : [`${line.sku?.name ?? "?"}: ${line.problem}`],
  );
  if (quote.storeProblem !== null) {
    problems.push(`store: ${quote.storeProblem}`);
  }
  return { placeable: quote.placeable, total: quote.total.display, problems };
}

export interface Checkout {
  phone: string;
  /** The texted code, as the member types it. */
  askCode: () => Promise<string>;
  /** The id kept in wx.setStorageSync while signed out: the visitor's events follow them in. */
  deviceId: string | null;
  storeId: string;
  channel: Extract<Channel, "PICKUP" | "DINE_IN">;
  lines: OrderLineInput[];
  /** Made once per checkout, so a retried PlaceOrder returns the same order. */
  idempotencyKey: string;
}

/** Signs in, prices the cart, places the order and pays it; the paid order comes back. */
export async function checkout(send: Send, order: Checkout): Promise<OrderFieldsFragment> {
  check((await send("RequestLoginCode", { phone: order.phone })).requestLoginCode.errors);
  const { login } = await send("LoginWithSmsCode", {
    phone: order.phone,
    code: await order.askCode(),
    deviceId: order.deviceId,
  });
  check(login.errors);
  if (login.token === null) {
    throw new Refused("UNAUTHENTICATED", "no token");
  }
  const token = login.token;

  const cart = { channel: order.channel, storeId: order.storeId, lines: order.lines };
  const { quoteOrder } = await send("QuoteCart", { input: cart }, token);
  const summary = summarize(quoteOrder);
  if (!summary.placeable) {
    throw new Refused("NOT_AVAILABLE", summary.problems.join("; "));
  }

  const { placeOrder } = await send(
    "PlaceOrder",
    { input: { ...cart, idempotencyKey: order.idempotencyKey } },
    token,
  );
  check(placeOrder.errors);
  const placed = placeOrder.order;
  if (placed === null) {
    throw new Refused("NOT_FOUND", "no order");
  }
  if (placed.total.fen !== quoteOrder.total.fen) {
    throw new Refused("INVALID_INPUT", `total moved from ${quoteOrder.total.display}`);
  }

  const { payOrder } = await send("PayOrder", { orderId: placed.id }, token);
  check(payOrder.errors);
  const { order: paid } = await send("OrderDetail", { id: placed.id }, token);
  if (paid === null || paid.status !== "PAID") {
    throw new Refused("INVALID_TRANSITION", `order is ${paid?.status ?? "gone"}`);
  }
  return paid;
}
