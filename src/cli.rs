//! Command-line arguments, logging setup and the shutdown signal.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// `pipecrawl --version`: the package's version, which many builds share, and the last
/// migration of each database this build knows, which tells the build a database needs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let schemas = pipecrawl::store::newest_schemas()
        .map(|(backend, migration)| format!("{backend} migration {migration}"));
    format!(
        "{} (schema: {})",
        env!("CARGO_PKG_VERSION"),
        schemas.join(", ")
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "pipecrawl",
    version = VERSION.as_str(),
    about = "A pipelined, polite, crash-safe web crawler"
)]
pub struct Cli {
    /// Log line format on stderr (the level comes from RUST_LOG, default `info`).
    // Under its own heading: among a command's own options, in the order clap merges
    // them, it hid what the command itself takes.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, help_heading = "Global options")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The arguments, or the process ends as clap ends it on a command line it cannot
    /// read (see [`refuse`]).
    pub fn parse_args() -> Self {
        match Self::try_parse().and_then(Self::one_database) {
            Ok(cli) => cli,
            Err(e) => refuse(stray_config(e)),
        }
    }

    /// Refuses `--db` with `--config`. Both are global to `query`, and clap checks their
    /// conflict only among the arguments of one level: given one before the question and
    /// the other after it (`query --config crawl.toml stats --db other.db`), the config
    /// went unheard.
    fn one_database(self) -> Result<Self, clap::Error> {
        if let Command::Query { database, .. } = &self.command {
            if database.db.is_some() && database.config.is_some() {
                let mut command = Self::command();
                command.build();
                if let Some(query) = command.find_subcommand_mut("query") {
                    return Err(query.error(
                        ErrorKind::ArgumentConflict,
                        "the argument '--db <DB>' cannot be used with '--config <CONFIG>'",
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// `error` saying what to write when `crawl` or `serve` was given its config file
/// without `--config` (`crawl crawl.toml`), or a URL to crawl, as other crawlers' command
/// lines take one (beside `--config` too): clap's "unexpected argument 'crawl.toml'
/// found" said neither.
fn stray_config(error: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidArg) else {
        return error;
    };
    if error.kind() != ErrorKind::UnknownArgument || given.starts_with('-') {
        return error;
    }
    let mut command = Cli::command();
    let matches = command.clone().ignore_errors(true).try_get_matches().ok();
    let Some((name, config)) = matches
        .as_ref()
        .and_then(clap::ArgMatches::subcommand)
        .filter(|(name, _)| matches!(*name, "crawl" | "serve"))
        .map(|(name, sub)| {
            let config = sub.try_get_one::<PathBuf>("config").ok().flatten();
            (name.to_owned(), config.cloned())
        })
    else {
        return error;
    };
    let message = match (given.contains("://"), config) {
        (true, Some(config)) => format!(
            "unexpected argument '{given}': a crawl's seeds are written in its config: add \
             it to `seeds` in {}",
            config.display()
        ),
        (true, None) => format!(
            "unexpected argument '{given}': a crawl's seeds are written in its config, \
             `seeds = [\"{given}\"]` (see config/example.toml), given as `pipecrawl {name} \
             --config crawl.toml`"
        ),
        // Beside a `--config`, a stray word that is no URL is some other slip.
        (false, Some(_)) => return error,
        (false, None) => format!(
            "unexpected argument '{given}': a config is given with --config: write \
             `pipecrawl {name} --config {given}`"
        ),
    };
    command.build();
    match command.find_subcommand_mut(&name) {
        Some(sub) => sub.error(ErrorKind::UnknownArgument, message),
        None => error,
    }
}

/// Ends the process on `error` as clap does (its message, its exit code; help and the
/// version on stdout), but with `--log-format json` the error is one JSON line, as
/// [`fail`] writes any other that ends the process: clap's several plain lines were
/// no record to a log shipper reading stderr line by line.
fn refuse(error: clap::Error) -> ! {
    if error.use_stderr() && matches!(asked_log_format(), Some(LogFormat::Json)) {
        let rendered = error.render().to_string();
        let message = rendered.trim_end();
        fail(
            LogFormat::Json,
            message.strip_prefix("error: ").unwrap_or(message),
        );
        std::process::exit(error.exit_code());
    }
    error.exit()
}

/// The `--log-format` a command line clap refused asked for, as far as it was read.
fn asked_log_format() -> Option<LogFormat> {
    let mut matches = Cli::command().ignore_errors(true).try_get_matches().ok()?;
    loop {
        if let Ok(Some(format)) = matches.try_get_one::<LogFormat>("log_format") {
            return Some(*format);
        }
        matches = matches.remove_subcommand()?.1;
    }
}

/// A crawl's URLs that failed for now (a host down, a 5xx, a timeout) stay failed once
/// their retries are spent; after the outage, this asks for them again.
#[derive(Debug, Args)]
pub struct RetryFailed {
    /// Queue again, at the start, the URLs earlier runs stored as failing for now (no
    /// answer, 5xx, 408, 429, a body cut off, robots.txt unavailable; a page whose
    /// revisit failed too) and those stored as `tls` (a certificate that did not verify,
    /// a CA trusted since; a handshake that failed), each with its full
    /// `retry.max_attempts`.
    #[arg(long)]
    pub retry_failed: bool,
}

impl RetryFailed {
    pub fn apply(&self, config: &mut pipecrawl::Config) {
        config.retry.earlier_failures = self.retry_failed;
    }
}

/// The help heading of the options every question of `query` takes.
const QUERY_OPTIONS: &str = "Query options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Crawl until the frontier is empty or a limit is hit, then print a summary.
    Crawl {
        /// The crawl's TOML config (see config/example.toml).
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        again: RetryFailed,
    },
    /// Run as a service: crawl, keep pages fresh, take seeds and commands over the admin
    /// API. SIGHUP reloads the config's seeds and scope; SIGINT/SIGTERM stop.
    Serve {
        /// The service's TOML config (see config/example.toml).
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        again: RetryFailed,
    },
    /// Ask a crawl's database a question (read-only): pages, links, search, broken links,
    /// most-linked pages, statistics, or any SQL.
    Query {
        // Every question's, so listed apart from a question's own.
        #[command(flatten, next_help_heading = QUERY_OPTIONS)]
        database: Database,
        /// How to print the answer.
        #[arg(long, global = true, value_enum, default_value_t = pipecrawl::query::Format::Table, help_heading = QUERY_OPTIONS)]
        format: pipecrawl::query::Format,
        #[command(subcommand)]
        question: pipecrawl::query::Question,
    },
    /// Write a crawl's pages and links in full to files (pages.csv and links.csv, or .jsonl).
    Export {
        #[command(flatten)]
        database: Database,
        /// The files' format.
        #[arg(long, value_enum, default_value_t = pipecrawl::export::ExportFormat::Csv)]
        format: pipecrawl::export::ExportFormat,
        /// The directory to write into (created if missing).
        #[arg(long, value_parser = out_dir)]
        out: PathBuf,
    },
}

/// `export --out`'s directory, but not `-`: Unix tools read it as stdout, which two
/// files cannot share, and as a name it made a directory `-` that the user never asked for.
fn out_dir(value: &str) -> Result<PathBuf, String> {
    if value == "-" {
        return Err(
            "`export` writes two files, pages and links, into a directory, not to stdout: \
             for one table on stdout, `pipecrawl query sql \"SELECT * FROM pages\" --format \
             jsonl` (or csv)"
                .to_owned(),
        );
    }
    Ok(PathBuf::from(value))
}

/// Which database to read: named, or as a crawl's config names it.
#[derive(Debug, clap::Args)]
pub struct Database {
    /// The crawl's database: a SQLite file (or `sqlite://` URL), or a `postgres://user@host/db` URL
    /// (`storage.database` in its config) [default: crawl.db].
    // Empty (`--db "$DB"` with the variable unset), it was looked for as a file named
    // nothing in the current directory.
    #[arg(long, global = true, conflicts_with = "config", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    db: Option<String>,
    /// Read the database the crawl's TOML config names (`storage.database`; a relative path
    /// from the current directory, as the crawl reads it).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

impl Database {
    /// The database's path or URL.
    pub fn resolve(self) -> anyhow::Result<String> {
        Ok(match (self.db, self.config) {
            (Some(db), _) => db,
            (None, Some(config)) => pipecrawl::Config::load_settings(&config)?.storage.database,
            (None, None) => "crawl.db".to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Writes a line for people to stderr. `eprintln!` panics when stderr is a pipe whose
/// reader has gone (`pipecrawl … 2>&1 | head -1`), turning finished work into exit code
/// 101; a message nobody reads is lost instead.
fn say(line: impl Display) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Writes the error that ends the process. With JSON logs it is one JSON line shaped as
/// the log records are, so that whatever reads stderr line by line gets it whole (as
/// text, a config's problems span several lines); it is written directly, not logged, so
/// that no `RUST_LOG` filter can hide it.
pub fn fail(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => say(format_args!("error: {message}")),
        LogFormat::Json => say(record("ERROR", message)),
    }
}

/// Writes a line for the person running a command (what `export` wrote, a note on a
/// `query`'s answer). With JSON logs it is a record shaped as the log's, as [`fail`]'s
/// is: a plain line among them breaks whatever reads stderr as one JSON object per line.
/// Written directly, not logged, so that no `RUST_LOG` filter can hide it.
pub fn note(format: LogFormat, message: impl Display) {
    match format {
        LogFormat::Text => say(message),
        LogFormat::Json => say(record("INFO", &message.to_string())),
    }
}

/// A line of JSON shaped as the log records are.
fn record(level: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        "level": level,
        "fields": { "message": message },
        "target": "pipecrawl",
    })
}

/// A panic as one JSON record, as [`fail`] writes an error. Rust's own hook writes
/// several plain lines ("thread … panicked at …", the message, a note on backtraces),
/// which a shipper reading stderr line by line takes for as many records that are not
/// JSON; a page the HTML parser panics on is caught, and the crawl goes on, but the
/// hook had written them all the same. A backtrace, when `RUST_BACKTRACE` asks for one,
/// is a field of the record.
fn panic_record(info: &std::panic::PanicHookInfo<'_>) -> serde_json::Value {
    let thread = std::thread::current();
    let mut message = format!("thread '{}' panicked", thread.name().unwrap_or("<unnamed>"));
    if let Some(at) = info.location() {
        message.push_str(&format!(" at {at}"));
    }
    message.push_str(": ");
    message.push_str(info.payload_as_str().unwrap_or("Box<dyn Any>"));
    let mut line = record("ERROR", &message);
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        line["fields"]["backtrace"] = backtrace.to_string().into();
    }
    line
}

/// Writes `text` to stdout, losing it, as [`say`] does, when nobody reads any more.
fn print(text: impl Display) {
    let _ = write!(std::io::stdout(), "{text}");
}

/// Writes a run's end summary to stdout: as text, or with JSON logs as one record shaped
/// as the log's, its figures as fields, so that a shipper reading stdout and stderr
/// alike (a container's, journald's) takes it whole and a pipeline can alert on them.
/// Both say where the pages are (`database`, as [`pipecrawl::store::located`] has it).
pub fn summary(format: LogFormat, summary: &pipecrawl::Summary, service: bool, database: &str) {
    match format {
        LogFormat::Text => print(format_args!("{summary}stored in {database}\n")),
        LogFormat::Json => {
            let mut line = record("INFO", "");
            line["fields"] = serde_json::json!(summary.figures(service));
            line["fields"]["database"] = serde_json::json!(database);
            print(format_args!("{line}\n"));
        }
    }
}

pub fn init_tracing(format: LogFormat) {
    // sqlx warns of every statement over a second; at a crawl's end building an index
    // over millions of links is meant to take seconds, and the crawl reports it itself.
    // rustls-platform-verifier logs each certificate that does not verify as an error,
    // naming no host: a page's outcome (`tls`), which its row and the summary give; a
    // machine with no CA certificates at all stops the run with its own error.
    let default = || EnvFilter::new("info,sqlx::query=error,rustls_platform_verifier=off");
    // A filter that does not parse falls back to the default, said once logging runs:
    // silently, the user waits for debug lines that never come.
    let (filter, refused) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Err(std::env::VarError::NotPresent) => (default(), None),
        Err(std::env::VarError::NotUnicode(_)) => (default(), Some("is not UTF-8".to_owned())),
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (
                default(),
                Some(format!("={spec:?} is not a log filter ({e})")),
            ),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(pipecrawl::terminal::stderr_colours())
        // On a failed write it would `eprintln!` the failure, which panics when stderr
        // is a pipe nobody reads any more: a log line lost is no reason to stop a worker.
        .log_internal_errors(false)
        .with_writer(|| pipecrawl::progress::LogWriter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => {
            builder.json().init();
            // Through the log's writer, so that a bar on show is taken down for it.
            std::panic::set_hook(Box::new(|info| {
                let _ = writeln!(pipecrawl::progress::LogWriter, "{}", panic_record(info));
            }));
        }
    }
    if let Some(why) = refused {
        tracing::warn!("{}{why}: logging at info", EnvFilter::DEFAULT_ENV);
    }
}

/// Reloads the config at `path` on every SIGHUP and sends it on; a config that does not
/// load is reported and skipped, so a typo never stops a running service. Changes to keys
/// the service keeps until a restart are named against `running`, the config as the file
/// gave it at the start.
pub fn reload_on_hangup(
    path: PathBuf,
    running: pipecrawl::Config,
) -> tokio::sync::mpsc::Receiver<pipecrawl::Config> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    // Listening before the task runs: a SIGHUP between the two took the default action
    // and ended the service.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => {
            tokio::spawn(reload_config(hangups, path, running, tx));
        }
        Err(e) => tracing::error!("cannot listen for SIGHUP: {e}"),
    }
    #[cfg(not(unix))]
    drop((tx, path, running));
    rx
}

#[cfg(unix)]
async fn reload_config(
    mut hangups: tokio::signal::unix::Signal,
    path: PathBuf,
    running: pipecrawl::Config,
    tx: tokio::sync::mpsc::Sender<pipecrawl::Config>,
) {
    while hangups.recv().await.is_some() {
        // Off the runtime's threads: a seeds file of a million lines takes seconds to
        // read, and an idle service's other threads sleep meanwhile, its API unanswered.
        let reading = path.clone();
        let loaded =
            match tokio::task::spawn_blocking(move || pipecrawl::Config::load(&reading)).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::error!("SIGHUP: keeping the running config: reading it failed: {e}");
                    pipecrawl::metrics::config_reloaded(false);
                    continue;
                }
            };
        match loaded {
            Ok(config) => {
                let fixed = running.fixed_until_restart(&config);
                if !fixed.is_empty() {
                    tracing::warn!(
                        "SIGHUP: {} changed, which a running service keeps as it started with: \
                         restart it for the change{}",
                        fixed.join(", "),
                        if fixed.len() == 1 { "" } else { "s" }
                    );
                }
                if tx.send(config).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!("SIGHUP: keeping the running config: {e}");
                pipecrawl::metrics::config_reloaded(false);
            }
        }
    }
}

/// Listens for SIGINT and SIGTERM (and, with `hangup`, SIGHUP: a `crawl`'s terminal or
/// ssh session gone, which killed it outright) from now until the process ends; what it
/// returns completes on the first, after which a second one ends the process at once:
/// committed pages are safe (SQLite commits are atomic) and whatever was in flight is
/// queued again on the next start. Listening only while the pipeline ran let a signal
/// during start-up kill the process, and swallowed those during the index build at a
/// crawl's end.
pub fn shutdown_signal(hangup: bool) -> impl std::future::Future<Output = ()> + Send + 'static {
    let first = tokio_util::sync::CancellationToken::new();
    let mut stops = Stops::new(hangup);
    tokio::spawn({
        let first = first.clone();
        async move {
            let (name, _) = stops.next().await;
            tracing::info!(
                "{name}: stopping: finishing pages in flight (a second signal stops at once)"
            );
            first.cancel();
            stops.next().await;
            tracing::warn!("second signal: stopping now");
            std::process::exit(130);
        }
    });
    first.cancelled_owned()
}

