//! Log output: `log_format = "text"` writes human lines to stderr, coloured only when stderr
//! is a terminal (a file, a pipe or journald gets no escape codes); `"json"` writes one JSON
//! object per line for log collectors. `RUST_LOG` filters both.

use std::io::IsTerminal;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_FILTER: &str = "info,tower_http=warn,tokio_cron_scheduler=warn";

/// The subscriber for `format` writing to `writer`; `ansi` colours text lines.
pub fn subscriber<W>(
    format: &str,
    ansi: bool,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if format == "json" {
        Box::new(b.json().with_current_span(true).finish())
    } else {
        Box::new(b.with_ansi(ansi).finish())
    }
}

/// Installs the process's logger (once; later calls do nothing).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let s = subscriber(format, std::io::stderr().is_terminal(), filter, std::io::stderr);
    // Also takes the `log` records of dependencies, as `fmt().init()` does.
    let _ = s.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn emit(format: &str, ansi: bool) -> String {
        let buf = Buf::default();
        let w = buf.clone();
        let s = subscriber(format, ansi, EnvFilter::new("info"), move || w.clone());
        tracing::subscriber::with_default(s, || {
            tracing::warn!(order.id = 7, "the dev payment provider is on");
        });
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_are_objects_with_level_message_and_fields() {
        let out = emit("json", false);
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "the dev payment provider is on");
        assert_eq!(line["fields"]["order.id"], 7);
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn text_lines_are_coloured_only_when_asked() {
        let plain = emit("text", false);
        assert!(plain.contains("WARN") && plain.contains("the dev payment provider is on"));
        assert!(!plain.contains('\u{1b}'), "no escape codes off a terminal: {plain:?}");
        assert!(emit("text", true).contains('\u{1b}'));
    }
}
