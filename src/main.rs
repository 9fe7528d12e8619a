//! The `pipecrawl` binary: arguments → logging → config → run → exit code.

mod cli;
mod fdlimit;

use std::process::ExitCode;

use anyhow::Context;

use cli::{Cli, Command};
use pipecrawl::plural::Count;
use pipecrawl::progress::Show;
use pipecrawl::query::Question;

/// jemalloc instead of glibc's malloc: allocating and freeing (page bodies, parse trees,
/// statements) took ~18% of a crawl's CPU under glibc, whose arenas and consolidation
/// cost most with many threads. In interleaved benchmark crawls it used 5–25% less CPU
/// at the same peak memory; mimalloc saved as much but held 40 MB more.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`. A crawl frees hundreds of megabytes a second
/// (bodies, parse trees, batches); jemalloc keeps freed pages for 10 s by default, which
/// held ~15 MB of a throughput crawl's peak memory. Returning them after 1 s cost no
/// measurable CPU in interleaved benchmark crawls; at once (0 ms) it cost half as much
/// CPU again.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    pipecrawl::metrics::note_process_start();
    let cli = Cli::parse_args();
    let log_format = cli.log_format;
    cli::init_tracing(log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            cli::fail(log_format, &report(&e));
            exit_status(&e)
        }
    }
}

/// The error and its causes, each once. Many errors (ours, sqlx's, std's) write their
/// cause into their own message as well as chaining it, so printing the chain as it is
/// said "No such file or directory" twice and a SQLite error three times.
fn report(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    let notes = [
        cli::file_size_limit_note(&message),
        fdlimit::too_few_files_note(&message),
    ];
    for note in notes.into_iter().flatten() {
        message.push_str(" (");
        message.push_str(&note);
        message.push(')');
    }
    message
}

/// The exit status of a config that cannot run as written (sysexits' `EX_CONFIG`), told
/// apart from the 1 of an outage: a supervisor that restarts a crawl whose database or
/// network failed would restart a broken config every few seconds forever, where
/// `RestartPreventExitStatus=78` (config/pipecrawl.service) leaves it failed, saying why.
const BAD_CONFIG: u8 = 78;

/// The exit status of a run refused because another still runs on its database
/// (sysexits' `EX_TEMPFAIL`: try again later): a cron job whose last night has not ended
/// yet is told from one that failed, which exits 1.
const IN_USE: u8 = 75;

fn exit_status(error: &anyhow::Error) -> ExitCode {
    let ours = || {
        error
            .chain()
            .filter_map(|cause| cause.downcast_ref::<pipecrawl::Error>())
    };
    let bad_config = error
        .chain()
        .any(|cause| cause.is::<pipecrawl::config::ConfigError>())
        || ours().any(pipecrawl::Error::is_bad_config);
    if bad_config {
        ExitCode::from(BAD_CONFIG)
    } else if ours().any(pipecrawl::Error::is_in_use) {
        ExitCode::from(IN_USE)
    } else {
        ExitCode::FAILURE
    }
}

/// Says how a run ended in error: one refused before it began (another run holds its
/// database, its config cannot run, its database is newer than this build) did not start,
/// and "stopped" sent a cron job's reader looking for what the refused night had done.
fn ended(error: pipecrawl::Error, run: &str) -> anyhow::Error {
    let how = if error.refused_at_start() {
        "did not start"
    } else {
        "stopped"
    };
    anyhow::Error::new(error).context(format!("{run} {how}"))
}

