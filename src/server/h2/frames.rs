//! Which frame does what: the dispatch of every frame the client sends, and the
//! connection-level ones (SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, GOAWAY). Frames that carry
//! requests and their bodies are in `receive`.

use super::{ConnError, Connection, HEADER_TABLE_SIZE, MAX_RESETS, RESET_PERIOD, protocol};
use crate::http2::frame::{self, Head, Reason, flag, kind, setting};
use bytes::Bytes;
use std::time::Instant;
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
            kind::PRIORITY => match (head.stream, head.len) {
                (0, _) => Err(protocol(Reason::ProtocolError, "PRIORITY on stream 0")),
                (_, 5) => Ok(()),
                _ => Err(protocol(
                    Reason::FrameSizeError,
                    "PRIORITY of the wrong size",
                )),
            },
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
            // Unknown frame types are ignored (RFC 9113 section 4.1).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "SETTINGS on a stream"));
        }
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
                    let delta = value as i64 - self.peer.initial_window;
                    self.peer.initial_window = value as i64;
                    for (id, stream) in &mut self.streams {
                        stream.send_window += delta;
                        if stream.send_window > frame::MAX_WINDOW as i64 {
                            return Err(protocol(Reason::FlowControlError, "window too large"));
                        }
                        if delta > 0 {
                            self.again.push(*id);
                        }
                    }
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
        frame::head(self.out.buf(), 0, kind::SETTINGS, flag::ACK, 0);
        Ok(())
    }

    fn on_ping(&mut self, head: Head, payload: Bytes) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(protocol(Reason::ProtocolError, "PING on a stream"));
        }
        let Ok(payload) = <[u8; 8]>::try_from(&payload[..]) else {
            return Err(protocol(Reason::FrameSizeError, "PING of the wrong size"));
        };
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
            self.reset(head.stream, reason);
        } else {
            self.again.push(head.stream);
        }
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
        if self.streams.contains_key(&head.stream) {
            self.remove(head.stream);
            self.ctx.proxy.metrics().http2_client_reset();
            let (since, count) = &mut self.resets;
            if since.elapsed() > RESET_PERIOD {
                *since = Instant::now();
                *count = 0;
            }
            *count += 1;
            if *count > MAX_RESETS {
                return Err(protocol(Reason::EnhanceYourCalm, "too many stream resets"));
            }
        }
        Ok(())
    }

    /// A frame for a stream the client has not opened yet is a protocol error.
    pub(super) fn check_not_idle(&self, id: u32) -> Result<(), ConnError> {
        match id > self.last_stream {
            true => Err(protocol(Reason::ProtocolError, "frame on an idle stream")),
            false => Ok(()),
        }
    }
}
