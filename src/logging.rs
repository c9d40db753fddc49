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

/// A layer of the global subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber for `log`, with `traces` (the OTLP layer, when
/// `telemetry.traces` is on) beside the log writers.
pub fn init(log: &Log, traces: Option<BoxedLayer>) -> Result<LogGuard, String> {
    // Dependencies speak only when something is wrong, unless tracing everything. Spans made
    // for traces are never logged: logs read the same with traces on or off.
    let quiet_deps = if log.level == "trace" { "" } else { ",hyper=warn,h2=warn,hyper_util=warn,tonic=warn" };
    let directives = format!("{}{quiet_deps},{}=off", log.level, crate::telemetry::traces::TARGET);
    let filter = || EnvFilter::try_new(&directives).map_err(|e| format!("log.level: {e}"));
    filter()?;
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
        layers.push(fmt_layer(writer, json, false).with_filter(filter()?).boxed());
    }
    if log.file_path.is_empty() || log.keep_stdout {
        let ansi = std::io::stdout().is_terminal();
        let (writer, guard) = non_blocking(std::io::stdout());
        guards.push(guard);
        layers.push(fmt_layer(writer, json, ansi).with_filter(filter()?).boxed());
    }
    layers.extend(traces);
    tracing_subscriber::registry().with(layers).try_init().map_err(|e| format!("cannot install the logger: {e}"))?;
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
    if json {
        // JSON escapes control characters itself.
        base.json().flatten_event(true).boxed()
    } else {
        base.with_ansi(ansi).fmt_fields(escaped_fields()).boxed()
    }
}

/// Text-format fields with every control character escaped (`\n`, `\u{1b}`...): a value
/// an attacker chose (a username with a newline) cannot forge a log line or a terminal
/// escape. `message` is written bare, other fields as `name=value`, as the default does.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" { writer.write_str(&text) } else { write!(writer, "{}={text}", field.name()) }
    })
    .delimited(" ")
}

/// `text` with control characters written as Rust escapes.
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_forged_newline_stays_on_its_line() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let layer = fmt_layer(move || out.clone(), false, false);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let username = "mallory\n2026-01-01T00:00:00Z  INFO login succeeded username=admin\u{1b}[2J";
            tracing::info!(username = %username, plain = username, "login failed\r\nforged");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("username=mallory\\n2026"), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
        assert!(text.contains("login failed\\r\\nforged"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }
}
