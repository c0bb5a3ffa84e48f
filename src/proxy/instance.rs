//! Instance-targeted routing (gorouter's): `X-CF-App-Instance: <app-guid>:<index>` sends the
//! request to that instance of the route and no other; `X-CF-Process-Instance:
//! <process-guid>[:<index>]` to the instance whose `process_id` tag (and index) match. Both
//! headers are removed before the request goes on.

use super::ProxyError;
use super::context::RequestContext;
use super::names::{X_CF_APP_INSTANCE, X_CF_PROCESS_INSTANCE};
use crate::balance::Affinity;
use crate::routing::Endpoint;
use http::HeaderMap;

/// An instance a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// By application guid and index.
    App { guid: String, index: String },
    /// By process guid, and index when given.
    Process { guid: String, index: Option<String> },
}

impl Wanted {
    /// The instance the request's headers ask for (removing them), or the 400 a malformed
    /// one gets.
    pub fn take(headers: &mut HeaderMap) -> Result<Option<Wanted>, ProxyError> {
        if let Some(value) = headers.remove(X_CF_APP_INSTANCE) {
            let text = value.to_str().unwrap_or("");
            return match text.split_once(':') {
                Some((guid, index)) if is_guid(guid) && is_index(index) => Ok(Some(Wanted::App {
                    guid: guid.to_owned(),
                    index: index.to_owned(),
                })),
                _ => Err(ProxyError::InvalidAppInstanceHeader),
            };
        }
        if let Some(value) = headers.remove(X_CF_PROCESS_INSTANCE) {
            let text = value.to_str().unwrap_or("");
            let (guid, index) = match text.split_once(':') {
                Some((guid, index)) => (guid, Some(index)),
                None => (text, None),
            };
            if !is_guid(guid) || !index.is_none_or(is_index) {
                return Err(ProxyError::InvalidProcessInstanceHeader);
            }
            return Ok(Some(Wanted::Process {
                guid: guid.to_owned(),
                index: index.map(str::to_owned),
            }));
        }
        Ok(None)
    }

    fn matches(&self, endpoint: &Endpoint) -> bool {
        let spec = &endpoint.spec;
        match self {
            Wanted::App { guid, index } => spec.app_id == *guid && spec.instance_index == *index,
            Wanted::Process { guid, index } => {
                spec.tags.get("process_id") == Some(guid)
                    && index
                        .as_ref()
                        .is_none_or(|index| spec.instance_index == *index)
            }
        }
    }

    /// The 400 for a request asking for an instance `host` does not have.
    pub fn unknown(&self, host: &str) -> ProxyError {
        let (index, guid) = match self {
            Wanted::App { guid, index } => (index.as_str(), guid.as_str()),
            Wanted::Process { guid, index } => (index.as_deref().unwrap_or(""), guid.as_str()),
        };
        ProxyError::UnknownInstance(format!(
            "Requested instance ('{index}') with guid ('{guid}') does not exist for route ('{host}')"
        ))
    }
}

/// Points the request at the instance it asks for, or answers 400 when its route has none.
pub fn apply(ctx: &mut RequestContext, wanted: &Wanted, host: &str) -> Result<(), ProxyError> {
    let endpoints = &ctx.route.pool.endpoints;
    let index = endpoints
        .iter()
        .position(|endpoint| wanted.matches(endpoint))
        .ok_or_else(|| wanted.unknown(host))?;
    ctx.affinity = Affinity::Only(index);
    Ok(())
}

/// A lower-case UUID, as gorouter requires (`8-4-4-4-12` hex digits).
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len
                && group
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

fn is_index(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "1bf2e7f6-2d1d-41ec-501c-c70b2e8c3e7d";

    fn take(name: &str, value: &str) -> Result<Option<Wanted>, ProxyError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        let wanted = Wanted::take(&mut headers);
        assert!(headers.is_empty(), "the header is removed");
        wanted
    }

    /// (header, value, parsed: Some(wanted) / None = malformed)
    #[test]
    fn headers_parse_as_gorouter() {
        let app = |index: &str| Wanted::App {
            guid: GUID.into(),
            index: index.into(),
        };
        let process = |index: Option<&str>| Wanted::Process {
            guid: GUID.into(),
            index: index.map(Into::into),
        };
        let table = [
            ("x-cf-app-instance", format!("{GUID}:0"), Some(app("0"))),
            ("x-cf-app-instance", format!("{GUID}:12"), Some(app("12"))),
            ("x-cf-app-instance", GUID.to_string(), None),
            ("x-cf-app-instance", format!("{GUID}:"), None),
            ("x-cf-app-instance", format!("{GUID}:x"), None),
            (
                "x-cf-app-instance",
                format!("{}:0", GUID.to_uppercase()),
                None,
            ),
            ("x-cf-app-instance", "not-a-guid:0".into(), None),
            (
                "x-cf-process-instance",
                GUID.to_string(),
                Some(process(None)),
            ),
            (
                "x-cf-process-instance",
                format!("{GUID}:3"),
                Some(process(Some("3"))),
            ),
            ("x-cf-process-instance", format!("{GUID}:-1"), None),
            ("x-cf-process-instance", "abc".into(), None),
        ];
        for (name, value, expected) in table {
            match (take(name, &value), expected) {
                (Ok(Some(got)), Some(expected)) => assert_eq!(got, expected, "{name}: {value}"),
                (Err(_), None) => {}
                (got, expected) => panic!("{name}: {value}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
