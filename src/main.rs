//! The `theatre` command: serve (the default), user administration, key generation.
use std::{io::IsTerminal, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use theatre::{
    App, Config,
    auth::{
        accounts::{ensure_user, set_role_by_email},
        token::key_to_paserk,
    },
    cache::Cache,
    clock::SystemClock,
    config::LogFormat,
    db::Database,
    entity::user::Role,
    logs::{JsonLine, TextLine},
    store::Store,
};
use tracing_subscriber::EnvFilter;

/// glibc's allocator kept every argon2 working buffer (19 MiB per concurrent
/// hash) in per-thread arenas for good, and was 6-7% of the server's CPU under
/// load; see BENCHMARKS.md for the measurements behind the switch.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Cinema seat-booking gRPC backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server (the default).
    Serve,
    /// Manage user accounts directly in the database.
    #[command(subcommand)]
    User(UserCommand),
    /// Print a new PASERK signing key for THEATRE_TOKEN_KEY.
    GenerateKey,
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Watch the event stream on Kafka.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration after defaults and environment, secrets redacted.
    Print,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print decoded events as they arrive (KAFKA_BROKERS and the topic settings apply).
    Tail {
        /// Start from the oldest retained event instead of only new ones.
        #[arg(long)]
        from_beginning: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (or give an existing one the role).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "THEATRE_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "Administrator")]
        display_name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
    },
    /// Change the role of an existing user.
    SetRole {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    User,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::User => Role::User,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load()?;
    // Logs go to stderr: stdout is for command output such as `events tail`.
    // Lines are gathered and written by a thread of their own (`theatre::logs`);
    // `_log_flush` writes what is still buffered when main returns.
    let (writer, _log_flush) = theatre::logs::to_stderr();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rskafka=warn")),
        )
        .with_writer(writer)
        // Colours only for a person at a terminal, not for log files and collectors.
        .with_ansi(std::io::stderr().is_terminal());
    // Lines logged while serving a call name it (`theatre::logs`).
    match config.log_format {
        LogFormat::Text => logs.event_format(TextLine::default()).init(),
        LogFormat::Json => logs.json().event_format(JsonLine::default()).init(),
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::User(cmd) => user(config, cmd).await,
        Command::Config(ConfigCommand::Print) => {
            // The Debug impls of every secret-bearing setting redact it.
            println!("{config:#?}");
            Ok(())
        }
        Command::Events(EventsCommand::Tail { from_beginning }) => {
            anyhow::ensure!(!config.kafka.brokers.is_empty(), "set KAFKA_BROKERS");
            let topics = vec![config.kafka.catalog_topic, config.kafka.bookings_topic];
            theatre::events::tail::tail(config.kafka.brokers, topics, from_beginning).await?;
            Ok(())
        }
        Command::GenerateKey => {
            use pasetors::keys::{AsymmetricKeyPair, Generate};
            let pair = AsymmetricKeyPair::<pasetors::version4::V4>::generate()
                .map_err(|e| anyhow::anyhow!("key generation failed: {e}"))?;
            println!("{}", key_to_paserk(&pair.secret));
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = App::new(config).start().await.context("starting theatre")?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await.context("serving")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = Database::connect(config.database_url.expose(), 2)
        .await
        .context("connecting to the database")?;
    // Accounts are not cached, so the command needs no Redis.
    let store = Store::new(db.clone(), Cache::disabled(), Arc::new(SystemClock));
    let user = match cmd {
        UserCommand::Create {
            email,
            password,
            display_name,
            role,
        } => ensure_user(&store, &email, &password, &display_name, role.into()).await?,
        UserCommand::SetRole { email, role } => {
            set_role_by_email(&store, &email, role.into()).await?
        }
    };
    println!("{} {} {:?}", user.id, user.email, user.role);
    db.close().await?;
    Ok(())
}
