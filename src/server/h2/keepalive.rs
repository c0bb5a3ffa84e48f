//! Finding dead clients: while streams are open, a client silent for a period is pinged, and
//! dropped if it stays silent for another.

use super::{ConnError, Connection, protocol};
use crate::http2::frame::{self, Reason};
use std::pin::Pin;
use std::task::Context;
use tokio::io::{AsyncRead, AsyncWrite};

/// The keep-alive check, armed only while streams are open: with nothing read for a period
/// (`[server] http2_keepalive`), the client is sent a PING; if the next period passes with still
/// nothing read, the connection is taken for dead and closed (a peer that vanished without a
/// FIN would otherwise hold its streams and their backends).
pub(super) struct Keepalive {
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes were read since the timer last fired.
    heard: bool,
    /// A PING went out and nothing was read since.
    pinged: bool,
}

impl Keepalive {
    /// Disarmed: armed by the first poll with streams open.
    pub(super) fn new() -> Keepalive {
        Keepalive {
            timer: None,
            heard: false,
            pinged: false,
        }
    }

    /// Bytes arrived from the client.
    pub(super) fn heard(&mut self) {
        self.heard = true;
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Connection<'_, I> {
    /// Runs the keep-alive check while streams are open.
    pub(super) fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        let keepalive = &mut self.keepalive;
        if self.streams.is_empty() || self.error.is_some() {
            keepalive.timer = None;
            return Ok(());
        }
        let period = self.ctx.settings.http2_keepalive;
        let timer = keepalive.timer.get_or_insert_with(|| {
            keepalive.heard = false;
            Box::pin(tokio::time::sleep(period))
        });
        if timer.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        if keepalive.heard {
            keepalive.pinged = false;
        } else if keepalive.pinged {
            return Err(protocol(
                Reason::NoError,
                "client silent: keep-alive PING unanswered",
            ));
        } else {
            keepalive.pinged = true;
            frame::ping(self.out.buf(), 0, b"keepaliv");
        }
        keepalive.heard = false;
        timer.as_mut().reset(tokio::time::Instant::now() + period);
        // Registers the timer again.
        let _ = timer.as_mut().poll(cx);
        Ok(())
    }
}
