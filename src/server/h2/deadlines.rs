//! The connection's clocks: the keep-alive check (`keepalive`), a header block that must be
//! complete within `header_read_timeout` (a client may not hold a connection with a block it
//! never finishes), and responses stalled on the client's flow-control window, reset after
//! `send_timeout` (a client that stops reading must not keep backend exchanges, and their
//! places under `max_conns_per_backend`, for as long as the request timeout).

use super::{ConnError, Connection, protocol};
use crate::http2::frame::{self, Reason, kind};
use std::pin::Pin;
use std::task::Context;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

/// A timer that exists only while armed.
#[derive(Default)]
pub(super) struct Deadline(Option<Pin<Box<Sleep>>>);

impl Deadline {
    /// Arms the timer for `at` unless it is armed already.
    pub(super) fn arm_if_unset(&mut self, at: Instant) {
        if self.0.is_none() {
            self.0 = Some(Box::pin(tokio::time::sleep_until(at.into())));
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }

    /// True once the armed time has come (the timer is then disarmed).
    fn fired(&mut self, cx: &mut Context<'_>) -> bool {
        let fired = self
            .0
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        if fired {
            self.0 = None;
        }
        fired
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Connection<'_, I> {
    /// Runs the three clocks; an error ends the connection.
    pub(super) fn poll_deadlines(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        self.poll_keepalive(cx)?;
        if self.head_arriving() {
            let limit = self.ctx.settings.header_timeout;
            self.head_deadline.arm_if_unset(Instant::now() + limit);
            if self.head_deadline.fired(cx) {
                return Err(protocol(
                    Reason::NoError,
                    "header block not finished within header_read_timeout",
                ));
            }
        } else {
            self.head_deadline.disarm();
        }
        // Polled again after each reset: that registers the timer armed for the next one.
        while self.stall_deadline.fired(cx) {
            self.reset_stalled()?;
        }
        Ok(())
    }

    /// True while the preface, a header block or a frame's header is partly read.
    fn head_arriving(&self) -> bool {
        if self.partial.is_some() || !self.settings_seen {
            return self.error.is_none() && !self.read_closed;
        }
        match self.read.len() {
            0 => false,
            1..frame::HEADER_LEN => true,
            _ => matches!(
                frame::Head::parse(&self.read).kind,
                kind::HEADERS | kind::CONTINUATION
            ),
        }
    }

    /// Resets the streams whose responses have waited for window for `send_timeout`, and arms
    /// the clock for the next one due.
    fn reset_stalled(&mut self) -> Result<(), ConnError> {
        let limit = self.ctx.settings.send_timeout;
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (&id, stream) in &self.streams {
            let Some(since) = stream.stalled_since else {
                continue;
            };
            let due = since + limit;
            if due <= now {
                expired.push(id);
            } else {
                next = Some(next.map_or(due, |next| next.min(due)));
            }
        }
        if let Some(next) = next {
            self.stall_deadline.arm_if_unset(next);
        }
        for id in expired {
            tracing::debug!(stream = id, "response stalled on flow control: resetting");
            self.reset(id, Reason::Cancel)?;
        }
        Ok(())
    }
}
