// What createMalipoClient adds to the generated client, against a server someone else
// started (MALIPO_ADDRESS, MALIPO_API_KEY: tests/clients/test_typescript_client.py).
// Breaks are real: a TCP proxy in front of the server that drops and refuses connections.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import net from "node:net";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Code, ConnectError, createMalipoClient, MalipoError, malipoError, RetryInfoSchema, Status,
} from "../src/client.js";

const address = process.env.MALIPO_ADDRESS;
const apiKey = process.env.MALIPO_API_KEY;
assert.ok(address && apiKey, "set MALIPO_ADDRESS and MALIPO_API_KEY");
const direct = createMalipoClient({ address, apiKey });
after(() => direct.close());

/** @param {string} key @param {string} [phone] */
const request = (key, phone = "+254712345600") => ({
  idempotencyKey: key,
  provider: "simulator",
  amount: { amountMinor: 1000n, currency: "KES" },
  customer: { phoneNumber: phone },
});

/** Payments of this tenant made with `key`: exactly one when no retry paid twice.
 * @param {string} key */
async function paymentsWithKey(key) {
  const { payments } = await direct.listPayments({ pageSize: 100 });
  return payments.filter((p) => p.idempotencyKey === key);
}

/** Records what each attempt sent: its idempotency key, deadline header and time. */
function recorder() {
  /** @type {{ key: string, timeout: string | null, at: number }[]} */
  const sent = [];
  /** @type {import("@connectrpc/connect").Interceptor} */
  const interceptor = (next) => async (req) => {
    const message = /** @type {any} */ (req).message;
    sent.push({ key: message?.idempotencyKey ?? "", timeout: req.header.get("grpc-timeout"),
      at: performance.now() });
    return next(req);
  };
  return { sent, interceptor };
}