/// `crawl`'s exit status when not one URL it tried got an answer: wget's for a network
/// failure. A crawl in which some URLs failed succeeded.
const NOTHING_ANSWERED: u8 = 4;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async { cli::outlive_file_size_limit() });
    match cli.command {
        Command::Crawl { config, again } => {
            let mut config = pipecrawl::Config::load(&config)?;
            again.apply(&mut config);
            fdlimit::fit(&mut config);
            let database = pipecrawl::store::redacted(&config.storage.database);
            let stored_in = pipecrawl::store::located(&config.storage.database);
            let proxied = config.fetch.proxy.is_some();
            let summary = runtime
                .block_on(async {
                    pipecrawl::pipeline::crawl_showing(
                        config,
                        cli::shutdown_signal(true),
                        Show::BarOnTerminal,
                    )
                    .await
                })
                .map_err(|e| ended(e, &format!("the crawl into {database}")))?;
            let nothing_answered = summary.nothing_answered();
            let unreached = summary.unreached();
            let robots_failed = summary
                .tally
                .errors
                .contains_key(pipecrawl::page::ErrorKind::RobotsUnavailable.as_str());
            cli::summary(cli.log_format, &summary, false, &stored_in);
            match nothing_answered {
                Some(tried) => {
                    let unanswered = match tried {
                        1 => "the 1 URL this run tried got no answer".to_owned(),
                        _ => format!("none of the {tried} URLs this run tried got an answer"),
                    };
                    // A host that answers robots.txt with a 5xx or a 429 did answer: its
                    // URLs were not asked, and "is it up?" alone sent users looking at a
                    // server that runs.
                    let robots = if robots_failed {
                        let (was, its) = if tried == 1 {
                            ("was", "its host's")
                        } else {
                            ("were", "their hosts'")
                        };
                        format!(
                            " (or {was} not asked, {its} robots.txt failing: a 5xx, a 429 or \
                             no answer, which the rows' `error` tells apart; a host \
                             may be up, its robots.txt not served)"
                        )
                    } else {
                        String::new()
                    };
                    // Through a proxy every request goes through it first: "reachable from
                    // here?" sent users looking at servers that run, when the proxy had
                    // refused or was down.
                    let ask = match proxied {
                        true => {
                            "is fetch.proxy, which carries every request, up and letting them \
                             through, and are the seeds' hosts up?"
                        }
                        false => "are the seeds' hosts up, and reachable from here?",
                    };
                    cli::fail(
                        cli.log_format,
                        &format!(
                            "no page was fetched: {unanswered} from its server{robots} (the \
                             summary counts the errors by kind): {ask}"
                        ),
                    );
                    Ok(ExitCode::from(NOTHING_ANSWERED))
                }
                // Unreached all the same: the crawl found finished, none ever answered.
                None if unreached => {
                    cli::fail(
                        cli.log_format,
                        "no page of this crawl ever got an answer from its server: the \
                         earlier runs reached no site, and left nothing to ask again \
                         (`--retry-failed` asks their URLs again, or remove the database \
                         to start over)",
                    );
                    Ok(ExitCode::from(NOTHING_ANSWERED))
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Command::Serve {
            config: path,
            again,
        } => {
            let mut config = pipecrawl::Config::load(&path)?;
            // What a reload is told apart from, which is not the seeds: a seeds file's
            // million URLs are not held twice, nor for the life of the service.
            let seeds = std::mem::take(&mut config.seeds);
            let loaded = config.clone();
            config.seeds = seeds;
            again.apply(&mut config);
            fdlimit::fit(&mut config);
            let database = pipecrawl::store::redacted(&config.storage.database);
            let stored_in = pipecrawl::store::located(&config.storage.database);
            let summary = runtime
                .block_on(async {
                    let reloads = cli::reload_on_hangup(path, loaded);
                    pipecrawl::serve(config, cli::shutdown_signal(false), reloads).await
                })
                .map_err(|e| ended(e, &format!("the service on {database}")))?;
            cli::summary(cli.log_format, &summary, true, &stored_in);
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            database,
            format,
            question,
        } => {
            let db = database.resolve()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let answer =
                runtime.block_on(pipecrawl::query::ask(&db, &question, format, &mut out))?;
            for note in &answer.notes {
                cli::note(cli.log_format, note);
            }
            if matches!(&question, Question::Broken(args) if args.fail) {
                let failed = [
                    (answer.broken_links, "broken link"),
                    (answer.failed_seeds, "failed seed"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| Count(n, what).to_string())
                .collect::<Vec<_>>();
                if !failed.is_empty() {
                    anyhow::bail!("{} (--fail)", failed.join(" and "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            database,
            format,
            out,
        } => {
            let db = database.resolve()?;
            let partials = pipecrawl::export::Partials::default();
            let files = runtime
                .block_on(async {
                    cli::stop_export_on_signal(partials.clone(), cli.log_format);
                    pipecrawl::export::export(&db, format, &out, &partials).await
                })
                .with_context(|| {
                    format!(
                        "cannot export {} to {}",
                        pipecrawl::store::redacted(&db),
                        out.display()
                    )
                })?;
            for file in files {
                cli::note(
                    cli.log_format,
                    format_args!(
                        "wrote {} to {}",
                        Count(file.rows, "row"),
                        file.path.display()
                    ),
                );
                if file.not_utf8 {
                    cli::note(
                        cli.log_format,
                        format_args!(
                            "{}: {}",
                            file.path.display(),
                            pipecrawl::query::output::NOT_UTF8
                        ),
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
