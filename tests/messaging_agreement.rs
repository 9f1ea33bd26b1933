//! The messaging policy under random histories (from an outside review): random histories of inbound events on several
//! business numbers, marketing choices, blocks, hand-written times and merges, with the
//! clock moved to window boundaries; after every step the fields, the filters and
//! `contactStats` must agree, and `lastWhatsappMessageAt` must be the latest window.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use common::{T0, TestApp, at, code};
use serde_json::{Value, json};

const NUMBERS: [Option<&str>; 3] = [None, Some("111"), Some("222")];
const PHONES: [&str; 5] = [
    "+56912345670",
    "+56912345671",
    "+56912345672",
    "+56912345673",
    "+56912345674",
];
const BSUIDS: [&str; 3] = ["CL.AAA1", "CL.AAA2", "CL.AAA3"];

const INBOUND: &str = "mutation($p: String, $u: String, $n: String, $at: DateTime) {
    recordWhatsappInbound(input: { phoneNumber: $p, whatsappUserId: $u,
        businessPhoneNumberId: $n, receivedAt: $at }) { contact { id } } }";
const PREFERENCE: &str =
    "mutation($p: String, $u: String, $n: String, $out: Boolean!, $at: DateTime!) {
    recordMarketingPreference(phoneNumber: $p, whatsappUserId: $u, businessPhoneNumberId: $n,
        optedOut: $out, at: $at) { contact { id } } }";
const BLOCK: &str = "mutation($id: ID!, $b: Boolean!) {
    setContactBlocked(id: $id, blocked: $b) { contact { blocked } } }";
