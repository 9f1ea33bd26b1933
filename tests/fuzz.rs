//! A bounded fuzz of POST /graphql: generated documents and variables, valid-looking and not.
//! Whatever comes in, the answer is a JSON body with a non-5xx status, in bounded time.

mod common;

use std::time::Duration;

use common::TestApp;
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Value, json};

const CASES: u32 = 600;

const WORDS: &[&str] = &[
    "contacts",
    "contact",
    "contactStats",
    "contactByPhoneNumber",
    "node",
    "createContact",
    "updateContact",
    "deleteContact",
    "upsertContact",
    "patchContactMetadata",
    "recordWhatsappMessage",
    "importContacts",
    "nodes",
    "edges",
    "node",
    "cursor",
    "pageInfo",
    "totalCount",
    "id",
    "phoneNumber",
    "countryCode",
    "metadata",
    "whatsappWindowOpen",
    "lastWhatsappMessageAt",
    "contactEvents",
    "__typename",
    "__schema",
    "types",
    "name",
    "fields",
    "type",
    "ofType",
    "first",
    "last",
    "after",
    "before",
    "filter",
    "orderBy",
    "input",
    "set",
    "unset",
    "receivedAt",
    "field",
    "direction",
    "CREATED_AT",
    "DESC",
    "bogus",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(WORDS).prop_map(str::to_owned), 1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}"]
}

fn literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        "\\PC{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        word(),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "\\$[a-z]{1,3}",
        Just("\"+56912345678\"".to_owned()),
        Just("\"2026-11-24T12:00:00Z\"".to_owned()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec((word(), inner), 0..4).prop_map(|kv| format!(
                "{{{}}}",
                kv.into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]
    })
}

fn selection() -> impl Strategy<Value = String> {
    let field = (
        proptest::option::of((word(), word())),
        word(),
        proptest::collection::vec((word(), literal()), 0..3),
    );
    let leaf = field.prop_map(|(alias, name, args)| {
        let alias = alias.map(|(a, _)| format!("{a}: ")).unwrap_or_default();
        let args = if args.is_empty() {
            String::new()
        } else {
            format!(
                "({})",
                args.into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        format!("{alias}{name}{args}")
    });
    leaf.prop_recursive(4, 24, 4, |inner| {
        (inner.clone(), proptest::collection::vec(inner, 1..4))
            .prop_map(|(head, body)| format!("{head} {{ {} }}", body.join(" ")))
    })
}

fn document() -> impl Strategy<Value = String> {
    let operation = prop_oneof![
        Just(""),
        Just("query"),
        Just("mutation"),
        Just("subscription"),
        Just("query Q($a: Int, $b: String)")
    ];
    let body = proptest::collection::vec(selection(), 1..4);
    let noise = "\\PC{0,6}";
    (operation, body, noise)
        .prop_map(|(op, body, noise)| format!("{op} {{ {} }}{noise}", body.join(" ")))
}

fn variables() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        Just(Value::Null),
        Just(json!({ "phoneNumber": "+56912345678", "metadata": { "k": "v" } })),
        Just(json!([1, "two", null])),
    ];
    proptest::collection::btree_map("[a-z]{1,3}", value, 0..4).prop_map(|m| json!(m))
}

/// Real operations with every variable drawn at random, right type or not: the documents get
/// past parsing, so the resolvers and parsers behind them are what is fuzzed.
const TEMPLATES: &[&str] = &[
    "query($a: Int, $b: String, $c: ContactFilter, $d: ContactOrder) { contacts(first: $a, after: $b, filter: $c, orderBy: $d) { totalCount nodes { id phoneNumber countryCode whatsappWindowOpen metadata lastWhatsappMessageAt } pageInfo { hasNextPage endCursor } } }",
    "query($a: Int, $b: String) { contacts(last: $a, before: $b) { edges { cursor node { id } } } }",
    "query($a: String!, $b: String) { contactByPhoneNumber(phoneNumber: $a, countryCode: $b) { id phoneNumber } }",
    "query($a: ID!) { contact(id: $a) { id } node(id: $a) { id } }",
    "query($c: ContactFilter) { contactStats(filter: $c) { total whatsappWindowOpen } }",
    "mutation($a: CreateContactInput!) { createContact(input: $a) { contact { id metadata } } }",
    "mutation($a: CreateContactInput!) { upsertContact(input: $a) { created contact { id } } }",
    "mutation($a: ID!, $b: UpdateContactInput!) { updateContact(id: $a, input: $b) { contact { id } } }",
    "mutation($a: ID!, $b: Metadata, $c: [String!]) { patchContactMetadata(id: $a, set: $b, unset: $c) { contact { metadata } } }",
    "mutation($a: String!, $b: String, $c: DateTime) { recordWhatsappMessage(phoneNumber: $a, countryCode: $b, receivedAt: $c) { contact { id } } }",
    "mutation($a: [CreateContactInput!]!) { importContacts(contacts: $a) { __typename } }",
    "mutation($a: ID!) { deleteContact(id: $a) { deletedContactId } }",
];

fn variable_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        (0i64..200).prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::from),
        "\\+[0-9 ]{0,16}".prop_map(Value::from),
        "[A-Z]{2}".prop_map(Value::from),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-][01][0-9]:[0-5][0-9])?"
            .prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(WORDS).prop_map(str::to_owned),
                    "\\PC{0,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| json!(m)),
        ]
    })
}

fn templated() -> impl Strategy<Value = (String, Value)> {
    (
        proptest::sample::select(TEMPLATES),
        proptest::collection::btree_map(
            proptest::sample::select(&["a", "b", "c", "d"][..]),
            variable_value(),
            0..4,
        ),
    )
        .prop_map(|(query, variables)| (query.to_owned(), json!(variables)))
}

fn request() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![(document(), variables()), templated()]
}

#[test]
fn generated_documents_never_get_a_5xx_nor_hang() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::start());
    runtime.block_on(app.create(json!({ "phoneNumber": "+56912345678" })));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::new());
    // The request future is built inside the proptest closure: it needs the runtime's context.
    let _context = runtime.enter();
    runner
        .run(&request(), |(query, variables)| {
            let answer = runtime.block_on(tokio::time::timeout(
                Duration::from_secs(10),
                app.post(&query, variables),
            ));
            let (status, body) =
                answer.map_err(|_| TestCaseError::fail(format!("no answer in 10 s to {query}")))?;
            prop_assert!(status.as_u16() < 500, "{status} for {query}: {body}");
            prop_assert!(
                body.get("data").is_some() || body.get("errors").is_some(),
                "{body}"
            );
            let outcome = if body["data"].is_object() {
                "ran"
            } else {
                "refused"
            };
            *statuses
                .borrow_mut()
                .entry((status.as_u16(), outcome))
                .or_insert(0) += 1;
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner();
    println!("fuzz: (status, outcome) counts {statuses:?}");
    // The generator must reach both sides: documents that run and documents that are refused.
    let ran: usize = statuses
        .iter()
        .filter(|((_, outcome), _)| *outcome == "ran")
        .map(|(_, n)| n)
        .sum();
    assert!(ran > 0 && ran < CASES as usize, "{statuses:?}");
}
