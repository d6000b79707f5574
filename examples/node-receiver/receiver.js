// A controller's webhook endpoint for rightsdesk: Node's standard library plus `standardwebhooks`.
//
//     npm ci
//     WEBHOOK_SECRET=whsec_... node receiver.js --port 8081 --store receiver-inbox
//
// What a receiver has to get right, in the order this file does it:
//
// 1. Verify before trusting anything. rightsdesk signs every delivery the Standard Webhooks way
//    (https://www.standardwebhooks.com); the library checks the HMAC over the raw body and refuses a
//    `webhook-timestamp` more than 5 minutes from this machine's clock (a replay of an old, captured
//    delivery fails here). During a secret rotation rightsdesk signs with every valid secret
//    (`webhook-signature` is a space-separated list) and this receiver may hold several secrets
//    (WEBHOOK_SECRET="whsec_new whsec_old", or --secrets-file, re-read when it changes): one match
//    is enough. A bad signature is answered 401 and nothing is stored.
// 2. Store, then answer. rightsdesk counts only a 2xx as delivered and waits at most 10 seconds, so
//    the event is written to the inbox (a directory, one file per event) and answered 204 at once;
//    the work happens later, off the request. If the file cannot be written, the answer is 503 and
//    rightsdesk retries (5 s, 5 min, 30 min, ... for about three days).
// 3. Deduplicate on `webhook-id`. It is the same on every retry of an event, so a delivery whose 204
//    was lost arrives again: the file for that id exists already, so it is a no-op (answered 204
//    again). The inbox is on disk, so this survives a restart; in production use your own database.
// 4. Process later. The worker handles each stored event once and then replaces the file's content
//    with a note that it was processed (the subject's details are personal data: keep what your
//    process needs, where it belongs). Events stored but not processed when the receiver stopped are
//    picked up when it starts again.
//
// 410 Gone tells rightsdesk that this endpoint is retired: it stops calling it at once, removes the
// webhook secrets and sends requests to your privacy contact by email instead. Answer 410 only when
// you mean that (--gone does, for trying it out); any other 4xx or 5xx is retried.
//
// rightsdesk calls only https URLs with public addresses: run this behind a TLS-terminating proxy.
// (The local run, `make run`, is the one exception: it calls plain http on 127.0.0.1.)

"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { parseArgs } = require("node:util");
const { Webhook, WebhookVerificationError } = require("standardwebhooks");

const MAX_BODY_BYTES = 1024 * 1024;
// rightsdesk retries an event for about 3.5 days; an id must be remembered at least that long.
const KEEP_IDS_MS = 7 * 24 * 3600 * 1000;
// Ids become file names: only what rightsdesk sends (msg_<hex>) gets that far.
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

// Your code: open a ticket, start the erasure job, ... Here: one line per event. It runs after the
// delivery was answered, so it may be slow; if it throws, the event stays unprocessed and is tried
// again at the next start. `webhookId` is a good idempotency key for whatever this starts downstream.
async function handle(webhookId, event) {
  const data = event.data;
  console.log(
    `processed ${event.type} webhook-id=${webhookId} request=${data.request_id ?? "-"} due=${data.due_at ?? "-"}`,
  );
  if (event.type === "dsr.request.forwarded" && data.subject) {
    // rightsdesk deletes the subject's details an hour after delivery: keep what you need now.
    console.log(`  subject email on file: ${data.subject.email ? "yes" : "no"}`);
  }
}

// ------------------------------------------------------------------ secrets

