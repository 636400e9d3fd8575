// A Svix user's flow with the npm svix SDK against a running hookpost (its address in
// HOOKPOST_URL, an admin key in HOOKPOST_KEY): "send" sets up an application, an event type,
// an endpoint at RECEIVER_URL and sends a message, printing what the test needs as JSON;
// "check" reads a received request on stdin, verifies it with the SDK's Webhook, and lists
// the endpoint's attempts and the applications page by page.
import { Svix, Webhook } from "svix";

const svix = new Svix(process.env.HOOKPOST_KEY, {
  serverUrl: process.env.HOOKPOST_URL,
  numRetries: 0,
});

async function send() {
  const app = await svix.application.getOrCreate({ name: "Globex", uid: "globex" });
  await svix.eventType.create({
    name: "build.finished",
    description: "A build finished.",
    schemas: { 1: { type: "object", required: ["build"] } },
  });
  const endpoint = await svix.endpoint.create(app.id, {
    url: process.env.RECEIVER_URL,
    eventTypes: ["build.finished"],
    channels: ["ci"],
  });
  const secret = (await svix.endpoint.getSecret(app.id, endpoint.id)).key;
  const message = await svix.message.create(app.id, {
    eventType: "build.finished",
    eventId: "build-1",
    channels: ["ci"],
    payload: { build: 1, ok: true },
  });
  let conflict = null;
  try {
    await svix.message.create(app.id, { eventType: "build.finished", eventId: "build-1", payload: { build: 1 } });
  } catch (error) {
    conflict = error.code;
  }
  for (let n = 0; n < 5; n++) {
    await svix.application.create({ name: `page ${n}`, uid: `page-${n}` });
  }
  console.log(JSON.stringify({ appId: app.id, endpointId: endpoint.id, messageId: message.id, secret, conflict }));
}

async function check() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const { appId, endpointId, secret, body, headers } = JSON.parse(input);
  new Webhook(secret).verify(body, headers); // throws on a signature that does not match
  const verified = JSON.parse(body);
  // the worker records an attempt just after the receiver has answered it
  let attempts = { data: [] };
  for (let tries = 0; tries < 100 && attempts.data.length === 0; tries++) {
    attempts = await svix.messageAttempt.listByEndpoint(appId, endpointId);
    if (attempts.data.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const uids = [];
  let iterator = undefined;
  for (;;) {
    const page = await svix.application.list({ limit: 2, iterator });
    uids.push(...page.data.map((app) => app.uid));
    if (page.done) break;
    iterator = page.iterator;
  }
  console.log(JSON.stringify({
    verified,
    attempts: attempts.data.map((a) => ({ status: a.status, code: a.responseStatusCode, msgId: a.msgId })),
    uids,
  }));
}

await (process.argv[2] === "send" ? send() : check());
