// Starts GraphiQL against this server's own /graphql and /graphql/ws. Kept out of the HTML so
// the page runs under a CSP without 'unsafe-inline' scripts.
(function () {
  'use strict';

  var DEFAULT_QUERY = [
    '# Welcome to the WhatsApp contacts API.',
    '# Pick an operation with the ▶ button. The Docs panel (book icon) lists every field;',
    '# the Headers tab below is where credentials go. No contacts yet? Run',
    '# `contacts-server seed-demo --count 1000` for demo data.',
    '',
    '# Contacts you may message freely right now (inside the 24-hour window).',
    'query OpenWindows {',
    '  contacts(',
    '    first: 20',
    '    filter: { whatsappWindowOpen: true }',
    '    orderBy: { field: LAST_WHATSAPP_MESSAGE_AT, direction: DESC }',
    '  ) {',
    '    totalCount',
    '    nodes { id phoneNumber whatsappWindowExpiresAt metadata }',
    '    pageInfo { hasNextPage endCursor }',
    '  }',
    '}',
    '',
    '# Numbers are accepted as people type them and stored in E.164.',
    'mutation CreateContact {',
    '  createContact(input: { phoneNumber: "+56 9 1234 5678", metadata: { name: "Ana" } }) {',
    '    contact { id phoneNumber countryCode whatsappWindowOpen metadata }',
    '  }',
    '}',
    '',
    '# What a webhook worker calls on every inbound message: opens or refreshes the window.',
    'mutation RecordInbound {',
    '  recordWhatsappMessage(phoneNumber: "+56912345678") {',
    '    contact { id lastWhatsappMessageAt whatsappWindowOpen whatsappWindowExpiresAt }',
    '  }',
    '}',
    '',
    '# A user who hides the number behind a username: known by BSUID alone.',
    'mutation RecordPhoneLessMessage {',
    '  recordWhatsappInbound(input: {',
    '    whatsappUserId: "US.13491208655302741918"',
    '    username: "ana.w"',
    '    profileName: "Ana"',
    '  }) {',
    '    contact { id phoneNumber whatsappUserId whatsappUsername whatsappWindowOpen }',
    '  }',
    '}',
    '',
    '# A call opens and refreshes the window too; with the number, it fills it in.',
    'mutation RecordCall {',
    '  recordWhatsappInbound(input: {',
    '    whatsappUserId: "US.13491208655302741918"',
    '    phoneNumber: "+1 415 555 0101"',
    '    kind: CALL',
    '  }) {',
    '    contact { id phoneNumber whatsappUserId lastWhatsappMessageAt whatsappWindowExpiresAt }',
    '  }',
    '}',
    '',
    'query Stats {',
    '  contactStats { total whatsappWindowOpen }',
    '}',
    ''
  ].join('\n');

  var origin = window.location.origin;
  var wsUrl = origin.replace(/^http/, 'ws') + '/graphql/ws';
  // Browsers cannot set headers on a WebSocket: the Headers tab's credentials go in
  // connection_init instead, read afresh at each connection (GraphiQL persists the tab).
  function currentHeaders() {
    try {
      var headers = JSON.parse(window.localStorage.getItem('graphiql:headers') || '{}');
      return headers && typeof headers === 'object' ? headers : {};
    } catch (e) {
      return {};
    }
  }
  var baseFetcher = GraphiQL.createFetcher({
    url: origin + '/graphql',
    subscriptionUrl: wsUrl,
    wsClient: graphqlWs.createClient({ url: wsUrl, lazy: true, connectionParams: currentHeaders })
  });
  // GraphiQL updates the operation name it sends on cursor moves, not on every keystroke:
  // select all, type an anonymous query and press Ctrl+Enter at once, and it still names
  // the example operation the cursor was in (`Unknown operation named "OpenWindows"`). Run
  // what the editor holds: drop a name the document does not define. (Names are
  // [_A-Za-z][_0-9A-Za-z]*, so one is safe inside a regular expression.)
  function definesOperation(query, name) {
    var pattern = new RegExp('(^|[^_0-9A-Za-z])(query|mutation|subscription)\\s+' + name + '(?![_0-9A-Za-z])');
    return pattern.test(query || '');
  }
  function fetcher(params, options) {
    if (params && params.operationName && !definesOperation(params.query, params.operationName)) {
      params = Object.assign({}, params, { operationName: null });
    }
    return baseFetcher(params, options);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true
    })
  );
})();
