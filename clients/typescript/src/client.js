// A PaymentService client over gRPC (HTTP/2) for Node, with what the Python helper adds
// (clients/python/src/malipo/client): the API key on every call, a deadline on every unary
// call, retries of UNAVAILABLE and DEADLINE_EXCEEDED that reuse the idempotency key and wait
// at least the server's RetryInfo delay, decoded google.rpc error details, and watch(),
// which reconnects and resumes from the last sequence by itself.
// Everything else is the generated code in ./gen: messages, enums and the service.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  BadRequestSchema, ErrorInfoSchema, RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { Status } from "./gen/malipo/payments/v1/payment_pb.js";
import { PaymentService } from "./gen/malipo/payments/v1/payment_service_pb.js";

export * from "./gen/malipo/payments/v1/events_pb.js";
export * from "./gen/malipo/payments/v1/money_pb.js";
export * from "./gen/malipo/payments/v1/payment_pb.js";
export * from "./gen/malipo/payments/v1/payment_service_pb.js";
export * from "./gen/malipo/payments/v1/providers_pb.js";
export { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema };
export { Code, ConnectError };

/** Statuses a payment never leaves (except SUCCEEDED, which a refund may reverse). */
export const FINAL_STATUSES = new Set([
  Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.REVERSED,
]);

export const DEFAULT_TIMEOUT_MS = 10_000;

/** Both can mean "the server did it but the answer was lost": safe to retry only because
 * every attempt carries the same idempotency key. */
const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded]);

/**
 * How often and how patiently to retry; `attempts` counts the first call too.
 * @typedef {{ attempts?: number, initialBackoffMs?: number, maxBackoffMs?: number,
 *   multiplier?: number }} RetryPolicy
 */
const DEFAULT_RETRY = { attempts: 4, initialBackoffMs: 200, maxBackoffMs: 3000, multiplier: 2 };

/** A fresh random key. Prefer your own, stored with your record before the call. */
export const newIdempotencyKey = () => `mc-${randomUUID()}`;

/**
 * A ConnectError with the google.rpc details the server attached, decoded: `errorInfo`
 * (with `reason`) on every error, `badRequest` on INVALID_ARGUMENT, `retryInfo` (and
 * `retryDelayMs`) on UNAVAILABLE and RESOURCE_EXHAUSTED. Undefined where none was sent.
 */
export class MalipoError extends ConnectError {
  /** @param {ConnectError} error */
  constructor(error) {
    super(error.rawMessage, error.code, error.metadata, undefined, error.cause ?? error);
    // ConnectError's own instanceof test goes by this name: keep it one.
    this.name = "ConnectError";
    this.details = error.details;
    this.isWireError = error.isWireError;
    /** @type {import("./gen/google/rpc/error_details_pb.js").ErrorInfo | undefined} */
    this.errorInfo = error.findDetails(ErrorInfoSchema)[0];
    /** @type {import("./gen/google/rpc/error_details_pb.js").BadRequest | undefined} */
    this.badRequest = error.findDetails(BadRequestSchema)[0];
    /** @type {import("./gen/google/rpc/error_details_pb.js").RetryInfo | undefined} */
    this.retryInfo = error.findDetails(RetryInfoSchema)[0];
    /** ErrorInfo's machine-readable reason ("IDEMPOTENCY_KEY_REUSED", ...), or "". */
    this.reason = this.errorInfo?.reason ?? "";
    const delay = this.retryInfo?.retryDelay;
    /** The server's minimum wait before a retry, when it gave one. */
    this.retryDelayMs = delay
      ? Number(delay.seconds) * 1000 + Math.floor(delay.nanos / 1e6) : undefined;
  }

  /** By the prototype chain: ConnectError's own test would accept any ConnectError.
   * @param {unknown} value */
  static [Symbol.hasInstance](value) {
    return typeof value === "object" && value !== null
      && Object.prototype.isPrototypeOf.call(MalipoError.prototype, value);
  }
}

/** Node.js error codes of a connection or HTTP/2 stream that broke under a call, which
 * connect-node reports as ABORTED (ECONNRESET, a destroyed stream). */
const BROKEN_CONNECTION = new Set([
  "ECONNRESET", "EPIPE", "ERR_STREAM_DESTROYED", "ERR_HTTP2_INVALID_STREAM",
]);

