// Runs a subscription end to end with each published client the server supports:
// graphql-ws (the graphql-transport-ws protocol: Apollo Client, urql, GraphiQL) and
// subscriptions-transport-ws (the legacy graphql-ws protocol). For each: create a contact,
// subscribe to its window (the current state comes first, so the subscription is live), record
// an inbound message, and expect the window to open. Exits non-zero on any failure.
//
//   node subscribe.mjs http://127.0.0.1:8000
import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const base = process.argv[2];
if (!base) {
  console.error('usage: node subscribe.mjs BASE_URL');
  process.exit(2);
}
const wsUrl = base.replace(/^http/, 'ws') + '/graphql/ws';
const TIMEOUT_MS = 10_000;

async function graphql(query, variables) {
  const response = await fetch(base + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (response.status !== 200 || body.errors) {
    throw new Error(`${response.status} ${JSON.stringify(body)}`);
  }
  return body.data;
}

const WINDOW = `subscription($id: ID!) { whatsappWindow(contactId: $id) { contactId open expiresAt } }`;

// Subscribes with `start` (which returns an unsubscribe function), records a message after
// the first state, and resolves with the states seen once the window opens.
function windowOpens(name, phoneNumber, start) {
  return new Promise(async (resolve, reject) => {
    const created = await graphql(
      'mutation($p: String!) { createContact(input: { phoneNumber: $p }) { contact { id } } }',
      { p: phoneNumber },
    ).catch(reject);
    if (!created) return;
    const id = created.createContact.contact.id;
    const states = [];
    const timer = setTimeout(
      () => reject(new Error(`${name}: no open window within ${TIMEOUT_MS} ms: ${JSON.stringify(states)}`)),
      TIMEOUT_MS,
    );
    const stop = start({ query: WINDOW, variables: { id } }, {
      next: async (result) => {
        if (result.errors) {
          clearTimeout(timer);
          reject(new Error(`${name}: ${JSON.stringify(result.errors)}`));
          return;
        }
        const state = result.data.whatsappWindow;
        states.push(state);
        if (states.length === 1) {
          if (state.open !== false || state.contactId !== id) {
            reject(new Error(`${name}: first state should be closed: ${JSON.stringify(state)}`));
            return;
          }
          await graphql('mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }', {
            p: phoneNumber,
          }).catch(reject);
        } else if (state.open === true && state.expiresAt) {
          clearTimeout(timer);
          stop();
          resolve(states);
        }
      },
      error: (err) => {
        clearTimeout(timer);
        reject(new Error(`${name}: ${err && err.message ? err.message : JSON.stringify(err)}`));
      },
      complete: () => {},
    });
  });
}

async function withGraphqlWs() {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
  try {
    return await windowOpens('graphql-ws', '+56911110001', (payload, sink) => client.subscribe(payload, sink));
  } finally {
    await client.dispose();
  }
}

async function withSubscriptionsTransportWs() {
  const client = new SubscriptionClient(wsUrl, { reconnect: false }, WebSocket);
  try {
    return await windowOpens('subscriptions-transport-ws', '+56911110002', (payload, sink) => {
      const subscription = client.request(payload).subscribe(sink);
      return () => subscription.unsubscribe();
    });
  } finally {
    client.close();
  }
}

try {
  for (const [name, run] of [
    ['graphql-ws (graphql-transport-ws)', withGraphqlWs],
    ['subscriptions-transport-ws (graphql-ws)', withSubscriptionsTransportWs],
  ]) {
    const states = await run();
    console.log(`${name}: ok, ${states.length} states: ${states.map((s) => (s.open ? 'open' : 'closed')).join(' -> ')}`);
  }
  process.exit(0);
} catch (err) {
  console.error(`client check failed: ${err.message}`);
  process.exit(1);
}