const UPDATE: &str = "mutation($id: ID!, $at: DateTime) {
    updateContact(id: $id, input: { lastWhatsappMessageAt: $at }) { contact { id } } }";

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ids(list: &Value) -> BTreeSet<String> {
    list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Everything about `number`, at one instant: three requests (each count is charged by what
/// it may read, and nine of them with the pages exceed the complexity limit of one document),
/// with no write and no clock move between them.
async fn check(app: &TestApp, number: Option<&str>, step: &str) {
    let parts = [
        "query($n: String) {
              all: contacts(first: 100) { totalCount nodes { id lastWhatsappMessageAt blocked
                whatsappWindows { businessPhoneNumberId lastInboundAt open expiresAt }
                whatsappWindowOpen(businessPhoneNumberId: $n)
                whatsappWindowExpiresAt(businessPhoneNumberId: $n)
                marketingOptedOut(businessPhoneNumberId: $n)
                messaging(businessPhoneNumberId: $n) { freeForm template marketingTemplate reasons } } }
              stats: contactStats(filter: { businessPhoneNumberId: $n }) { total whatsappWindowOpen }
              statsOpen: contactStats(filter: { businessPhoneNumberId: $n, whatsappWindowOpen: true }) { total whatsappWindowOpen }
            }",
        "query($n: String) {
              wo: contacts(first: 100, filter: { businessPhoneNumberId: $n, whatsappWindowOpen: true }) { totalCount nodes { id } }
              wc: contacts(first: 100, filter: { businessPhoneNumberId: $n, whatsappWindowOpen: false }) { totalCount nodes { id } }
              ff: contacts(first: 100, filter: { businessPhoneNumberId: $n, messagingFreeForm: true }) { totalCount nodes { id } }
              nf: contacts(first: 100, filter: { businessPhoneNumberId: $n, messagingFreeForm: false }) { totalCount nodes { id } }
            }",
        "query($n: String) {
              ma: contacts(first: 100, filter: { businessPhoneNumberId: $n, marketingAllowed: true }) { totalCount nodes { id } }
              md: contacts(first: 100, filter: { businessPhoneNumberId: $n, marketingAllowed: false }) { totalCount nodes { id } }
              combo: contacts(first: 100, filter: { businessPhoneNumberId: $n, whatsappWindowOpen: true, marketingAllowed: false, messagingFreeForm: false }) { totalCount nodes { id } }
            }",
    ];
    let mut data = serde_json::Map::new();
    for query in parts {
        let part = app.data(query, json!({ "n": number })).await;
        data.extend(part.as_object().cloned().unwrap_or_default());
    }
    let data = Value::Object(data);
    let ctx = format!("{step} number={number:?}\n{data:#}");
    let nodes = data["all"]["nodes"].as_array().unwrap();
    let mut want = [(); 7].map(|()| BTreeSet::new());
    for node in nodes {
        let id = node["id"].as_str().unwrap().to_owned();
        let windows = node["whatsappWindows"].as_array().unwrap();
        // The contact-level time is the latest window.
        let latest = windows
            .iter()
            .map(|w| at(w["lastInboundAt"].as_str().unwrap()))
            .max();
        let last = node["lastWhatsappMessageAt"].as_str().map(at);
        assert_eq!(
            last, latest,
            "lastWhatsappMessageAt != latest window: {ctx}"
        );
        // Windows newest first, at most one per number.
        let times: Vec<_> = windows
            .iter()
            .map(|w| at(w["lastInboundAt"].as_str().unwrap()))
            .collect();
        assert!(
            times.windows(2).all(|p| p[0] >= p[1]),
            "not newest first: {ctx}"
        );
        let open = node["whatsappWindowOpen"].as_bool().unwrap();
        let expected_open = windows
            .iter()
            .filter(|w| number.is_none() || w["businessPhoneNumberId"].as_str() == number)
            .any(|w| w["open"].as_bool().unwrap());
        assert_eq!(
            open, expected_open,
            "field vs whatsappWindows[].open: {ctx}"
        );
        let m = &node["messaging"];
        let blocked = node["blocked"].as_bool().unwrap();
        let out = node["marketingOptedOut"].as_bool().unwrap();
        assert_eq!(m["freeForm"], json!(open && !blocked), "{ctx}");
        assert_eq!(m["template"], json!(!blocked), "{ctx}");
        assert_eq!(m["marketingTemplate"], json!(!blocked && !out), "{ctx}");
        let mut reasons = vec![];
        if !open {
            reasons.push("WINDOW_CLOSED");
        }
        if blocked {
            reasons.push("BLOCKED");
        }
        if out {
            reasons.push("MARKETING_OPT_OUT");
        }
        assert_eq!(m["reasons"], json!(reasons), "{ctx}");
        let free = open && !blocked;
        let market = !blocked && !out;
        let sets = [
            open,
            !open,
            free,
            !free,
            market,
            !market,
            open && !market && !free,
        ];
        for (set, member) in want.iter_mut().zip(sets) {
            if member {
                set.insert(id.clone());
            }
        }
    }
    for (name, expected) in ["wo", "wc", "ff", "nf", "ma", "md", "combo"]
        .iter()
        .zip(&want)
    {
        assert_eq!(
            &ids(&data[*name]),
            expected,
            "filter {name} disagrees: {ctx}"
        );
        assert_eq!(
            data[*name]["totalCount"].as_u64().unwrap() as usize,
            expected.len(),
            "{name} totalCount: {ctx}"
        );
    }
    assert_eq!(
        data["stats"]["total"].as_u64().unwrap() as usize,
        nodes.len(),
        "{ctx}"
    );
    assert_eq!(
        data["stats"]["whatsappWindowOpen"].as_u64().unwrap() as usize,
        want[0].len(),
        "contactStats.whatsappWindowOpen: {ctx}"
    );
    assert_eq!(
        data["statsOpen"]["whatsappWindowOpen"].as_u64().unwrap() as usize,
        want[0].len(),
        "{ctx}"
    );
}

async fn check_all(app: &TestApp, step: &str) {
    for number in NUMBERS {
        check(app, number, step).await;
    }
}

/// Some instant near the clock: whole seconds or with a fraction (3 or 6 digits).
fn instant(rng: &mut fastrand::Rng, now: DateTime<Utc>) -> DateTime<Utc> {
    let back = TimeDelta::seconds(rng.i64(-200..60 * 60 * 30));
    let frac = match rng.u8(0..3) {
        0 => TimeDelta::zero(),
        1 => TimeDelta::milliseconds(rng.i64(0..1000)),
        _ => TimeDelta::microseconds(rng.i64(0..1_000_000)),
    };
    now - back + frac
}

