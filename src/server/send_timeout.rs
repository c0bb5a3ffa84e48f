//! A client socket whose writes give up when the client stops taking bytes: a write that
//! stays pending for the send timeout fails with `TimedOut`, so a client that never reads
//! cannot keep its backend exchange (and its place under `max_conns_per_backend`) for the whole
//! request timeout. The timer exists only while a write is pending. Reads pass through. Used by
//! both HTTP/1.1 servers (the hand-written one around each response, hyper's for the whole
//! connection, upgraded tunnels included).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `io`, its writes each allowed to wait at most `limit`.
pub struct SendTimeout<I> {
    io: I,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<I> SendTimeout<I> {
    /// Wraps `io`.
    pub fn new(io: I, limit: Duration) -> Self {
        SendTimeout {
            io,
            limit,
            timer: None,
        }
    }

    /// Maps a write's outcome: progress disarms the timer, waiting arms it, and an expired one
    /// turns the wait into an error.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.timer = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client took no response bytes within send_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_reader_never_takes_times_out_and_one_it_takes_does_not() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        let mut timed = SendTimeout::new(&mut near, Duration::from_millis(100));
        timed.write_all(&[1; 1024]).await.unwrap();
        let started = std::time::Instant::now();
        let error = timed.write_all(&[2; 10]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));

        // A reader that keeps taking bytes, slowly: each write waits less than the limit.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut total = 0;
            while total < 1024 + 4096 {
                tokio::time::sleep(Duration::from_millis(30)).await;
                total += far.read(&mut buf).await.unwrap();
            }
        });
        let mut timed = SendTimeout::new(&mut near, Duration::from_millis(100));
        timed.write_all(&[3; 4096]).await.unwrap();
        reader.await.unwrap();
    }
}
