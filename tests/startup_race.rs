//! Several instances starting at the same moment on an empty database all come up, and the
//! migrations run once.

mod common;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
};

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, Statement};

const BIN: &str = env!("CARGO_BIN_EXE_contacts-server");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn start(url: &str) -> Child {
    Command::new(BIN)
        .env("DATABASE_URL", url)
        .env("PORT", free_port().to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server")
}

/// Reads the server's log until it listens; returns the log so far.
fn wait_until_listening(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut log = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("server output");
        let listening = line.contains("GraphiQL and the API at");
        log.push(line);
        if listening {
            return log;
        }
    }
    panic!("server exited during start-up:\n{}", log.join("\n"));
}

#[tokio::test]
async fn instances_starting_together_all_come_up_and_migrate_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut children: Vec<Child> = (0..3).map(|_| start(&url)).collect();
    let logs: Vec<Vec<String>> = children.iter_mut().map(wait_until_listening).collect();
    for child in &mut children {
        child.kill().expect("stop server");
        child.wait().expect("reap");
    }
    let applied = logs
        .iter()
        .filter(|log| log.iter().any(|l| l.contains("has been applied")))
        .count();
    assert_eq!(
        applied, 1,
        "exactly one instance applies the migration:\n{logs:#?}"
    );

    let db = Database::connect(&url).await.expect("connect");
    let backend = db.get_database_backend();
    let rows = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .expect("count")
        .expect("a row");
    let recorded: i64 = rows.try_get("", "n").expect("n");
    assert_eq!(recorded, migration::Migrator::migrations().len() as i64);
}
