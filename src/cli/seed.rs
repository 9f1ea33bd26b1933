//! `contacts-server seed-demo`: believable contacts for a first look in GraphiQL, across
//! countries and every window state, written through the same batch upsert as `import`;
//! every tenth known by WhatsApp username only, recorded as an inbound message or call.

use std::collections::BTreeMap;

use anyhow::anyhow;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::{SeedArgs, domain_error};
use crate::contacts::{
    ContactService,
    bulk::{BATCH_ROWS, BatchReport},
    inbound::{InboundInput, InboundKind},
    input::{ContactInput, NewContact},
};

/// (country, E.164 prefix of a mobile number, digits after it).
const COUNTRIES: &[(&str, &str, u32)] = &[
    ("CL", "+569", 8),
    ("MX", "+5255", 8),
    ("BR", "+55119", 8),
    ("ES", "+346", 8),
    ("US", "+1212", 7),
    ("IN", "+919", 9),
    ("GB", "+447", 9),
    ("DE", "+49151", 8),
];

const NAMES: &[&str] = &[
    "Ana",
    "Bruno",
    "Camila",
    "Diego",
    "Elena",
    "Farah",
    "Gabriel",
    "Hana",
    "Ivan",
    "Julia",
    "Kenji",
    "Lucía",
    "Mateo",
    "Nadia",
    "Omar",
    "Paula",
    "Rafael",
    "Sofía",
    "Tomás",
    "Valentina",
];
const PLANS: &[&str] = &["free", "basic", "pro"];
const SOURCES: &[&str] = &["website", "whatsapp-ad", "referral", "store"];

pub async fn run(service: &ContactService, args: &SeedArgs) -> anyhow::Result<()> {
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let now = service.now();
    let mut totals = BatchReport::default();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut windows: BTreeMap<&str, usize> = BTreeMap::new();
    let mut inbound = Vec::new();
    for index in 0..args.count {
        let (input, window) = demo_contact(index, args.seed, now, &mut rng);
        if let Some(event) = username_only(index, args.seed, &input, now) {
            *windows.entry(window_after(window)).or_default() += 1;
            inbound.push(event);
            continue;
        }
        *windows.entry(window).or_default() += 1;
        let contact = NewContact::parse(input, "", now)
            .map_err(|err| anyhow!("demo contact {index}: {}", err.describe()))?;
        batch.push(contact);
        if batch.len() == BATCH_ROWS {
            totals.add(service.upsert_batch(&batch).await.map_err(domain_error)?);
            batch.clear();
        }
    }
    totals.add(service.upsert_batch(&batch).await.map_err(domain_error)?);
    let users = inbound.len();
    for event in inbound {
        service.record_inbound(event).await.map_err(domain_error)?;
    }
    let windows: Vec<String> = windows.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "seeded {} demo contacts (created {}, updated {}, unchanged {}; {} known by WhatsApp \
         username only, from inbound messages and calls); windows: {}",
        args.count,
        totals.created,
        totals.updated,
        totals.unchanged,
        users,
        windows.join(", ")
    );
    Ok(())
}

/// The `index`th demo contact and the state of its window.
fn demo_contact(
    index: usize,
    seed: u64,
    now: DateTime<Utc>,
    rng: &mut fastrand::Rng,
) -> (ContactInput, &'static str) {
    let (country, prefix, digits) = COUNTRIES[index % COUNTRIES.len()];
    let modulus = 10u64.pow(digits);
    // Multiplying by a number coprime with 10 permutes the k-digit numbers: every index
    // gets its own, scattered phone number, and the same seed gives the same ones.
    let serial = (index as u64 + seed.wrapping_mul(7919)) % modulus;
    let number = serial.wrapping_mul(2_654_435_761) % modulus;
    let phone_number = format!("{prefix}{number:0width$}", width = digits as usize);
    let (last, window) = match rng.u32(0..100) {
        0..35 => (Some(now - minutes(rng.i64(1..22 * 60))), "open"),
        35..45 => (
            Some(now - minutes(23 * 60) - minutes(rng.i64(0..55))),
            "closing within the hour",
        ),
        45..80 => (
            Some(now - minutes(rng.i64(25 * 60..30 * 24 * 60))),
            "closed",
        ),
        _ => (None, "never opened"),
    };
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::from(NAMES[rng.usize(..NAMES.len())]));
    metadata.insert("plan".into(), Value::from(PLANS[rng.usize(..PLANS.len())]));
    if rng.bool() {
        metadata.insert(
            "source".into(),
            Value::from(SOURCES[rng.usize(..SOURCES.len())]),
        );
    }
    let input = ContactInput {
        phone_number: Some(phone_number),
        country_code: Some(country.to_owned()),
        metadata: Some(metadata),
        last_whatsapp_message_at: last,
        ..Default::default()
    };
    (input, window)
}

/// Every tenth demo contact hides its number behind a username: it exists only as the inbound
/// event a webhook worker would record (by BSUID, no phone number), every other one a call.
fn username_only(
    index: usize,
    seed: u64,
    contact: &ContactInput,
    now: DateTime<Utc>,
) -> Option<InboundInput> {
    if index % 10 != 9 {
        return None;
    }
    let country = contact.country_code.clone().unwrap_or_else(|| "US".into());
    let name = contact
        .metadata
        .as_ref()
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Demo");
    // 20 digits, like Meta's, distinct per index and seed.
    let serial = (index as u64).wrapping_add(seed.wrapping_mul(7919)) % 10u64.pow(12);
    Some(InboundInput {
        whatsapp_user_id: Some(format!("{country}.1349{serial:016}")),
        username: Some(format!("{}.{index}", name.to_lowercase())),
        profile_name: Some(name.to_owned()),
        kind: if index % 20 == 19 {
            InboundKind::Call
        } else {
            InboundKind::Message
        },
        // An inbound event always opens a window: "never opened" becomes long closed.
        received_at: Some(
            contact
                .last_whatsapp_message_at
                .unwrap_or(now - minutes(60 * 24 * 40)),
        ),
        ..InboundInput::default()
    })
}

/// The window label of a username-only contact, which always had an inbound event.
fn window_after(window: &'static str) -> &'static str {
    if window == "never opened" {
        "closed"
    } else {
        window
    }
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}
