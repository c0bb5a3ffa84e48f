//! The access log: one line per request (`record`), in gorouter's text layout or JSON
//! (`format`, `time`), to stdout or a file. Workers hand records to a writer thread through a
//! bounded queue and never wait: when the queue is full (a disk that cannot keep up) the record
//! is dropped and counted. Lines appear within 50 ms. The file is reopened on request (SIGHUP,
//! SIGUSR2) for logrotate.

mod endpoint_text;
mod format;
mod record;
mod time;

pub use crate::config::AccessLogFormat as LogFormat;
pub use format::Formatter;
pub use record::{LoggedText, Record, Text};

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Records that may wait for the writer; past this they are dropped (and counted).
const QUEUE: usize = 65_536;
/// Bytes of request texts (target and headers) the waiting records hold beyond their own
/// size; past this they are dropped too (a client sending 64 KiB headers makes large records).
const QUEUE_TEXT_BYTES: usize = 32 << 20;
/// The writer wakes this often, or sooner when this many records wait.
const TICK: Duration = Duration::from_millis(50);
const WAKE_AT: usize = 4_096;
/// How long the stop waits for the writer to write what is queued.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Bytes gathered before a write.
const CHUNK: usize = 64 * 1024;

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// The access log (see the module docs). Workers push records onto a shared list (one
/// uncontended lock, no wake-up); the writer takes the whole list every 50 ms, or as soon as
/// 4,096 wait, so a request never pays for a thread switch.
#[derive(Debug)]
pub struct AccessLog {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    dropped: AtomicU64,
    written: AtomicU64,
    reopen: AtomicBool,
    closed: AtomicBool,
}

/// The records waiting for the writer.
#[derive(Debug, Default)]
struct Queue {
    /// As the request path boxed them: the lock is held for a pointer's push, not a copy of
    /// the record.
    #[allow(clippy::vec_box)]
    records: Vec<Box<Record>>,
    /// Their texts' bytes.
    text_bytes: usize,
}

impl AccessLog {
    /// Opens `destination` and starts the writer thread.
    pub fn start(destination: Destination, format: LogFormat) -> std::io::Result<AccessLog> {
        let mut sink = Sink::open(destination)?;
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("switchyard-access-log".into())
            .spawn(move || write_all(&writer, &mut sink, format))?;
        Ok(AccessLog {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `record` for writing; drops it (counted) when the writer is behind.
    pub fn log(&self, record: Box<Record>) {
        let shared = &*self.shared;
        let waiting = {
            let text_bytes = record.text.held_bytes();
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.records.len() >= QUEUE
                || queue.text_bytes + text_bytes > QUEUE_TEXT_BYTES
                || shared.closed.load(Ordering::Relaxed)
            {
                drop(queue);
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            queue.text_bytes += text_bytes;
            queue.records.push(record);
            queue.records.len()
        };
        if waiting == WAKE_AT {
            shared.wake.notify_one();
        }
    }

    /// Reopens the file before the next line (after logrotate moved it).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Relaxed);
    }

    /// Records dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Lines written.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Writes what is queued and stops the writer (later records are dropped). Waits at most
    /// [`CLOSE_WAIT`] for it: a writer blocked on its destination (a hung disk, a pipe nobody
    /// reads) must not hold the router's stop.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let deadline = std::time::Instant::now() + CLOSE_WAIT;
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::warn!(
                waited = ?CLOSE_WAIT,
                "the access log writer is blocked on its destination; lines still queued are lost"
            );
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The open destination.
enum Sink {
    Stdout(std::io::Stdout),
    File(PathBuf, File),
}

impl Sink {
    fn open(destination: Destination) -> std::io::Result<Sink> {
        Ok(match destination {
            Destination::Stdout => Sink::Stdout(std::io::stdout()),
            Destination::File(path) => {
                let file = append(&path)?;
                Sink::File(path, file)
            }
        })
    }

    fn reopen(&mut self) {
        if let Sink::File(path, file) = self {
            match append(path) {
                Ok(fresh) => *file = fresh,
                Err(error) => {
                    tracing::warn!(%error, file = %path.display(), "cannot reopen the access log; writing to the old file");
                }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Sink::File(_, file) => file.write_all(bytes),
        }
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: every tick (or when woken) takes the queued records, formats them and
/// writes them in chunks; after `close` it writes what is left and ends.
fn write_all(shared: &Shared, sink: &mut Sink, format: LogFormat) {
    let mut out = Vec::with_capacity(CHUNK + 4096);
    let mut failed = false;
    let mut batch = Vec::new();
    let mut formatter = Formatter::new(format);
    loop {
        let closed = {
            let queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let (mut queue, _) = shared
                .wake
                .wait_timeout_while(queue, TICK, |queue| {
                    queue.records.len() < WAKE_AT && !shared.closed.load(Ordering::Relaxed)
                })
                .unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut queue.records, &mut batch);
            queue.text_bytes = 0;
            shared.closed.load(Ordering::Relaxed)
        };
        if shared.reopen.swap(false, Ordering::Relaxed) {
            sink.reopen();
        }
        let lines = batch.len() as u64;
        formatter.tick();
        for record in batch.drain(..) {
            formatter.write_line(&mut out, &record);
            if out.len() >= CHUNK {
                failed = flush(sink, &mut out, failed);
            }
        }
        failed = flush(sink, &mut out, failed);
        shared.written.fetch_add(lines, Ordering::Relaxed);
        if closed {
            return;
        }
    }
}

/// Writes `out` and empties it; a failure is logged once until a write succeeds again.
fn flush(sink: &mut Sink, out: &mut Vec<u8>, failed: bool) -> bool {
    if out.is_empty() {
        return failed;
    }
    let result = sink.write(out);
    out.clear();
    match result {
        Ok(()) => false,
        Err(error) => {
            if !failed {
                tracing::error!(%error, "cannot write the access log; lines are lost until it works again");
            }
            true
        }
    }
}