// From WEBHOOK_SECRET (space-separated) or a file, one per line, re-read whenever it changes, so a
// rotation needs no restart.
function secretsFrom(file, fromEnv) {
  let seen = null;
  let webhooks = [];
  const parse = (text) =>
    text
      .split("\n")
      .flatMap((line) => line.split("#")[0].split(/\s+/))
      .filter(Boolean)
      .map((secret) => new Webhook(secret));
  return () => {
    if (!file) {
      if (seen === null) {
        webhooks = parse(fromEnv || "");
        seen = "env";
      }
      return webhooks;
    }
    const stat = fs.statSync(file);
    const version = `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    if (version !== seen) {
      seen = version;
      try {
        webhooks = parse(fs.readFileSync(file, "utf8"));
      } catch (error) {
        if (!webhooks.length) throw error;
        // A bad edit must not stop verification.
        console.log(`secrets file not usable (${error.name}): kept the previous secrets`);
        return webhooks;
      }
      console.log(`secrets loaded: ${webhooks.length}`);
    }
    return webhooks;
  };
}

// The event if any of our secrets signed it (and its timestamp is fresh); else it throws.
function verify(webhooks, body, headers) {
  let failure = new WebhookVerificationError("no secret configured");
  for (const webhook of webhooks) {
    try {
      return webhook.verify(body, headers);
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      failure = error;
    }
  }
  throw failure;
}

// ------------------------------------------------------------------ the inbox

// One file per `webhook-id`: its existence is the dedupe key, its content the work item.
function inboxAt(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const fileOf = (id) => path.join(dir, `${id}.json`);
  return {
    // true if new; false if this id was stored before (a retry or a replay). Written to a temporary
    // file and linked into place: the link fails if the id exists, and never leaves half a file.
    store(id, body) {
      const temporary = path.join(dir, `.incoming-${process.pid}-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(temporary, body, { flag: "wx" });
      try {
        fs.linkSync(temporary, fileOf(id));
        return true;
      } catch (error) {
        if (error.code === "EEXIST") return false;
        throw error;
      } finally {
        fs.unlinkSync(temporary);
      }
    },
    load(id) {
      const record = JSON.parse(fs.readFileSync(fileOf(id), "utf8"));
      return record.processed_at ? null : record;
    },
    // Processed: the file stays (for dedupe), the body with its personal data goes.
    done(id, type) {
      const temporary = `${fileOf(id)}.done`;
      fs.writeFileSync(temporary, JSON.stringify({ type, processed_at: new Date().toISOString() }));
      fs.renameSync(temporary, fileOf(id));
    },
    // At start: forget ids older than KEEP_IDS_MS; return the ids still to process, oldest first.
    unprocessed() {
      const left = [];
      for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".json"))) {
        const file = path.join(dir, name);
        const stat = fs.statSync(file);
        const record = JSON.parse(fs.readFileSync(file, "utf8"));
        if (record.processed_at && Date.now() - stat.mtimeMs > KEEP_IDS_MS) fs.unlinkSync(file);
        else if (!record.processed_at) left.push({ id: name.slice(0, -5), at: stat.mtimeMs });
      }
      return left.sort((a, b) => a.at - b.at).map((entry) => entry.id);
    },
  };
}

// The worker: handles each stored event once, in the order received, never on the request's path.
function workerFor(inbox) {
  const pending = [];
  let running = false;
  async function drain() {
    if (running) return;
    running = true;
    while (pending.length) {
      const id = pending.shift();
      try {
        const event = inbox.load(id);
        if (event === null) continue; // already processed
        await handle(id, event);
        inbox.done(id, event.type);
      } catch (error) {
        console.log(`processing failed webhook-id=${id}: ${error.name}`);
      }
    }
    running = false;
  }
  return (id) => {
    pending.push(id);
    setImmediate(drain); // after the answer has gone
  };
}

// ------------------------------------------------------------------ HTTP

function main() {
  const { values: args } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8081" },
      store: { type: "string", default: "receiver-inbox" },
      "secrets-file": { type: "string" },
      gone: { type: "boolean", default: false },
    },
  });
  if (!args["secrets-file"] && !process.env.WEBHOOK_SECRET) {
    console.error(
      "set WEBHOOK_SECRET to the whsec_... secret rightsdesk showed when your webhook was registered" +
        " (or use --secrets-file)",
    );
    process.exit(2);
  }
  const secrets = secretsFrom(args["secrets-file"], process.env.WEBHOOK_SECRET);
  secrets(); // a malformed secret fails now, not at the first delivery
  const inbox = inboxAt(args.store);
  const enqueue = workerFor(inbox);
  inbox.unprocessed().forEach(enqueue); // stored before a restart, not yet handled

  const server = http.createServer((request, response) => {
    const answer = (status) => response.writeHead(status, { "Content-Length": "0" }).end();
    if (request.method !== "POST") return answer(405);
    if (args.gone) return answer(410); // retired: rightsdesk switches this controller to email
    const chunks = [];
    let size = 0;
    request.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        answer(413);
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      const body = Buffer.concat(chunks); // the raw bytes: verify before parsing anything
      let event;
      try {
        event = verify(secrets(), body, request.headers); // Node gives header names in lower case
      } catch (error) {
        // The library's message names the failed check, never the payload.
        console.log(`rejected: ${error.message}`);
        return answer(401);
      }
      const id = request.headers["webhook-id"];
      if (!SAFE_ID.test(id)) return answer(400);
      let isNew;
      try {
        isNew = inbox.store(id, body);
      } catch (error) {
        console.log(`could not store webhook-id=${id}: ${error.code ?? error.name}`);
        return answer(503); // not stored: let rightsdesk retry
      }
      if (isNew) {
        console.log(`stored ${event.type} webhook-id=${id}`);
        enqueue(id);
      } else {
        console.log(`duplicate webhook-id=${id}: already stored`);
      }
      answer(204);
    });
  });
  server.listen(Number(args.port), args.host, () => {
    console.log(`listening on http://${args.host}:${server.address().port}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // idle keep-alive connections would hold close() open
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main();
