// Create a KES 1,500.00 collection and watch it until it is final (the README's example).
// node examples/create_and_watch.js 127.0.0.1:50051 "$MALIPO_API_KEY"
import { randomUUID } from "node:crypto";
import { createMalipoClient, FINAL_STATUSES, Status } from "../src/client.js";

/**
 * @param {string} address
 * @param {string} apiKey
 * @param {string} orderId
 */
export async function createAndWatch(address, apiKey, orderId) {
  const seen = [];
  // snippet:start
  const client = createMalipoClient({ address, apiKey });
  const { payment } = await client.createPayment({
    idempotencyKey: `order-${orderId}`, // yours, stored with the order
    provider: "simulator",
    amount: { amountMinor: 150000n, currency: "KES" },
    customer: { phoneNumber: "+254712345600" },
  });
  // Reconnects and resumes from the last sequence seen when the connection breaks.
  for await (const event of client.watch({ paymentId: payment?.id }, { afterSequence: 0n })) {
    console.log(`#${event.sequence} ${Status[event.oldStatus]} -> ${Status[event.newStatus]}`);
    seen.push(event);
    if (FINAL_STATUSES.has(event.newStatus)) break;
  }
  client.close();
  // snippet:end
  return seen;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await createAndWatch(process.argv[2], process.argv[3], randomUUID());
}