/** Whether `error` came from the connection under the call rather than from the server
 * (whose statuses carry no Node.js error as their cause).
 * @param {ConnectError} error @returns {boolean} */
function brokeUnderTheCall(error) {
  /** @type {unknown} */
  let reason = error.cause;
  // A few causes deep at most: connect-node wraps once; the bound guards a cycle.
  for (let depth = 0; reason instanceof Error && depth < 8; depth += 1) {
    if (BROKEN_CONNECTION.has(String(/** @type {{ code?: unknown }} */ (reason).code))) {
      return true;
    }
    reason = reason.cause;
  }
  return false;
}

/** Any error as a MalipoError (a ConnectError with decoded details). connect-node reports
 * a connection that broke under a call as CANCELED, or as ABORTED when the socket was reset;
 * unless the caller's own `signal` cancelled it, it is UNAVAILABLE, as gRPC's other clients
 * say (and retryable). A server's own ABORTED stays ABORTED.
 * @param {unknown} reason @param {AbortSignal} [signal] @returns {MalipoError} */
export function malipoError(reason, signal) {
  if (reason instanceof MalipoError) return reason;
  const error = ConnectError.from(reason);
  const broken = error.code === Code.Canceled
    || (error.code === Code.Aborted && brokeUnderTheCall(error));
  if (broken && !signal?.aborted) {
    return new MalipoError(new ConnectError(error.rawMessage, Code.Unavailable, error.metadata,
      undefined, error));
  }
  return new MalipoError(error);
}

/**
 * Full-jitter exponential backoff before retry number `retry` (1-based), but never less than
 * the server's RetryInfo delay.
 * @param {Required<RetryPolicy>} policy @param {number} retry @param {MalipoError} error
 */
function waitBeforeRetry(policy, retry, error) {
  const ceiling = Math.min(policy.maxBackoffMs,
    policy.initialBackoffMs * policy.multiplier ** (retry - 1));
  return Math.max(Math.random() * ceiling, error.retryDelayMs ?? 0);
}

/**
 * @param {object} options
 * @param {string} options.address "host:port" of Malipo's gRPC listener
 * @param {string} options.apiKey the tenant's API key
 * @param {boolean} [options.tls] https (TLS) instead of plaintext HTTP/2 (local use only)
 * @param {import("node:http2").SecureClientSessionOptions} [options.nodeOptions]
 *   TLS material, for mTLS too: { ca, cert, key }
 * @param {number} [options.timeoutMs] the deadline of each attempt of a unary call
 * @param {RetryPolicy} [options.retry] retries of UNAVAILABLE and DEADLINE_EXCEEDED
 * @param {import("@connectrpc/connect").Interceptor[]} [options.interceptors] run on every
 *   attempt, after the API key is set
 */