async fn random_history(seed: u64, steps: usize) {
    let app = TestApp::start().await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut now = at(T0);
    let mut times: Vec<DateTime<Utc>> = vec![];
    for step in 0..steps {
        let label = format!("seed {seed} step {step}");
        let phone = PHONES[rng.usize(..PHONES.len())];
        let number = NUMBERS[rng.usize(..NUMBERS.len())];
        match rng.u8(0..14) {
            10 => {
                let t = json!(fmt(instant(&mut rng, now)));
                let (_, body) = app
                    .post(
                        "mutation($p: String!, $at: DateTime) { upsertContact(input: { phoneNumber: $p, lastWhatsappMessageAt: $at }) { contact { id } } }",
                        json!({ "p": phone, "at": t }),
                    )
                    .await;
                assert!(body.get("errors").is_none(), "{label}: {body}");
            }
            11 => {
                let t = fmt(instant(&mut rng, now));
                let u = BSUIDS[rng.usize(..3)];
                let (_, body) = app
                    .post(
                        "mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created updated failed { index code message } } }",
                        json!({ "c": [
                            { "phoneNumber": phone, "lastWhatsappMessageAt": t },
                            { "whatsappUserId": u, "lastWhatsappMessageAt": t },
                        ] }),
                    )
                    .await;
                assert!(body.get("errors").is_none(), "{label}: {body}");
                for f in body["data"]["importContacts"]["failed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    assert_ne!(f["code"], "INTERNAL_SERVER_ERROR", "{label}: {body}");
                }
            }
            12 => {
                let t = fmt(instant(&mut rng, now));
                let (_, body) = app
                    .post(
                        "mutation($p: String!, $at: DateTime) { recordWhatsappMessage(phoneNumber: $p, receivedAt: $at) { contact { id } } }",
                        json!({ "p": phone, "at": t }),
                    )
                    .await;
                assert!(body.get("errors").is_none(), "{label}: {body}");
            }
            13 => {
                if rng.u8(0..4) == 0 {
                    let list = app
                        .data("{ contacts(first: 100) { nodes { id } } }", json!({}))
                        .await;
                    let nodes = list["contacts"]["nodes"].as_array().unwrap().clone();
                    if !nodes.is_empty() {
                        let id = nodes[rng.usize(..nodes.len())]["id"].clone();
                        let (_, body) = app
                            .post("mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }", json!({ "id": id }))
                            .await;
                        assert!(body.get("errors").is_none(), "{label}: {body}");
                    }
                }
            }
            0..=2 => {
                let t = instant(&mut rng, now);
                times.push(t);
                // Sometimes by BSUID alone, sometimes both (merges), mostly by phone.
                let (p, u) = match rng.u8(0..6) {
                    0 => (None, Some(BSUIDS[rng.usize(..3)])),
                    1 => (Some(phone), Some(BSUIDS[rng.usize(..3)])),
                    _ => (Some(phone), None),
                };
                let (_, body) = app
                    .post(
                        INBOUND,
                        json!({ "p": p, "u": u, "n": number, "at": fmt(t) }),
                    )
                    .await;
                if body.get("errors").is_some() {
                    // A BSUID moving to another phone may be refused; never a 5xx.
                    let c = code(&body["errors"][0]).to_owned();
                    assert!(c != "INTERNAL_SERVER_ERROR", "{label}: {body}");
                }
            }
            3..=4 => {
                let t = instant(&mut rng, now);
                // Equal times on purpose now and then.
                let t = if rng.bool() && !times.is_empty() {
                    times[rng.usize(..times.len())]
                } else {
                    t
                };
                times.push(t);
                let (_, body) = app
                    .post(
                        PREFERENCE,
                        json!({ "p": phone, "n": number, "out": rng.bool(), "at": fmt(t) }),
                    )
                    .await;
                assert!(body.get("errors").is_none(), "{label}: {body}");
            }
            5 => {
                let list = app
                    .data("{ contacts(first: 100) { nodes { id } } }", json!({}))
                    .await;
                let nodes = list["contacts"]["nodes"].as_array().unwrap().clone();
                if nodes.is_empty() {
                    continue;
                }
                let id = nodes[rng.usize(..nodes.len())]["id"].clone();
                let (_, body) = app.post(BLOCK, json!({ "id": id, "b": rng.bool() })).await;
                if let Some(err) = body.get("errors") {
                    assert_eq!(code(&err[0]), "FAILED_PRECONDITION", "{label}: {body}");
                }
            }
            6 => {
                let list = app
                    .data("{ contacts(first: 100) { nodes { id } } }", json!({}))
                    .await;
                let nodes = list["contacts"]["nodes"].as_array().unwrap().clone();
                if nodes.is_empty() {
                    continue;
                }
                let id = nodes[rng.usize(..nodes.len())]["id"].clone();
                let t = if rng.u8(0..4) == 0 {
                    Value::Null
                } else {
                    json!(fmt(instant(&mut rng, now)))
                };
                let (_, body) = app.post(UPDATE, json!({ "id": id, "at": t })).await;
                assert!(body.get("errors").is_none(), "{label}: {body}");
            }
            _ => {
                // Move the clock: to a window boundary, just before, or forward.
                let before = now;
                now = match rng.u8(0..3) {
                    0 if !times.is_empty() => {
                        times[rng.usize(..times.len())] + TimeDelta::hours(24)
                    }
                    1 if !times.is_empty() => {
                        times[rng.usize(..times.len())] + TimeDelta::hours(24)
                            - TimeDelta::microseconds(1)
                    }
                    _ => now + TimeDelta::seconds(rng.i64(0..60 * 60 * 12)),
                };
                // The clock never goes back on the server; keep it monotonic.
                now = now.max(before);
                app.clock.set(now);
            }
        }
        check_all(&app, &label).await;
    }
}