/// Ends the process on the first SIGINT, SIGTERM or SIGHUP (its terminal or ssh session
/// gone) during an export, with the shell's
/// exit code for the signal and one line saying so, after removing the files it had not
/// finished: the default action left them, hidden and possibly gigabytes, beside the
/// export they were to replace. Listening starts before this returns, so no signal after
/// it gets the default action.
pub fn stop_export_on_signal(partials: pipecrawl::export::Partials, format: LogFormat) {
    let mut stops = Stops::new(true);
    tokio::spawn(async move {
        let (name, code) = stops.next().await;
        let _abandoned = partials.abandon();
        fail(
            format,
            &format!(
                "export interrupted by {name}: its unfinished files were removed; \
                 files of an earlier export are as they were"
            ),
        );
        std::process::exit(code);
    });
}

/// Has a write past the file-size limit (`ulimit -f`, systemd's `LimitFSIZE`) fail with
/// "File too large", reported and cleaned up as one on a full disk is: SIGXFSZ's default
/// action ended the process with no word, leaving an export's unfinished files behind
/// and a crawl without an exit code. A listener replaces that action for the life of the
/// process, whether or not anything reads what it hears.
pub fn outlive_file_size_limit() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Err(e) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            tracing::warn!("cannot listen for SIGXFSZ: {e}");
        }
    }
}

