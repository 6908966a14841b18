//! How a log line reads. Every line written while serving a call ends with
//! that call's method and request id (`crate::call`), in text as
//! ` method=… request_id=…`, in JSON as a `call` object, so it can be matched
//! with the call's "rpc finished" line.
//!
//! Text lines read as tracing-subscriber's default format does (timestamp,
//! level, spans, target, message, fields) but are written here: that format
//! spent 8,000 instructions on the one line per RPC (colour wrappers around
//! every field even with colours off, a `Debug` escape per character of every
//! string), a tenth of an authenticated call (BENCHMARKS.md, "One layer per
//! call"). At a terminal, where colours are wanted, and for records bridged
//! from the `log` crate, the default format writes the line.
use std::{cell::RefCell, fmt, fmt::Write as _};

use chrono::{DateTime, Timelike, Utc};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{Format, Full, Json, JsonFields, Writer},
        time::SystemTime,
    },
    registry::LookupSpan,
};

use crate::call::{self, CallInfo};

/// The text format.
pub struct TextLine {
    colours: Format<Full, SystemTime>,
}

impl Default for TextLine {
    fn default() -> Self {
        Self {
            colours: tracing_subscriber::fmt::format(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || meta.fields().field("log.target").is_some() {
            return with_call(&self.colours, ctx, writer, event, |w, line, call| {
                writeln!(w, "{line}{}", TextCall(call))
            });
        }
        write_timestamp(&mut writer, Utc::now())?;
        writer.write_str(level(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = TextFields {
            writer: writer.by_ref(),
            result: Ok(()),
            first: true,
        };
        event.record(&mut fields);
        fields.result?;
        call::with_current(|call| match call {
            Some(call) => writeln!(writer, "{}", TextCall(call)),
            None => writer.write_char('\n'),
        })
    }
}

/// ` method=… request_id=…`: both are printable words (`crate::telemetry`
/// keeps no request id with a space or a control character in it).
struct TextCall<'a>(&'a CallInfo);

impl fmt::Display for TextCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " method={} request_id={}",
            self.0.method,
            self.0.request_id()
        )
    }
}

fn level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR ",
        Level::WARN => " WARN ",
        Level::INFO => " INFO ",
        Level::DEBUG => "DEBUG ",
        Level::TRACE => "TRACE ",
    }
}

/// `2026-12-07T03:17:10.692481Z `: the part up to the second is formatted
/// once a second per thread.
fn write_timestamp(writer: &mut Writer<'_>, now: DateTime<Utc>) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != now.timestamp() {
            *second = now.timestamp();
            text.clear();
            write!(text, "{}", now.format("%Y-%m-%dT%H:%M:%S"))?;
        }
        write!(
            writer,
            "{text}.{:06}Z ",
            now.nanosecond() % 1_000_000_000 / 1_000
        )
    })
}

/// The message, then ` name=value` for each field; strings quoted, and no
/// control character written as is (a value cannot start a new line).
struct TextFields<'a> {
    writer: Writer<'a>,
    result: fmt::Result,
    first: bool,
}

impl TextFields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if field.name() == "message" {
                if !self.first {
                    self.writer.write_char(' ')?;
                }
            } else {
                if !self.first {
                    self.writer.write_char(' ')?;
                }
                self.writer.write_str(field.name())?;
                self.writer.write_char('=')?;
            }
            self.first = false;
            value(&mut self.writer)
        })();
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let plain = value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        let message = field.name() == "message";
        self.field(field, |w| match (message, plain) {
            (true, true) => w.write_str(value),
            (false, true) => write!(w, "\"{value}\""),
            (true, false) => write!(Escaped(w), "{value}"),
            (false, false) => write!(w, "{value:?}"),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(Escaped(w), "{value:?}"));
    }
}

/// Writes control characters escaped (`\n`, `\u{1b}`).
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.chars().any(char::is_control) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// The JSON format: tracing-subscriber's, with a `call` object added.
pub struct JsonLine {
    inner: Format<Json, SystemTime>,
}

impl Default for JsonLine {
    fn default() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format().json(),
        }
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        with_call(&self.inner, ctx, writer, event, |w, line, call| {
            let line = line.strip_suffix('}').unwrap_or(line);
            let fields = serde_json::json!({
                "method": &*call.method,
                "request_id": call.request_id(),
            });
            writeln!(w, "{line},\"call\":{fields}}}")
        })
    }
}

/// A line of `inner`'s format: as it is outside a call; inside one, formatted
/// into a buffer first and handed to `add_call`, without its line end, to be
/// written with the call.
fn with_call<S, N, F>(
    inner: &F,
    ctx: &FmtContext<'_, S, N>,
    mut writer: Writer<'_>,
    event: &Event<'_>,
    add_call: impl FnOnce(&mut Writer<'_>, &str, &CallInfo) -> fmt::Result,
) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    call::with_current(|call| {
        let Some(call) = call else {
            return inner.format_event(ctx, writer.by_ref(), event);
        };
        let mut line = String::new();
        inner.format_event(ctx, Writer::new(&mut line), event)?;
        add_call(&mut writer, line.trim_end(), call)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_rfc3339_with_microseconds() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T03:17:10.692481234Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut text = String::new();
        write_timestamp(&mut Writer::new(&mut text), now).unwrap();
        assert_eq!(text, "2026-12-07T03:17:10.692481Z ");
        let later = now + chrono::Duration::seconds(61);
        text.clear();
        write_timestamp(&mut Writer::new(&mut text), later).unwrap();
        assert_eq!(text, "2026-12-07T03:18:11.692481Z ");
    }
}
