//! Running the real `contacts-server` binary.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::mpsc,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_contacts-server");

/// The server on any free port with `database_url` (the default when `None`), logging to a
/// pipe; [`wait_until_listening`] tells the address it got.
pub fn command(database_url: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
        .env("PORT", "0")
        .env("RUST_LOG", "debug,hyper=info,hyper_util=info,h2=info")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// A started server: its base URL, its start-up log, and the lines it logs after.
pub struct Started {
    pub base: String,
    pub log: Vec<String>,
    pub later: mpsc::Receiver<String>,
}

/// Reads the server's log until it listens (an event, not the passage of time); the rest of
/// its log keeps coming on `later` (and into the run's log capture, see `super::logs`).
pub fn wait_until_listening(child: &mut Child) -> Started {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut log = Vec::new();
    let mut capture = super::logs::process_capture();
    for line in lines.by_ref() {
        let line = line.expect("server output");
        if let Some(capture) = capture.as_mut() {
            let _ = writeln!(capture, "{line}");
        }
        let address = line
            .split("GraphiQL and the API at ")
            .nth(1)
            .and_then(|url| url.split("/graphql").next())
            .map(str::to_owned);
        log.push(line);
        if let Some(base) = address {
            let (sender, later) = mpsc::channel();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if let Some(capture) = capture.as_mut() {
                        let _ = writeln!(capture, "{line}");
                    }
                    // The test may have stopped listening; the capture still wants the rest.
                    let _ = sender.send(line);
                }
            });
            return Started { base, log, later };
        }
    }
    panic!("server exited during start-up:\n{}", log.join("\n"));
}