/** A TCP proxy to the server; down() drops every connection and refuses new ones. */
async function proxy() {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")),
    Number(address.slice(address.lastIndexOf(":") + 1))];
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  let refusing = false;
  let connections = 0;
  const server = net.createServer((inbound) => {
    if (refusing) { inbound.destroy(); return; }
    connections += 1;
    const outbound = net.connect(port, host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => { sockets.delete(s); inbound.destroy(); outbound.destroy(); });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const { port: listening } = /** @type {net.AddressInfo} */ (server.address());
  return {
    address: `127.0.0.1:${listening}`,
    connections: () => connections,
    down() { refusing = true; for (const s of sockets) s.destroy(); },
    up() { refusing = false; },
    close() { server.close(); for (const s of sockets) s.destroy(); },
  };
}

test("every unary attempt carries the default deadline; a stream has none", async () => {
  const { sent, interceptor } = recorder();
  const client = createMalipoClient({ address, apiKey, interceptors: [interceptor] });
  const short = createMalipoClient({ address, apiKey, interceptors: [interceptor], timeoutMs: 2500 });
  try {
    await client.listProviders({});
    await short.listProviders({});
    await client.getPayment({ paymentId: "pay_x" }, { timeoutMs: 700 }).catch(() => undefined);
    assert.deepEqual(sent.map((s) => s.timeout), ["10000m", "2500m", "700m"]);
  } finally {
    client.close();
    short.close();
  }
});

test("a lost answer is retried with the same key, after RetryInfo's delay, and pays once",
  async () => {
    const { sent, interceptor } = recorder();
    const retryInfo = create(RetryInfoSchema, { retryDelay: { seconds: 1n, nanos: 0 } });
    /** The server does the work, then the answer is lost with the server's RetryInfo. */
    /** @type {import("@connectrpc/connect").Interceptor} */
    const loseFirst = (next) => async (req) => {
      const response = await next(req);
      if (sent.length > 1) return response;
      const lost = new ConnectError("answer lost (test)", Code.Unavailable);
      lost.details = [{ type: RetryInfoSchema.typeName, value: toBinary(RetryInfoSchema, retryInfo),
        debug: undefined }];
      throw lost;
    };
    const client = createMalipoClient({ address, apiKey, interceptors: [interceptor, loseFirst],
      retry: { attempts: 3, initialBackoffMs: 10, maxBackoffMs: 10 } });
    try {
      const { payment } = await client.createPayment(request("")); // the client's own key
      assert.ok(payment?.idempotencyKey.startsWith("mc-"));
      assert.deepEqual(sent.map((s) => s.key), [payment.idempotencyKey, payment.idempotencyKey]);
      // A lower bound only: the backoff alone (at most 10 ms) would retry far sooner.
      assert.ok(sent[1].at - sent[0].at >= 1000, `retried after ${sent[1].at - sent[0].at} ms`);
      assert.deepEqual((await paymentsWithKey(payment.idempotencyKey)).map((p) => p.id),
        [payment.id]);
    } finally {
      client.close();
    }
  });

test("calls made while the server cannot be reached are retried with the same key", async () => {
  const relay = await proxy();
  const { sent, interceptor } = recorder();
  const client = createMalipoClient({ address: relay.address, apiKey, interceptors: [interceptor],
    retry: { attempts: 50, initialBackoffMs: 20, maxBackoffMs: 50 } });
  try {
    relay.down();
    const key = `ts-${randomUUID()}`;
    const created = client.createPayment(request(key));
    while (sent.length < 2) await sleep(10); // it failed and is retrying
    relay.up();
    const { payment } = await created;
    assert.ok(sent.every((s) => s.key === key));
    assert.deepEqual((await paymentsWithKey(key)).map((p) => p.id), [payment?.id]);
  } finally {
    client.close();
    relay.close();
  }
});

test("errors carry their decoded google.rpc details and are not retried", async () => {
  const { sent, interceptor } = recorder();
  const client = createMalipoClient({ address, apiKey, interceptors: [interceptor] });
  try {
    const key = `ts-${randomUUID()}`;
    await client.createPayment(request(key));
    await assert.rejects(client.createPayment({ ...request(key), amount: { amountMinor: 5n,
      currency: "KES" } }), (err) => {
      assert.ok(err instanceof MalipoError && err instanceof ConnectError);
      assert.equal(err.code, Code.AlreadyExists);
      assert.equal(err.reason, "IDEMPOTENCY_KEY_REUSED");
      assert.equal(err.errorInfo?.domain, "malipo.dev");
      assert.equal(err.retryInfo, undefined);
      return true;
    });
    assert.equal(sent.length, 2); // one call each
    await assert.rejects(client.createPayment({ ...request(""), amount: { amountMinor: 5n,
      currency: "XYZ" } }), (err) => {
      assert.ok(err instanceof MalipoError);
      assert.equal(err.code, Code.InvalidArgument);
      assert.ok(err.badRequest?.fieldViolations.some((v) => v.field === "amount.currency"),
        JSON.stringify(err.badRequest));
      return true;
    });
  } finally {
    client.close();
  }
});

test("a call broken by a reset connection is UNAVAILABLE; the server's ABORTED stays", () => {
  // As connect-node reports a socket reset under a call (node-error.js): ABORTED, caused by
  // the Node.js error. gRPC's other clients call it UNAVAILABLE, which retries and resumes.
  const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
  const broken = new ConnectError("read ECONNRESET", Code.Aborted, undefined, undefined, reset);
  assert.equal(malipoError(broken).code, Code.Unavailable);
  const stopped = new AbortController();
  stopped.abort();
  assert.equal(malipoError(broken, stopped.signal).code, Code.Aborted); // the caller's own
  // A status the server sent has no Node.js error under it.
  assert.equal(malipoError(new ConnectError("row moved", Code.Aborted)).code, Code.Aborted);
});

test("watch() resumes after a broken connection: nothing missed, nothing repeated", async () => {
  const relay = await proxy();
  const client = createMalipoClient({ address: relay.address, apiKey });
  try {
    // The OTP scenario (phone ending 03) waits in ACTION_REQUIRED until confirmed.
    const { payment } = await direct.createPayment(request(`ts-${randomUUID()}`, "+254712345603"));
    const seen = [];
    for await (const event of client.watch({ paymentId: payment?.id }, { afterSequence: 0n })) {
      seen.push(event);
      if (event.newStatus === Status.ACTION_REQUIRED) {
        relay.down(); // the watch breaks; the payment moves on while it is away
        await direct.confirmPayment({ idempotencyKey: `ts-${randomUUID()}`,
          paymentId: payment?.id, otp: "123456" });
        relay.up();
      }
      if (event.newStatus === Status.SUCCEEDED) break;
    }
    assert.ok(relay.connections() >= 2, "the watch reconnected");
    const replay = [];
    for await (const event of direct.watch({ paymentId: payment?.id }, { afterSequence: 0n })) {
      replay.push(event);
      if (event.newStatus === Status.SUCCEEDED) break;
    }
    assert.deepEqual(seen.map((e) => e.sequence), replay.map((e) => e.sequence));
    assert.equal(seen.at(-2)?.newStatus, Status.ACTION_REQUIRED);
  } finally {
    client.close();
    relay.close();
  }
});

test("waitFinal() returns the payment once it is final", async () => {
  const { payment } = await direct.createPayment(request(`ts-${randomUUID()}`));
  const final = await direct.waitFinal(payment?.id ?? "");
  assert.equal(final?.id, payment?.id);
  assert.equal(final?.status, Status.SUCCEEDED);
});

test("watch() gives up after maxReconnects when nothing answers", async () => {
  const relay = await proxy();
  relay.down();
  const client = createMalipoClient({ address: relay.address, apiKey });
  try {
    await assert.rejects(async () => {
      for await (const _ of client.watch({}, { afterSequence: 0n, maxReconnects: 2 })) { /* none */ }
    }, /gave up after 2 reconnections/);
  } finally {
    client.close();
    relay.close();
  }
});
