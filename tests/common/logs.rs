//! The log capture of a whole test run: with `TEST_LOG_DIR` set, every in-process app of a
//! test binary and every server process a test starts logs JSON lines into files there, for
//! `scripts/check-logs` to search for secrets and phone numbers once the run is over.

use std::{
    fs::File,
    path::PathBuf,
    sync::{Mutex, Once},
};

/// Server-side targets at `debug` (database statements included); the test's own clients quiet.
const FILTER: &str = "debug,hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,\
    tungstenite=info,tokio_tungstenite=info,graphql_ws_client=info";

fn dir() -> Option<PathBuf> {
    std::env::var_os("TEST_LOG_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

fn new_file(kind: &str) -> Option<File> {
    let dir = dir()?;
    let name = format!("{kind}-{}.log", uuid::Uuid::now_v7().simple());
    Some(File::create(dir.join(name)).expect("TEST_LOG_DIR must be a writable directory"))
}

/// Installs, once per test binary, a subscriber logging every in-process app's lines.
pub fn capture_in_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(file) = new_file("in-process") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(FILTER))
                .json()
                .with_current_span(true)
                .with_writer(Mutex::new(file))
                .try_init();
        }
    });
}

/// A file for one server process's lines.
pub fn process_capture() -> Option<File> {
    new_file("process")
}
