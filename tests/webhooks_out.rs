//! Outgoing webhooks (`WEBHOOK_URLS`): every change of the log reaches the receiver exactly
//! once by idempotency key, in log order, signed, through refusals, an outage, two instances,
//! restarts and crashes; changes pruned before delivery are skipped and counted; bad settings
//! stop the server from starting.

mod common;
#[path = "webhooks_out/receiver.rs"]
mod receiver;
#[path = "webhooks_out/support.rs"]
mod support;

use std::{process::Command, sync::Arc, time::Duration};

use chrono::TimeDelta;
use common::{TestApp, process::BIN};
use contacts_server::contacts::{clock::ManualClock, webhook_positions::Lease};
use receiver::{Receiver, SECRET};
use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_arrives_once_in_order_through_refusals_and_an_outage() {
    let app = TestApp::start().await;
    let mut receiver = Receiver::start(app.clock.clone(), 3).await;
    let (hooked, hooks, _) = instance(&app, &receiver.url()).await;
    let ids = create(&hooked, 4).await;
    receiver
        .wait_until("4 changes", |seen| seen.accepted.len() >= 4)
        .await;

    receiver.stop().await;
    // The receiver is down for a minute of the server's clock (its lease is renewed past it).
    app.clock.advance(TimeDelta::seconds(60));
    hooked
        .data(PATCH, json!({ "id": ids[0], "set": { "plan": "pro" } }))
        .await;
    hooked
        .data(PATCH, json!({ "id": ids[1], "set": { "plan": "free" } }))
        .await;
    hooked.data(DELETE, json!({ "id": ids[0] })).await;
    create(&app, 2).await;
    // Refused connections, observed rather than waited for.
    let connect_errors = sample(&receiver, "deliveries_total", Some("connect_error"));
    wait_for_metric(&hooked, &connect_errors, 3.0).await;
    let lag = sample(&receiver, "lag", None);
    wait_for_metric(&hooked, &lag, 1.0).await;

    receiver.restart().await;
    receiver
        .wait_until("9 changes", |seen| seen.accepted.len() >= 9)
        .await;
    hooks.stop().await;
    assert_exactly_the_log(&app, &receiver).await;
    receiver.seen(|seen| {
        assert!(
            seen.attempts.values().all(|tries| *tries == 4),
            "{:?}",
            seen.attempts
        );
    });
    // Per contact, the order of its changes: created, updated, deleted.
    let kinds: Vec<String> = receiver.seen(|seen| {
        let of_first = seen
            .accepted
            .iter()
            .filter(|change| change["contactId"] == ids[0]);
        of_first
            .map(|change| change["kind"].as_str().expect("kind").to_owned())
            .collect()
    });
    assert_eq!(kinds, ["CREATED", "UPDATED", "DELETED"]);
    let retries = sample(&receiver, "retries_total", None);
    assert!(wait_for_metric(&hooked, &retries, 1.0).await >= 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_carry_the_documented_body() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(app.clock.clone(), 0).await;
    let (hooked, hooks, _) = instance(&app, &receiver.url()).await;
    let id = create(&hooked, 1).await.remove(0);
    hooked.data(DELETE, json!({ "id": id })).await;
    receiver
        .wait_until("2 changes", |seen| seen.accepted.len() >= 2)
        .await;
    hooks.stop().await;
    let (created, deleted) =
        receiver.seen(|seen| (seen.accepted[0].clone(), seen.accepted[1].clone()));
    assert_eq!(created["kind"], "CREATED");
    assert_eq!(created["contactId"], id);
    assert_eq!(created["contact"]["id"], id);
    assert!(created["contact"]["phoneNumber"].is_string(), "{created}");
    assert_eq!(created["at"], "2026-11-24T12:00:00.000000Z");
    assert_eq!(
        created["idempotencyKey"],
        format!("change-{}", created["position"])
    );
    assert_eq!(deleted["kind"], "DELETED");
    assert_eq!(deleted["contact"], Value::Null);
    assert_exactly_the_log(&app, &receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_take_turns_and_lose_nothing() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(app.clock.clone(), 1).await;
    let (a, hooks_a, _) = instance(&app, &receiver.url()).await;
    let (b, hooks_b, _) = instance(&app, &receiver.url()).await;
    tokio::join!(create(&a, 6), create(&b, 6));
    receiver
        .wait_until("12 changes", |seen| seen.accepted.len() >= 12)
        .await;
    // Whichever held the lease, the other carries on once this one stops.
    hooks_a.stop().await;
    create(&a, 3).await;
    receiver
        .wait_until("15 changes", |seen| seen.accepted.len() >= 15)
        .await;
    hooks_b.stop().await;
    assert_exactly_the_log(&app, &receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_stored_position_and_a_crash_after_the_lease() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(app.clock.clone(), 1).await;
    let (first, hooks, _) = instance(&app, &receiver.url()).await;
    create(&first, 4).await;
    receiver
        .wait_until("4 changes", |seen| seen.accepted.len() >= 4)
        .await;
    hooks.stop().await;
    let delivered = receiver.seen(|seen| seen.attempts.len());

    // A new instance on the same database: acknowledged batches are not sent again.
    let (second, hooks, service) = instance(&app, &receiver.url()).await;
    create(&second, 2).await;
    receiver
        .wait_until("6 changes", |seen| seen.accepted.len() >= 6)
        .await;
    assert_exactly_the_log(&app, &receiver).await;
    let deliveries = receiver.seen(|seen| seen.attempts.clone());
    assert!(deliveries.len() > delivered);
    assert!(
        deliveries.values().all(|tries| *tries == 2),
        "{deliveries:?}"
    );

    // A crash keeps the lease: the next instance delivers once it has expired. (Crashing
    // once the position is stored, so nothing accepted is owed again.)
    acknowledged_through_head(&service).await;
    hooks.abort();
    let (third, hooks, _) = instance(&app, &receiver.url()).await;
    create(&third, 1).await;
    app.clock.advance(TimeDelta::seconds(61));
    receiver
        .wait_until("7 changes", |seen| seen.accepted.len() >= 7)
        .await;
    hooks.stop().await;
    assert_exactly_the_log(&app, &receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_pruned_before_delivery_are_skipped_and_counted() {
    let app = TestApp::start().await;
    let mut receiver = Receiver::start(app.clock.clone(), 0).await;
    receiver.stop().await;
    let (hooked, hooks, service) = instance(&app, &receiver.url()).await;
    create(&hooked, 2).await;
    let connect_errors = sample(&receiver, "deliveries_total", Some("connect_error"));
    wait_for_metric(&hooked, &connect_errors, 1.0).await;

    app.clock.advance(TimeDelta::days(31));
    assert_eq!(service.prune_changes().await.expect("prune"), 2);
    create(&hooked, 1).await;
    receiver.restart().await;
    receiver
        .wait_until("1 change", |seen| !seen.accepted.is_empty())
        .await;
    let expired = sample(&receiver, "expired_positions_total", None);
    assert_eq!(wait_for_metric(&hooked, &expired, 2.0).await, 2.0);
    hooks.stop().await;
    assert_exactly_the_log(&app, &receiver).await;
    assert_eq!(receiver.keys().len(), 1);
}

/// Starts the binary with `env`; its stderr, once it has exited unsuccessfully.
fn refused_start(env: &[(&str, &str)]) -> String {
    let mut command = Command::new(BIN);
    command
        .env("DATABASE_URL", "sqlite::memory:")
        .env("PORT", "0")
        .env_remove("WEBHOOK_URLS")
        .env_remove("WEBHOOK_SECRET");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run");
    assert!(!output.status.success(), "started with {env:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_webhook_settings_stop_the_start() {
    let url = ("WEBHOOK_URLS", "https://hooks.example.com/in");
    let no_secret = refused_start(&[url]);
    assert!(no_secret.contains("WEBHOOK_SECRET is not"), "{no_secret}");
    let short = refused_start(&[url, ("WEBHOOK_SECRET", "short")]);
    assert!(short.contains("at least 32 bytes"), "{short}");
    let bad_url = refused_start(&[
        (
            "WEBHOOK_URLS",
            "https://ok.example.com/a,hooks.example.com/in?token=s3cr3t",
        ),
        ("WEBHOOK_SECRET", SECRET),
    ]);
    assert!(bad_url.contains("entry 2 is not a URL"), "{bad_url}");
    assert!(
        !bad_url.contains("s3cr3t"),
        "the URL's token was printed: {bad_url}"
    );
    let ftp = refused_start(&[
        ("WEBHOOK_URLS", "ftp://hooks.example.com/in"),
        ("WEBHOOK_SECRET", SECRET),
    ]);
    assert!(ftp.contains("must be an http:// or https:// URL"), "{ftp}");
}

#[tokio::test]
async fn only_the_lease_holder_moves_the_position_and_only_forwards() {
    let app = TestApp::start().await;
    let (_, hooks, service) = instance(&app, "http://127.0.0.1:9/unused").await;
    hooks.stop().await;
    service
        .register_webhook_endpoint("e", "o")
        .await
        .expect("register");
    let a = Lease {
        endpoint: "e",
        holder: "a",
    };
    let b = Lease {
        endpoint: "e",
        holder: "b",
    };
    let minute = 60_000;
    assert_eq!(
        service.take_webhook_lease(a, minute).await.expect("take"),
        Some(0)
    );
    assert_eq!(
        service.take_webhook_lease(b, minute).await.expect("take"),
        None
    );
    assert!(
        service
            .advance_webhook_position(a, 5)
            .await
            .expect("advance")
    );
    assert!(
        !service
            .advance_webhook_position(b, 6)
            .await
            .expect("advance")
    );

    // A's lease expires (A stalled); B takes over, and A can no longer move anything.
    app.clock.advance(TimeDelta::seconds(61));
    assert_eq!(
        service.take_webhook_lease(b, minute).await.expect("take"),
        Some(5)
    );
    assert!(
        !service
            .advance_webhook_position(a, 9)
            .await
            .expect("advance")
    );
    assert_eq!(
        service.take_webhook_lease(a, minute).await.expect("take"),
        None
    );
    assert!(
        service
            .advance_webhook_position(b, 9)
            .await
            .expect("advance")
    );
    assert!(
        !service
            .advance_webhook_position(b, 7)
            .await
            .expect("never backwards")
    );

    // Released on shutdown: taken at once, at the stored position.
    service.release_webhook_lease(b).await.expect("release");
    assert_eq!(
        service.take_webhook_lease(a, minute).await.expect("take"),
        Some(9)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_silent_receivers_time_out_endless_answers_are_cut() {
    use axum::{
        body::{Body, Bytes},
        http::{StatusCode, header::LOCATION},
        routing::post,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    let redirected = Arc::new(AtomicUsize::new(0));
    let counted = redirected.clone();
    let endless = || {
        Body::from_stream(futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 1024]))
        }))
    };
    let router = axum::Router::new()
        .route(
            "/redirect",
            post(|| async { (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, "/target")]) }),
        )
        .route(
            "/target",
            post(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }),
        )
        .route("/silent", post(std::future::pending::<StatusCode>))
        .route(
            "/endless",
            post(move || async move { (StatusCode::OK, endless()) }),
        );
    let addr = serve(router).await;
    let urls: Vec<String> = ["redirect", "silent", "endless"]
        .iter()
        .map(|path| format!("http://{addr}/{path}"))
        .collect();
    let mut settings = settings_for(&urls);
    settings.timeout = Duration::from_millis(300);
    let app = TestApp::start().await;
    let (hooked, hooks, _) = instance_with(&app, settings).await;
    create(&hooked, 1).await;

    wait_for_metric(
        &hooked,
        &sample_of(&urls[0], "deliveries_total", Some("http_error")),
        2.0,
    )
    .await;
    wait_for_metric(
        &hooked,
        &sample_of(&urls[1], "deliveries_total", Some("timeout")),
        1.0,
    )
    .await;
    wait_for_metric(
        &hooked,
        &sample_of(&urls[2], "deliveries_total", Some("ok")),
        1.0,
    )
    .await;
    hooks.stop().await;
    assert_eq!(
        redirected.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_delivers_and_gives_its_lease_up_on_sigterm() {
    use sea_orm::EntityTrait;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let clock = ManualClock::new(chrono::Utc::now());
    let receiver = Receiver::start(clock, 0).await;
    let mut child = common::process::command(Some(&url))
        .env("WEBHOOK_URLS", receiver.url())
        .env("WEBHOOK_SECRET", SECRET)
        .spawn()
        .expect("start server");
    let base = common::process::wait_until_listening(&mut child).base;
    let created = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": common::CREATE, "variables": { "input": { "phoneNumber": "+56912345678" } } }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200);
    receiver
        .wait_until("1 change", |seen| seen.accepted.len() == 1)
        .await;

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = tokio::task::spawn_blocking(move || child.wait());
    let status = tokio::time::timeout(Duration::from_secs(30), exited).await;
    let status = status.expect("stopped").expect("join").expect("wait");
    assert!(status.success(), "{status}");
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    let row = entity::webhook_position::Entity::find()
        .one(&db)
        .await
        .expect("read");
    let row = row.expect("the endpoint's row");
    assert_eq!((row.position, row.holder), (1, None));
    assert_eq!(row.origin, format!("http://{}", receiver.addr));
}
