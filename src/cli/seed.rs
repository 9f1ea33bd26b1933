//! `contacts-server seed-demo`: believable contacts for a first look in GraphiQL, across
//! countries and every window state, written through the same batch upsert as `import`.

use std::collections::BTreeMap;

use anyhow::anyhow;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::{SeedArgs, domain_error};
use crate::contacts::{
    ContactService,
    bulk::{BATCH_ROWS, BatchReport},
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
    for index in 0..args.count {
        let (input, window) = demo_contact(index, args.seed, now, &mut rng);
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
    let windows: Vec<String> = windows.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "seeded {} demo contacts (created {}, updated {}, unchanged {}); windows: {}",
        args.count,
        totals.created,
        totals.updated,
        totals.unchanged,
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

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}
