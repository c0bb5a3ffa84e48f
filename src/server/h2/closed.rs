//! Streams the server reset lately (RFC 9113 section 5.4.2): frames the client sent before it
//! saw the RST_STREAM are ignored, while a frame on any other closed stream breaks the protocol
//! (section 5.1).

use std::collections::VecDeque;

/// Server-reset streams remembered (more than can be open at once).
const REMEMBERED: usize = 256;

/// The last [`REMEMBERED`] streams the server reset (nothing is allocated until the first).
#[derive(Default)]
pub struct ResetByServer {
    ids: VecDeque<u32>,
}

impl ResetByServer {
    /// Remembers stream `id`, forgetting the oldest past the limit.
    pub fn add(&mut self, id: u32) {
        if self.ids.len() == REMEMBERED {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }

    /// True when the server reset stream `id` lately.
    pub fn contains(&self, id: u32) -> bool {
        self.ids.iter().rev().any(|&i| i == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_streams_only() {
        let mut reset = ResetByServer::default();
        for id in 0..REMEMBERED as u32 + 10 {
            reset.add(id);
        }
        assert!(!reset.contains(5), "forgotten");
        assert!(reset.contains(REMEMBERED as u32));
        assert!(!reset.contains(REMEMBERED as u32 + 10), "never reset");
    }
}
