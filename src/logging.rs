//! Logging through `tracing`: text or JSON (`log.format`), level from `log.level`, to stdout
//! and/or `log.file_path`. Writes go through a background thread so that a slow terminal
//! or disk never stalls request handling.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::schema::Log;

/// Keeps the log writers alive; dropping it flushes what is queued.
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    _guards: Vec<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber for `log`.
pub fn init(log: &Log) -> Result<LogGuard, String> {
    // Dependencies speak only when something is wrong, unless tracing everything.
    let quiet_deps = if log.level == "trace" { "" } else { ",hyper=warn,h2=warn,hyper_util=warn" };
    let filter = EnvFilter::try_new(format!("{}{quiet_deps}", log.level)).map_err(|e| format!("log.level: {e}"))?;
    let json = log.format == "json";
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let mut guards = Vec::new();

    if !log.file_path.is_empty() {
        let path =
            log.file_path.replace("%d", &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("log.file_path: cannot open '{path}': {e}"))?;
        let (writer, guard) = non_blocking(file);
        guards.push(guard);
        layers.push(fmt_layer(writer, json, false));
    }
    if log.file_path.is_empty() || log.keep_stdout {
        let ansi = std::io::stdout().is_terminal();
        let (writer, guard) = non_blocking(std::io::stdout());
        guards.push(guard);
        layers.push(fmt_layer(writer, json, ansi));
    }
    tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogGuard { _guards: guards })
}

/// Lines queued for the writer thread. The library default (128,000) preallocates several
/// megabytes per writer; this bound absorbs bursts and, when full, drops lines rather than
/// stall request handling.
const QUEUED_LINES: usize = 8192;

fn non_blocking<W: std::io::Write + Send + 'static>(
    w: W,
) -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(true)
        .finish(w)
}

fn fmt_layer<W>(writer: W, json: bool, ansi: bool) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer).with_target(true);
    if json { base.json().flatten_event(true).boxed() } else { base.with_ansi(ansi).boxed() }
}
