// A PaymentService client over gRPC (HTTP/2) for Node, with the API key on every call.
// Everything else is the generated code in ./gen: messages, enums and the service.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Status } from "./gen/malipo/payments/v1/payment_pb.js";
import { PaymentService } from "./gen/malipo/payments/v1/payment_service_pb.js";

export * from "./gen/malipo/payments/v1/events_pb.js";
export * from "./gen/malipo/payments/v1/money_pb.js";
export * from "./gen/malipo/payments/v1/payment_pb.js";
export * from "./gen/malipo/payments/v1/payment_service_pb.js";
export * from "./gen/malipo/payments/v1/providers_pb.js";

/** Statuses a payment never leaves (except SUCCEEDED, which a refund may reverse). */
export const FINAL_STATUSES = new Set([
  Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.REVERSED,
]);

/**
 * @param {object} options
 * @param {string} options.address "host:port" of Malipo's gRPC listener
 * @param {string} options.apiKey the tenant's API key
 * @param {boolean} [options.tls] https (TLS) instead of plaintext HTTP/2 (local use only)
 * @param {import("node:http2").SecureClientSessionOptions} [options.nodeOptions]
 *   TLS material, for mTLS too: { ca, cert, key }
 */
export function createMalipoClient({ address, apiKey, tls = false, nodeOptions }) {
  const baseUrl = `${tls ? "https" : "http"}://${address}`;
  // Our own session manager, so close() can end the HTTP/2 connection and let Node exit.
  const sessionManager = new Http2SessionManager(baseUrl, undefined, nodeOptions);
  /** @type {import("@connectrpc/connect").Interceptor} */
  const authorization = (next) => async (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: [authorization],
    sessionManager,
  });
  const client = createClient(PaymentService, transport);
  /** Close the connection; calls still running fail. */
  const close = () => sessionManager.abort();
  return Object.assign(client, { close });
}
