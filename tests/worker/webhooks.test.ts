import { describe, it, expect, afterAll } from "vitest";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { deliverWebhook } from "../../src/worker/webhooks.js";
import { HostGuard } from "../../src/queue/hostPolicy.js";
import type { JobView } from "../../src/store/jobStore.js";

/** A receiver that answers a byte every 300 ms: never idle long enough for the socket's timeout. */
const sockets: Socket[] = [];
const trickler = createServer((socket) => {
  sockets.push(socket);
  const reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
  let i = 0;
  const timer = setInterval(() => (i < reply.length ? socket.write(reply[i++]!) : clearInterval(timer)), 300);
  socket.on("close", () => clearInterval(timer));
  socket.on("error", () => undefined);
});
afterAll(() => {
  for (const s of sockets) s.destroy();
  trickler.close();
});

describe("webhook delivery", () => {
  it("gives up on a receiver that keeps the connection busy but never answers, within the delivery's time", async () => {
    await new Promise<void>((r) => trickler.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(trickler.address() as AddressInfo).port}/hook`;
    const t = Date.now();
    const delivered = deliverWebhook(url, { id: "3f6c2a9e-8d41-4b7a-9c25-61e0d7b4f8a2" } as JobView, "secret", new HostGuard({ allowedHosts: [], allowPrivate: true }), 1_000);
    await expect(delivered).rejects.toThrow("callback did not answer within 1000 ms");
    expect(Date.now() - t).toBeLessThan(3_000);
  });
});