/// What to add to a failure's report when the process runs under a file-size limit and
/// SQLite failed a write as a "disk I/O error": a write past the limit fails with the
/// OS's "File too large", which SQLite does not pass on, so the limit is named here as
/// the likely cause.
pub fn file_size_limit_note(message: &str) -> Option<String> {
    if !message.contains("disk I/O error") {
        return None;
    }
    #[cfg(unix)]
    {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::FSIZE).ok()?;
        (soft != rlimit::INFINITY).then(|| {
            format!(
                "this process may write no file larger than {soft} bytes (`ulimit -f`, \
                 systemd's `LimitFSIZE`), and SQLite calls a write past that a disk I/O error"
            )
        })
    }
    #[cfg(not(unix))]
    None
}

/// Whether the process was started with SIGHUP ignored, as `nohup` starts it so that it
/// outlives the session: listening would undo that, and `nohup pipecrawl export … &`
/// stopped at the logout. Read from the mask Linux shows in `/proc`, which holds the
/// inherited ignoring until a listener replaces it; elsewhere SIGHUP counts as heard.
/// SIGINT and SIGTERM are heard whatever the start: a shell script's background job
/// starts with SIGINT ignored, and `kill -INT` is how such a script stops it.
#[cfg(unix)]
fn hangup_ignored_from_start() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            // SIGHUP is signal 1, the mask's lowest bit.
            .is_some_and(|mask| mask & 1 == 1)
    })
}

