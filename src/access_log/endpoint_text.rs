//! Each endpoint's part of a line (its address and application fields), formatted once and
//! kept for the lines after: most lines name one of a few endpoints, and escaping and writing
//! addresses is much of a line's cost.

use crate::routing::Endpoint;
use std::sync::{Arc, Weak};

/// An endpoint's formatted fields.
#[derive(Debug, Default)]
pub struct EndpointText {
    /// `ip:port`.
    pub address: Vec<u8>,
    /// The `app_id`, `app_index` and `instance_id` fields with their names, in the layout.
    pub app: Vec<u8>,
}

/// Slots of the cache; an endpoint takes the slot its address hashes to.
const SLOTS: usize = 256;
/// Longer texts (a registration can carry a long application id) are formatted again for
/// each line instead of kept, so the cache holds at most `SLOTS` times this.
const KEPT_BYTES: usize = 512;

/// The cache: a slot holds the endpoint by a weak reference, so its allocation, and with it
/// the address compared, cannot go to another endpoint while the slot names it.
#[derive(Debug)]
pub struct EndpointTexts {
    slots: Vec<Option<(Weak<Endpoint>, EndpointText)>>,
    /// The last text too long to keep.
    long: EndpointText,
}

impl Default for EndpointTexts {
    fn default() -> Self {
        EndpointTexts {
            slots: (0..SLOTS).map(|_| None).collect(),
            long: EndpointText::default(),
        }
    }
}

impl EndpointTexts {
    /// The fields of `endpoint`, formatted by `format` unless kept from an earlier line.
    pub fn get(
        &mut self,
        endpoint: &Arc<Endpoint>,
        format: fn(&Endpoint) -> EndpointText,
    ) -> &EndpointText {
        let at = Arc::as_ptr(endpoint);
        let slot = ((at.addr() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize;
        let kept = matches!(&self.slots[slot], Some((held, _)) if held.as_ptr() == at);
        if !kept {
            let text = format(endpoint);
            if text.address.len() + text.app.len() > KEPT_BYTES {
                self.long = text;
                return &self.long;
            }
            self.slots[slot] = Some((Arc::downgrade(endpoint), text));
        }
        match &self.slots[slot] {
            Some((_, text)) => text,
            None => &self.long,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{EndpointSpec, Source};

    fn endpoint(port: u16, app_id: &str) -> Arc<Endpoint> {
        let mut spec = EndpointSpec::loopback(port);
        spec.app_id = app_id.to_string();
        Arc::new(Endpoint::new(
            spec,
            Source::Config,
            None,
            Default::default(),
        ))
    }

    fn format(endpoint: &Endpoint) -> EndpointText {
        EndpointText {
            address: endpoint.spec.address.to_string().into_bytes(),
            app: endpoint.spec.app_id.clone().into_bytes(),
        }
    }

    #[test]
    fn each_endpoint_gets_its_own_text_also_after_another_was_dropped() {
        let mut texts = EndpointTexts::default();
        let mut made = Vec::new();
        for round in 0..2_000u16 {
            // Endpoints come and go: a fresh one may land where a dropped one lived.
            let e = endpoint(1_000 + round, &format!("app-{round}"));
            assert_eq!(texts.get(&e, format).app, format!("app-{round}").as_bytes());
            assert_eq!(texts.get(&e, format).app, format!("app-{round}").as_bytes());
            if round % 3 == 0 {
                made.push(e);
            }
        }
        for e in &made {
            let expected = format!("127.0.0.1:{}", e.spec.address.port());
            assert_eq!(texts.get(e, format).address, expected.as_bytes());
        }
        let long = endpoint(9, &"x".repeat(KEPT_BYTES + 1));
        assert_eq!(texts.get(&long, format).app.len(), KEPT_BYTES + 1);
        let short = endpoint(10, "short");
        assert_eq!(texts.get(&short, format).app, b"short");
        assert_eq!(texts.get(&long, format).app.len(), KEPT_BYTES + 1);
    }
}
