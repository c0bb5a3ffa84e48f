//! Which frame does what: the dispatch of every frame the client sends, and the
//! connection-level ones (SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY). Frames that carry
//! requests and their bodies are in `receive`.

use super::{ConnError, Connection, HEADER_TABLE_SIZE, protocol};
use crate::http2::frame::{self, Head, Reason, flag, kind, setting};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

impl<I: AsyncRead + AsyncWrite + Unpin> Connection<'_, I> {
    pub(super) fn on_frame(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if !self.settings_seen && head.kind != kind::SETTINGS {
            return Err(protocol(
                Reason::ProtocolError,
                "first frame is not SETTINGS",
            ));
        }
        if let Some(partial) = &self.partial
            && !partial.continued_by(&head)
        {
            return Err(protocol(Reason::ProtocolError, "header block interrupted"));
        }
        match head.kind {
            kind::DATA => self.on_data(head, payload),
            kind::HEADERS => self.on_headers(head, payload),
            kind::CONTINUATION => self.on_continuation(head, payload),
            kind::PRIORITY => self.on_priority(head, payload),
            kind::RST_STREAM => self.on_reset(head, payload),
            kind::SETTINGS => self.on_settings(head, payload),
            kind::PUSH_PROMISE => Err(protocol(
                Reason::ProtocolError,
                "PUSH_PROMISE from a client",
            )),
            kind::PING => self.on_ping(head, payload),
            kind::GOAWAY => {
                if head.stream != 0 {
                    return Err(protocol(Reason::ProtocolError, "GOAWAY on a stream"));
                }
                self.peer_goaway = true;
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(head, payload),
            // Unknown frame types are ignored (RFC 9113 section 4.1), within the budget.
            _ => self.calm.idle_frame(),
        }
    }

    fn on_priority(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(protocol(Reason::ProtocolError, "PRIORITY on stream 0"));
        }
        if head.len != 5 {
            return Err(protocol(
                Reason::FrameSizeError,
                "PRIORITY of the wrong size",
            ));
        }
        self.calm.idle_frame()?;
        check_priority(head.stream, &payload)
    }

    fn on_settings(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "SETTINGS on a stream"));
        }
        self.calm.idle_frame()?;
        if head.has(flag::ACK) {
            return match head.len {
                0 => Ok(()),
                _ => Err(protocol(
                    Reason::FrameSizeError,
                    "SETTINGS ack with a payload",
                )),
            };
        }
        if !head.len.is_multiple_of(6) {
            return Err(protocol(
                Reason::FrameSizeError,
                "SETTINGS of the wrong size",
            ));
        }
        self.settings_seen = true;
        // Only the last INITIAL_WINDOW_SIZE of a frame is applied: each one means a pass over
        // every open stream.
        let mut initial_window = None;
        for pair in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match id {
                setting::HEADER_TABLE_SIZE => {
                    let size = (value as usize).min(HEADER_TABLE_SIZE);
                    if size < self.peer.table_size {
                        self.peer.table_size = size;
                        self.peer.size_update = Some(size);
                    }
                }
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(protocol(Reason::ProtocolError, "bad SETTINGS_ENABLE_PUSH"));
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if value > frame::MAX_WINDOW {
                        return Err(protocol(
                            Reason::FlowControlError,
                            "initial window too large",
                        ));
                    }
                    initial_window = Some(value as i64);
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..=0xff_ffff).contains(&value) {
                        return Err(protocol(
                            Reason::ProtocolError,
                            "bad SETTINGS_MAX_FRAME_SIZE",
                        ));
                    }
                    self.peer.max_frame = value as usize;
                }
                _ => {}
            }
        }
        if let Some(window) = initial_window {
            self.set_initial_window(window)?;
        }
        frame::head(self.out.buf(), 0, kind::SETTINGS, flag::ACK, 0);
        Ok(())
    }

    /// Applies a new initial stream window to every open stream (section 6.9.2).
    fn set_initial_window(&mut self, window: i64) -> Result<(), ConnError> {
        let delta = window - self.peer.initial_window;
        self.peer.initial_window = window;
        for (id, stream) in &mut self.streams {
            stream.send_window += delta;
            if stream.send_window > frame::MAX_WINDOW as i64 {
                return Err(protocol(Reason::FlowControlError, "window too large"));
            }
            if delta > 0 {
                self.again.push(*id);
            }
        }
        Ok(())
    }

    fn on_ping(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "PING on a stream"));
        }
        let Ok(payload) = <[u8; 8]>::try_from(&payload[..]) else {
            return Err(protocol(Reason::FrameSizeError, "PING of the wrong size"));
        };
        self.calm.idle_frame()?;
        if !head.has(flag::ACK) {
            frame::ping(self.out.buf(), flag::ACK, &payload);
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.len != 4 {
            return Err(protocol(
                Reason::FrameSizeError,
                "WINDOW_UPDATE of the wrong size",
            ));
        }
        let increment = (u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
            & frame::MAX_WINDOW) as i64;
        // Window for data the client is being sent; what refills the budget is that data.
        self.calm.idle_frame()?;
        if head.stream == 0 {
            if increment == 0 {
                return Err(protocol(Reason::ProtocolError, "WINDOW_UPDATE of 0"));
            }
            self.peer.conn_window += increment;
            if self.peer.conn_window > frame::MAX_WINDOW as i64 {
                return Err(protocol(
                    Reason::FlowControlError,
                    "connection window too large",
                ));
            }
            self.again.append(&mut self.conn_blocked);
            return Ok(());
        }
        self.check_not_idle(head.stream)?;
        let Some(stream) = self.streams.get_mut(&head.stream) else {
            return Ok(());
        };
        stream.send_window += increment;
        if increment == 0 || stream.send_window > frame::MAX_WINDOW as i64 {
            let reason = match increment {
                0 => Reason::ProtocolError,
                _ => Reason::FlowControlError,
            };
            return self.reset(head.stream, reason);
        }
        self.again.push(head.stream);
        Ok(())
    }

    fn on_reset(&mut self, head: Head, _payload: Bytes) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(protocol(Reason::ProtocolError, "RST_STREAM on stream 0"));
        }
        if head.len != 4 {
            return Err(protocol(
                Reason::FrameSizeError,
                "RST_STREAM of the wrong size",
            ));
        }
        self.check_not_idle(head.stream)?;
        if !self.streams.contains_key(&head.stream) {
            return self.calm.idle_frame();
        }
        self.remove(head.stream);
        self.ctx.proxy.metrics().http2_client_reset();
        self.count_reset()
    }

    /// A frame for a stream the client has not opened yet is a protocol error.
    pub(super) fn check_not_idle(&self, id: u32) -> Result<(), ConnError> {
        match id > self.last_stream {
            true => Err(protocol(Reason::ProtocolError, "frame on an idle stream")),
            false => Ok(()),
        }
    }
}

/// Priorities are not used, but a stream may not depend on itself (section 5.3.1): answered
/// as a connection error, which the RFC allows for any stream error.
pub(super) fn check_priority(stream: u32, priority: &[u8]) -> Result<(), ConnError> {
    let parent = u32::from_be_bytes([priority[0], priority[1], priority[2], priority[3]])
        & frame::MAX_WINDOW;
    match parent == stream {
        true => Err(protocol(Reason::ProtocolError, "stream depends on itself")),
        false => Ok(()),
    }
}