#[tokio::test]
async fn fields_filters_and_counts_agree_on_random_histories() {
    let seeds: u64 = std::env::var("ATTACK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 0..seeds {
        random_history(seed, 60).await;
    }
}

/// Concurrent writers of the same people on several numbers (messages, hand-written
/// times, choices at equal instants, events that merge a BSUID-only contact into a phone
/// contact), then the same agreement and `lastWhatsappMessageAt` = latest window.
#[tokio::test]
async fn concurrent_writers_keep_the_contact_level_time_the_latest_window() {
    let app = std::sync::Arc::new(TestApp::start().await);
    for round in 0..4u64 {
        let mut tasks = vec![];
        for task in 0..24u64 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(round * 100 + task);
                let now = at(T0);
                for _ in 0..6 {
                    let phone = PHONES[rng.usize(..3)];
                    let number = NUMBERS[rng.usize(..NUMBERS.len())];
                    let t = fmt(now - TimeDelta::seconds(rng.i64(0..60 * 60 * 30)));
                    let body = match rng.u8(0..5) {
                        0 => {
                            let u = BSUIDS[rng.usize(..3)];
                            let p = rng.bool().then_some(phone);
                            app.post(INBOUND, json!({ "p": p, "u": u, "n": number, "at": t }))
                                .await
                                .1
                        }
                        1 => {
                            let out = rng.bool();
                            app.post(
                                PREFERENCE,
                                json!({ "p": phone, "n": number, "out": out, "at": "2026-11-24T06:00:00Z" }),
                            )
                            .await
                            .1
                        }
                        2 => {
                            let list = app
                                .data("{ contacts(first: 100) { nodes { id } } }", json!({}))
                                .await;
                            let nodes = list["contacts"]["nodes"].as_array().unwrap().clone();
                            if nodes.is_empty() {
                                continue;
                            }
                            let id = nodes[rng.usize(..nodes.len())]["id"].clone();
                            let t = if rng.bool() { Value::Null } else { json!(t) };
                            app.post(UPDATE, json!({ "id": id, "at": t })).await.1
                        }
                        _ => {
                            app.post(INBOUND, json!({ "p": phone, "n": number, "at": t }))
                                .await
                                .1
                        }
                    };
                    if let Some(err) = body.get("errors") {
                        let c = code(&err[0]);
                        assert!(
                            ["CONFLICT", "NOT_FOUND"].contains(&c),
                            "round {round} task {task}: {body}"
                        );
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        check_all(&app, &format!("concurrent round {round}")).await;
    }
}
