// Sends Quackback webhook deliveries signed exactly as Quackback does, with Node's own crypto, so the Python
// receiver is checked against a second implementation of the contract:
//   X-Quackback-Signature: "sha256=" + hex(HMAC-SHA256(secret, `${timestamp}.${rawBody}`))
//
// usage: QUACKBACK_WEBHOOK_SECRET=... node quackback_send.mjs URL EVENTS.jsonl
// Each line of EVENTS.jsonl is {"body": <event object or raw string>, "timestamp"?: seconds,
// "omit"?: [header names], "tamper"?: true, "secret"?: "use another secret"}.
// Prints one JSON line per delivery: {"status", "body", "ms" (round trip), "sent_at" (Unix seconds)}.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

const [url, file] = process.argv.slice(2);
const secret = process.env.QUACKBACK_WEBHOOK_SECRET;
if (!url || !file || !secret) {
  console.error("usage: QUACKBACK_WEBHOOK_SECRET=... node quackback_send.mjs URL EVENTS.jsonl");
  process.exit(2);
}

function sign(key, timestamp, raw) {
  return "sha256=" + createHmac("sha256", key).update(`${timestamp}.`).update(raw).digest("hex");
}

for (const line of readFileSync(file, "utf8").split("\n").filter((l) => l.trim())) {
  const spec = JSON.parse(line);
  const raw = typeof spec.body === "string" ? spec.body : JSON.stringify(spec.body);
  const timestamp = String(spec.timestamp ?? Math.floor(Date.now() / 1000));
  const headers = {
    "Content-Type": "application/json",
    "User-Agent": "Quackback-Webhook/1.0 (+https://quackback.io)",
    "X-Quackback-Event": typeof spec.body === "object" ? spec.body.type : "unknown",
    "X-Quackback-Timestamp": timestamp,
    "X-Quackback-Signature": sign(spec.secret ?? secret, timestamp, Buffer.from(raw, "utf8")),
  };
  for (const name of spec.omit ?? []) delete headers[name];
  const sent = spec.tamper ? raw.replace(/}$/, ' }') : raw;
  const sentAt = Date.now();
  const started = performance.now();
  const res = await fetch(url, { method: "POST", headers, body: sent, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  console.log(JSON.stringify({ status: res.status, body, ms: performance.now() - started, sent_at: sentAt / 1000 }));
}