/// SIGINT and SIGTERM (and, with `hangup`, SIGHUP: `serve` reloads on it instead, and
/// `crawl` and `export` stop) as they come, each with its name and the exit code a shell
/// gives a process it ended (128 + its number); not a SIGHUP the process was started
/// ignoring. Listened for from its making, not from the first poll, and by the same
/// listeners for every signal after: a signal reaches only the listeners there when it
/// comes, and those made anew after a first stop missed a second sent meanwhile.
struct Stops {
    #[cfg(unix)]
    listeners: [Option<(tokio::signal::unix::Signal, &'static str, i32)>; 3],
}

impl Stops {
    fn new(hangup: bool) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &'static str, code: i32| {
                signal(kind)
                    .inspect_err(|e| tracing::error!("cannot listen for {name}: {e}"))
                    .ok()
                    .map(|listener| (listener, name, code))
            };
            Self {
                listeners: [
                    listen(SignalKind::interrupt(), "SIGINT", 130),
                    listen(SignalKind::terminate(), "SIGTERM", 143),
                    (hangup && !hangup_ignored_from_start())
                        .then(|| listen(SignalKind::hangup(), "SIGHUP", 129))
                        .flatten(),
                ],
            }
        }
        #[cfg(not(unix))]
        {
            let _ = hangup;
            Self {}
        }
    }

    /// The next signal heard.
    async fn next(&mut self) -> (&'static str, i32) {
        #[cfg(unix)]
        {
            /// Completes on the signal `listener` hears; never, without a listener.
            async fn heard(
                listener: &mut Option<(tokio::signal::unix::Signal, &'static str, i32)>,
            ) -> (&'static str, i32) {
                match listener {
                    Some((listener, name, code)) => {
                        listener.recv().await;
                        (*name, *code)
                    }
                    None => std::future::pending().await,
                }
            }
            let [interrupt, terminate, hangup] = &mut self.listeners;
            tokio::select! {
                heard = heard(interrupt) => heard,
                heard = heard(terminate) => heard,
                heard = heard(hangup) => heard,
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!("cannot listen for Ctrl-C: {e}");
                std::future::pending::<()>().await;
            }
            ("Ctrl-C", 130)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    /// A panic, whose message spans lines, is one line of JSON at `ERROR` naming where.
    #[test]
    fn with_json_logs_a_panic_is_one_json_record() {
        static SAID: Mutex<Option<String>> = Mutex::new(None);
        std::panic::set_hook(Box::new(|info| {
            if let Ok(mut said) = SAID.lock() {
                *said = Some(super::panic_record(info).to_string());
            }
        }));
        let caught = std::panic::catch_unwind(|| panic!("a page\nits parser could not read"));
        drop(std::panic::take_hook());
        assert!(caught.is_err());
        let said = SAID.lock().ok().and_then(|said| said.clone());
        let said = said.unwrap_or_default();
        assert_eq!(said.lines().count(), 1, "{said}");
        let record: serde_json::Value = serde_json::from_str(&said).unwrap_or_default();
        assert_eq!(record["level"], "ERROR", "{said}");
        let message = record["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(" panicked at src/cli.rs:"), "{message}");
        assert!(
            message.ends_with(": a page\nits parser could not read"),
            "{message}"
        );
    }
}
