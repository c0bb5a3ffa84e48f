//! What a reload cannot apply: the keys of a config file, other than its routes and the
//! default balancer and hash key, whose values differ between the running file and the new one.
//! SIGHUP applies routes only; these take effect at the next start.

use toml::Table;

/// Keys a reload applies (besides `[[route]]`).
const RELOADED: [&str; 2] = ["proxy.balancer", "proxy.hash_key"];

/// The keys (`section.key`, or `section` for a value that is not a table) whose values differ
/// between the texts `running` and `next`, in sorted order; nothing when either does not parse.
pub fn changed_keys(running: &str, next: &str) -> Vec<String> {
    let (Ok(running), Ok(next)) = (running.parse::<Table>(), next.parse::<Table>()) else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    let sections = running
        .keys()
        .chain(next.keys().filter(|k| !running.contains_key(*k)));
    let empty = toml::Value::Table(Table::new());
    for section in sections.filter(|s| *s != "route") {
        // A section missing on one side is all defaults: compare it as empty.
        let (old, new) = match (running.get(section), next.get(section)) {
            (None, Some(new @ toml::Value::Table(_))) => (Some(&empty), Some(new)),
            (Some(old @ toml::Value::Table(_)), None) => (Some(old), Some(&empty)),
            pair => pair,
        };
        match (old, new) {
            (Some(toml::Value::Table(old)), Some(toml::Value::Table(new))) => {
                let keys = old
                    .keys()
                    .chain(new.keys().filter(|k| !old.contains_key(*k)));
                for key in keys {
                    if old.get(key) != new.get(key) {
                        changed.push(format!("{section}.{key}"));
                    }
                }
            }
            (old, new) if old != new => changed.push(section.clone()),
            _ => {}
        }
    }
    changed.retain(|key| !RELOADED.contains(&key.as_str()));
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_a_reload_leaves_for_a_restart() {
        let running = "[listen]\nhttp = \":8080\"\n[server]\nworkers = 2\n\
                       [proxy]\nbalancer = \"random\"\n[[route]]\nuri = \"a\"\nbackends = []\n";
        let cases: [(&str, &[&str]); 4] = [
            (running, &[]),
            (
                "[listen]\nhttp = \":9090\"\n[server]\nworkers = 4\n[proxy]\nbalancer = \"hash\"\n",
                &["listen.http", "server.workers"],
            ),
            (
                "[listen]\nhttp = \":8080\"\n[server]\nworkers = 2\n[access_log]\nenabled = false\n",
                &["access_log.enabled"],
            ),
            ("not toml [", &[]),
        ];
        for (next, expected) in cases {
            assert_eq!(changed_keys(running, next), expected, "{next}");
        }
    }
}
