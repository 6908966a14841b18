//! Where log lines go: a request thread appends its line to one shared buffer
//! and goes on; a writer thread writes the buffer to stderr every
//! [`FLUSH_EVERY`], in one `write(2)` for all the lines gathered, in the order
//! they were logged. Nothing is dropped: past [`MAX_BUFFERED`] (stderr not
//! keeping up), the logging thread writes the buffer out itself and waits for
//! stderr, as a blocking writer would.
//!
//! Why not `tracing_appender::non_blocking`: it sends each line through a
//! channel, copying it into an allocation of its own, and wakes its parked
//! writer thread for nearly every line. With a line per RPC, on two cores, the
//! wake-ups and context switches cost more than formatting the line
//! (BENCHMARKS.md, "One layer per call"); here the writer wakes on a timer.
mod format;

pub use format::{JsonLine, TextLine};

use std::{
    io::{self, Write},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Buffered bytes past which the writer is woken at once.
const HIGH_WATER: usize = 256 * 1024;
/// Buffered bytes past which the logging thread writes the lines itself.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Buffer {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A thread that panicked mid-append left whole lines or a torn one;
        // either is better than no logs.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` for the log subscriber.
#[derive(Clone)]
pub struct LogBuffer {
    shared: Arc<Shared>,
}

/// Flushes what is buffered and stops the writer thread when dropped.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// A buffer writing to stderr, and the guard that flushes it at exit.
pub fn to_stderr() -> (LogBuffer, FlushOnDrop) {
    let shared = Arc::new(Shared::default());
    let writer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("theatre-logs".into())
            .spawn(move || write_out(&shared, io::stderr()))
            .expect("spawning the log writer thread")
    };
    (
        LogBuffer {
            shared: shared.clone(),
        },
        FlushOnDrop {
            shared,
            writer: Some(writer),
        },
    )
}

fn write_out(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::new();
    loop {
        let mut buffer = shared.lock();
        if !buffer.closed && buffer.lines.len() < HIGH_WATER {
            buffer = shared
                .wake
                .wait_timeout(buffer, FLUSH_EVERY)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        std::mem::swap(&mut buffer.lines, &mut spare);
        let closed = buffer.closed;
        drop(buffer);
        if !spare.is_empty() {
            // Nowhere to report a failing stderr; the lines are lost.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut buffer = self.shared.lock();
        if buffer.closed || buffer.lines.len() >= MAX_BUFFERED {
            // Stderr is not keeping up (or the writer has stopped): write
            // in order, under the lock, rather than grow without bound.
            let mut err = io::stderr().lock();
            err.write_all(&buffer.lines)?;
            buffer.lines.clear();
            err.write_all(line)?;
            return Ok(line.len());
        }
        buffer.lines.extend_from_slice(line);
        if buffer.lines.len() >= HIGH_WATER {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
