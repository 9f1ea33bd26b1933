//! `contacts-server`: parse the configuration, start logging, serve.

use clap::Parser;
use contacts_server::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    contacts_server::init_tracing(&config);
    contacts_server::run(config).await
}
