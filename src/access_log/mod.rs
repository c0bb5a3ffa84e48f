//! The access log: one line per request (`record`), in gorouter's text layout or JSON
//! (`format`, `time`), to stdout or a file. Workers hand records to a writer thread through a
//! bounded queue and never wait: when the queue is full (a disk that cannot keep up) the record
//! is dropped and counted. The file is reopened on request (SIGHUP, SIGUSR2) for logrotate.

mod format;
mod record;
mod time;

pub use crate::config::AccessLogFormat as LogFormat;
pub use format::write_line;
pub use record::{LoggedHeaders, Record};

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records that may wait for the writer.
const QUEUE: usize = 16_384;
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

/// The access log (see the module docs).
/// Records travel as `Some`; `None` tells the writer to finish.
#[derive(Debug)]
pub struct AccessLog {
    queue: SyncSender<Option<Record>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    dropped: AtomicU64,
    written: AtomicU64,
    reopen: AtomicBool,
    closed: AtomicBool,
}

impl AccessLog {
    /// Opens `destination` and starts the writer thread.
    pub fn start(destination: Destination, format: LogFormat) -> std::io::Result<AccessLog> {
        let mut sink = Sink::open(destination)?;
        let (queue, records) = sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("switchyard-access-log".into())
            .spawn(move || write_all(&records, &mut sink, format, &writer))?;
        Ok(AccessLog {
            queue,
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `record` for writing; drops it (counted) when the writer is behind.
    pub fn log(&self, record: Record) {
        if self.shared.closed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Some(record))
        {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
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

    /// Writes what is queued and stops the writer (later records are ignored).
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = self.queue.send(None);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
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

/// The writer thread: formats records as they come, writing in chunks, until told to finish
/// (or every sender is gone).
fn write_all(
    records: &Receiver<Option<Record>>,
    sink: &mut Sink,
    format: LogFormat,
    shared: &Shared,
) {
    let mut out = String::with_capacity(CHUNK + 4096);
    let mut failed = false;
    let mut finishing = false;
    while !finishing {
        let first = match records.recv_timeout(Duration::from_secs(1)) {
            Ok(Some(record)) => Some(record),
            Ok(None) => {
                finishing = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if shared.reopen.swap(false, Ordering::Relaxed) {
            sink.reopen();
        }
        let rest = std::iter::from_fn(|| records.try_recv().ok());
        for record in first.into_iter().map(Some).chain(rest) {
            let Some(record) = record else {
                finishing = true;
                continue;
            };
            write_line(&mut out, &record, format);
            shared.written.fetch_add(1, Ordering::Relaxed);
            if out.len() >= CHUNK {
                failed = flush(sink, &mut out, failed);
            }
        }
        failed = flush(sink, &mut out, failed);
    }
}

/// Writes `out` and empties it; a failure is logged once until a write succeeds again.
fn flush(sink: &mut Sink, out: &mut String, failed: bool) -> bool {
    if out.is_empty() {
        return failed;
    }
    let result = sink.write(out.as_bytes());
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
