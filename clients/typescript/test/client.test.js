// Runs against a server someone else started: MALIPO_ADDRESS ("host:port") and
// MALIPO_API_KEY must be set (tests/clients/test_typescript_client.py does it).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAndWatch } from "../examples/create_and_watch.js";
import { createMalipoClient, FINAL_STATUSES, Status } from "../src/client.js";

const address = process.env.MALIPO_ADDRESS;
const apiKey = process.env.MALIPO_API_KEY;
assert.ok(address && apiKey, "set MALIPO_ADDRESS and MALIPO_API_KEY");
const client = createMalipoClient({ address, apiKey });
after(() => client.close());

/** @param {string} key @param {bigint} [amountMinor] */
const request = (key, amountMinor = 1000n) => ({
  idempotencyKey: key,
  provider: "simulator",
  amount: { amountMinor, currency: "KES" },
  customer: { phoneNumber: "+254712345600" },
});

test("create, then get the same payment", async () => {
  const { payment } = await client.createPayment(request(`ts-${randomUUID()}`));
  assert.ok(payment?.id.startsWith("pay_"));
  assert.equal(payment.status, Status.PROCESSING);
  assert.equal(payment.amount?.amountMinor, 1000n);
  const got = await client.getPayment({ paymentId: payment.id });
  assert.equal(got.payment?.id, payment.id);
  assert.equal(got.payment?.amount?.currency, "KES");
});

test("replay with the same key returns the same payment; another body is refused", async () => {
  const key = `ts-${randomUUID()}`;
  const first = await client.createPayment(request(key));
  const again = await client.createPayment(request(key));
  assert.equal(again.payment?.id, first.payment?.id);
  await assert.rejects(client.createPayment(request(key, 2000n)), (err) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.AlreadyExists);
    return true;
  });
});

test("the README flow streams every status change until final", async () => {
  const events = await createAndWatch(address, apiKey, randomUUID());
  assert.deepEqual(events.map((e) => [e.oldStatus, e.newStatus]), [
    [Status.UNSPECIFIED, Status.PENDING],
    [Status.PENDING, Status.PROCESSING],
    [Status.PROCESSING, Status.SUCCEEDED],
  ]);
  const sequences = events.map((e) => e.sequence);
  assert.deepEqual([...sequences].sort((a, b) => (a < b ? -1 : 1)), sequences);
  assert.ok(FINAL_STATUSES.has(events.at(-1).newStatus));
});

test("resuming after the last sequence seen misses nothing and repeats nothing", async () => {
  const { payment } = await client.createPayment(request(`ts-${randomUUID()}`));
  const filter = { paymentId: payment?.id };
  let first;
  for await (const { message } of client.watchStatus({ afterSequence: 0n, filter })) {
    if (message.case === "event") { first = message.value; break; }
  }
  const rest = [];
  for await (const { message } of client.watchStatus({ afterSequence: first.sequence, filter })) {
    if (message.case !== "event") continue;
    rest.push(message.value);
    if (FINAL_STATUSES.has(message.value.newStatus)) break;
  }
  assert.deepEqual([first, ...rest].map((e) => e.newStatus),
    [Status.PENDING, Status.PROCESSING, Status.SUCCEEDED]);
});

test("a wrong API key is refused", async () => {
  const stranger = createMalipoClient({ address, apiKey: "not-a-key" });
  await assert.rejects(stranger.getPayment({ paymentId: "pay_x" }), (err) => {
    assert.equal(ConnectError.from(err).code, Code.Unauthenticated);
    return true;
  });
  stranger.close();
});