export function createMalipoClient({
  address, apiKey, tls = false, nodeOptions, timeoutMs = DEFAULT_TIMEOUT_MS, retry = {},
  interceptors = [],
}) {
  const policy = { ...DEFAULT_RETRY, ...retry };
  if (!(policy.attempts >= 1)) throw new RangeError("retry.attempts counts the first call: at least 1");
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
    interceptors: [authorization, ...interceptors],
    sessionManager,
  });
  const raw = createClient(PaymentService, transport);

  /**
   * One unary call with a deadline per attempt and safe retries. A mutation without a key
   * gets a generated one, reused by every retry of this call: it protects this call only.
   * @param {string} name @param {any} request @param {import("@connectrpc/connect").CallOptions} [options]
   */
  async function unary(name, request, options = {}) {
    const keyed = "idempotencyKey" in PaymentService.method[name].input.field;
    const message = keyed && !request.idempotencyKey
      ? { ...request, idempotencyKey: newIdempotencyKey() } : request;
    for (let attempt = 1; ; attempt++) {
      try {
        return await raw[name](message, { timeoutMs, ...options });
      } catch (reason) {
        const error = malipoError(reason, options.signal);
        if (attempt >= policy.attempts || !RETRYABLE.has(error.code) || options.signal?.aborted) {
          throw error;
        }
        await sleep(waitBeforeRetry(policy, attempt, error), undefined, { signal: options.signal })
          .catch((/** @type {unknown} */ aborted) => { throw malipoError(aborted, options.signal); });
      }
    }
  }

  /** @type {any} */
  const wrapped = {};
  for (const [name, method] of Object.entries(PaymentService.method)) {
    wrapped[name] = method.methodKind === "unary"
      ? (/** @type {any} */ request, /** @type {any} */ options) => unary(name, request, options)
      : raw[name];
  }

  /**
   * Status events after `afterSequence` (undefined: from now on), for ever. When the
   * stream breaks (server restart, network, no message within `idleTimeoutMs` although the
   * server sends heartbeats) it reconnects with the last sequence seen, so nothing is
   * missed and nothing repeated. `maxReconnects` bounds the failed reconnections in a row
   * (undefined: never give up). Stop by leaving the loop, or with `signal`.
   * @param {import("./gen/malipo/payments/v1/events_pb.js").StatusFilter
   *   | Record<string, unknown>} [filter]
   * @param {{ afterSequence?: bigint, idleTimeoutMs?: number, maxReconnects?: number,
   *   signal?: AbortSignal }} [options]
   * @returns {AsyncGenerator<import("./gen/malipo/payments/v1/events_pb.js").StatusEvent>}
   */
  async function* watch(filter = {}, {
    afterSequence, idleTimeoutMs = 60_000, maxReconnects, signal,
  } = {}) {
    const backoff = { ...DEFAULT_RETRY, maxBackoffMs: 2000 };
    let cursor = afterSequence;
    let failures = 0;
    for (;;) {
      const abort = new AbortController();
      const stop = () => abort.abort();
      signal?.addEventListener("abort", stop, { once: true });
      /** @type {number | undefined} */
      let delay;
      try {
        const stream = raw.watchStatus(
          { filter, ...(cursor === undefined ? {} : { afterSequence: cursor }) },
          { signal: abort.signal })[Symbol.asyncIterator]();
        for (;;) {
          /** @type {ReturnType<typeof setTimeout> | undefined} */
          let timer;
          const idle = new Promise((resolve) => {
            timer = setTimeout(() => resolve("idle"), idleTimeoutMs);
          });
          const next = await Promise.race([stream.next(), idle]).finally(() => clearTimeout(timer));
          if (next === "idle" || next.done) break;
          failures = 0;
          const { message } = next.value;
          if (message.case === "event") {
            if (cursor !== undefined && message.value.sequence <= cursor) continue;
            cursor = message.value.sequence;
            yield message.value;
          } else if (message.case === "heartbeat"
            && (cursor === undefined || message.value.sequence > cursor)) {
            // The server examined the log up to here for this stream: resuming from it
            // skips only events that did not match the filter.
            cursor = message.value.sequence;
          }
        }
      } catch (reason) {
        if (signal?.aborted) return;
        const error = malipoError(reason, signal);
        if (!RETRYABLE.has(error.code)) throw error;
        delay = waitBeforeRetry(backoff, failures + 1, error);
      } finally {
        signal?.removeEventListener("abort", stop);
        abort.abort();
      }
      if (signal?.aborted) return;
      failures += 1;
      if (maxReconnects !== undefined && failures > maxReconnects) {
        throw new ConnectError(`WatchStatus: gave up after ${maxReconnects} reconnections`,
          Code.Unavailable);
      }
      const fallback = Math.random() * Math.min(backoff.maxBackoffMs,
        backoff.initialBackoffMs * backoff.multiplier ** (failures - 1));
      await sleep(delay ?? fallback, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Watch one payment until it reaches a final status; the payment then.
   * @param {string} paymentId */
  async function waitFinal(paymentId) {
    for await (const event of watch({ paymentId }, { afterSequence: 0n })) {
      if (FINAL_STATUSES.has(event.newStatus)) break;
    }
    return (await unary("getPayment", { paymentId })).payment;
  }

  /** Close the connection; calls still running fail. */
  const close = () => sessionManager.abort();
  /** @type {typeof raw & { raw: typeof raw, watch: typeof watch, waitFinal: typeof waitFinal,
   *   close: typeof close }} */
  const client = Object.assign(wrapped, { raw, watch, waitFinal, close });
  return client;
}
