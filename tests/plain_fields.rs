//! A selection of a contact's plain fields is written without async-graphql's future per field
//! (`graphql::plain_fields`). These tests hold that path to what the resolvers answer: the same
//! document, once plain and once with a directive that sends it down async-graphql's path, must
//! give the same bytes.

mod common;

use chrono::{Duration, SecondsFormat};
use common::{T0, TestApp, at};
use serde_json::{Value, json};

/// Every field a contact answers from its row alone.
const PLAIN: &str = "__typename id phoneNumber countryCode lastWhatsappMessageAt \
    whatsappWindowOpen whatsappWindowExpiresAt blocked metadata whatsappUserId \
    parentWhatsappUserId whatsappUsername whatsappProfileName createdAt updatedAt";

/// The response body as sent, so the order of keys is compared too.
async fn body(app: &TestApp, query: &str, variables: Value) -> String {
    let response = app.send(query, variables).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(!text.contains("\"errors\""), "{text}");
    text
}

/// Contacts of every shape: full with a window open (and blocked), closed, never messaged, known
/// by user id alone.
async fn seed(app: &TestApp) -> Vec<Value> {
    let hour_ago = (at(T0) - Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Micros, true);
    let inputs = [
        json!({ "phoneNumber": "+56945000001", "lastWhatsappMessageAt": hour_ago,
                "metadata": { "plan": "gold", "quote": "\"a\"\n", "emoji": "😀" } }),
        json!({ "phoneNumber": "+12025550100", "whatsappUserId": "US.1",
                "lastWhatsappMessageAt": "2020-01-02T03:04:05.123456Z", "metadata": {} }),
        json!({ "phoneNumber": "+447700900123" }),
        json!({ "whatsappUserId": "CL.abcXYZ123", "parentWhatsappUserId": "CL.P1",
                "whatsappUsername": "zoë", "whatsappProfileName": "Zoë 😀" }),
    ];
    let mut contacts = Vec::new();
    for input in inputs {
        contacts.push(app.create(input).await);
    }
    let block =
        "mutation($id: ID!) { setContactBlocked(id: $id, blocked: true) { contact { id } } }";
    app.data(block, json!({ "id": contacts[0]["id"] })).await;
    contacts
}

#[tokio::test]
async fn a_page_of_plain_fields_answers_what_the_resolvers_answer() {
    let app = TestApp::start().await;
    seed(&app).await;
    let page = |extra: &str| {
        format!("{{ contacts(first: 10) {{ nodes {{ {PLAIN} again: id id{extra} }} }} }}")
    };
    let plain = body(&app, &page(""), json!({})).await;
    let resolved = body(&app, &page(" @include(if: true)"), json!({})).await;
    assert_eq!(plain, resolved);
    // A fragment is not plain either: the same answer again.
    let fragment = format!(
        "{{ contacts(first: 10) {{ nodes {{ ... on Contact {{ {PLAIN} again: id id }} }} }} }}"
    );
    assert_eq!(plain, body(&app, &fragment, json!({})).await);
    // Every shape is in it, so each field was compared with a value and with null.
    let page: Value = serde_json::from_str(&plain).unwrap();
    let nodes = page["data"]["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 4);
    for field in [
        "phoneNumber",
        "lastWhatsappMessageAt",
        "whatsappUserId",
        "whatsappUsername",
    ] {
        assert!(nodes.iter().any(|node| node[field].is_null()), "{field}");
        assert!(nodes.iter().any(|node| !node[field].is_null()), "{field}");
    }
    for field in ["whatsappWindowOpen", "blocked"] {
        assert!(
            nodes.iter().any(|node| node[field] == json!(true)),
            "{field}"
        );
        assert!(
            nodes.iter().any(|node| node[field] == json!(false)),
            "{field}"
        );
    }
    assert_eq!(nodes[0]["metadata"]["quote"], "\"a\"\n");
    assert_eq!(nodes[0]["__typename"], "Contact");
    assert_eq!(nodes[0]["again"], nodes[0]["id"]);
}

/// The object under `data.<root>` of a body, as text.
fn object_of<'a>(body: &'a str, root: &str) -> &'a str {
    let start = format!("{{\"data\":{{\"{root}\":");
    body.strip_prefix(&start)
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test]
async fn a_single_contact_answers_alike_by_phone_number_and_by_node_id() {
    let app = TestApp::start().await;
    let contacts = seed(&app).await;
    let by_phone = |extra: &str| {
        format!("{{ contactByPhoneNumber(phoneNumber: \"+56945000001\") {{ {PLAIN}{extra} }} }}")
    };
    let plain = body(&app, &by_phone(""), json!({})).await;
    assert_eq!(
        plain,
        body(&app, &by_phone(" id @include(if: true)"), json!({})).await
    );
    // `contact(id:)` answers through the `Node` interface, field by field.
    let id = contacts[0]["id"].clone();
    let by_id =
        format!("query($id: ID!) {{ contact(id: $id) {{ ... on Contact {{ {PLAIN} }} }} }}");
    let node = body(&app, &by_id, json!({ "id": id })).await;
    assert_eq!(
        object_of(&plain, "contactByPhoneNumber"),
        object_of(&node, "contact")
    );
    let answer: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(answer["data"]["contactByPhoneNumber"]["id"], id);
    assert_eq!(
        answer["data"]["contactByPhoneNumber"]["metadata"]["plan"],
        "gold"
    );
}
