//! Transport URLs, parsed as oslo.messaging's `TransportURL.parse` does:
//! `driver://[user:pass@]host[:port][,[user:pass@]host2[:port2]...]/[virtual_host][?query]`.
//!
//! Passwords never appear in `Display` or `Debug` output: they print as `****`. A password
//! written unencoded with a `/`, `?` or `,` in it would be split across the host list, the
//! virtual host or the query (and then printed as one of them), so such URLs are refused: `@`
//! after the host list, or a host without credentials before one with them, means the URL
//! must be percent-encoded. (A password with both `,` and `@` unencoded reads as two hosts
//! with credentials, here as in oslo: no parser can tell; percent-encode it.) Errors show [`redact`]ed text, which hides everything that may be
//! a password even when the URL does not parse.

use std::fmt;

use percent_encoding::percent_decode_str;

/// The driver named by the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportDriver {
    /// `rabbit://` (and oslo's alias `kombu://`; `pika://`, the retired pika driver's, which
    /// spoke to the same broker): RabbitMQ over AMQP 0-9-1.
    Rabbit,
    /// `memory://`: the in-process transport (and `fake://`, oslo's name for it).
    Memory,
}

/// One broker host.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportHost {
    /// TransportHost name or address (IPv6 without brackets).
    pub hostname: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// User name, when given.
    pub username: Option<String>,
    /// Password, when given. Never printed.
    pub password: Option<String>,
}

impl fmt::Debug for TransportHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportHost")
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .finish()
    }
}

/// A parsed transport URL.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportUrl {
    /// The driver.
    pub driver: TransportDriver,
    /// The scheme as written (`rabbit`, `kombu`, `memory`).
    pub scheme: String,
    /// Broker hosts, in the order written.
    pub hosts: Vec<TransportHost>,
    /// The virtual host: `None` when the URL has no path, `Some("")` for a bare `/`.
    pub virtual_host: Option<String>,
    /// Query options; a key repeated in the URL has its values joined with `,`.
    pub query: Vec<(String, String)>,
}

/// A URL that could not be parsed (the message never contains the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transport URL {url}: {reason}")]
pub struct InvalidUrl {
    /// The URL, password redacted.
    pub url: String,
    /// What is wrong.
    pub reason: UrlProblem,
}

/// What is wrong with a transport URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlProblem {
    /// No `://` after a driver name.
    #[error("expected `driver://…`, e.g. rabbit://guest:guest@127.0.0.1:5672/")]
    NoScheme,
    /// A scheme that names no driver.
    #[error("unknown driver {0:?}: use rabbit:// (or its alias kombu://) or memory://")]
    UnknownDriver(String),
    /// One of oslo's other drivers (`amqp`, `kafka`, `zmq`): what to use instead, and why.
    #[error("the {driver}:// driver is not supported: {instead} (see docs/rabbitmq.md)")]
    UnsupportedDriver {
        /// The scheme.
        driver: String,
        /// What to use instead, and why.
        instead: &'static str,
    },
    /// `[` with no `]` after it.
    #[error("unterminated `[` in an IPv6 address")]
    UnterminatedIpv6,
    /// A port that is not a number from 0 to 65535.
    #[error("invalid port {port:?}")]
    InvalidPort {
        /// The port as written.
        port: String,
        /// Why it is not a port number.
        #[source]
        source: std::num::ParseIntError,
    },
    /// `@` after the host list: most likely a password with `/` or `?` in it, which would
    /// otherwise end up in the virtual host and be printed.
    #[error("`@` after the host list: percent-encode it (%40), and `/`, `?`, `,` in a password (%2F, %3F, %2C)")]
    AtAfterHosts,
    /// A host without credentials before one with them: most likely a password with `,` in
    /// it, whose first part would otherwise become a host (and be printed).
    #[error(
        "a host without credentials comes before one with them: percent-encode `,` in a password (%2C), or write the hosts with credentials first"
    )]
    MixedCredentials,
}

impl TransportUrl {
    /// Parses a URL.
    pub fn parse(text: &str) -> Result<TransportUrl, InvalidUrl> {
        let fail = |reason: UrlProblem| InvalidUrl { url: redact(text), reason };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| fail(UrlProblem::NoScheme))?;
        let driver = match scheme {
            "rabbit" | "kombu" | "pika" => TransportDriver::Rabbit,
            "memory" | "fake" => TransportDriver::Memory,
            other => {
                return Err(fail(match unsupported(other) {
                    Some(instead) => UrlProblem::UnsupportedDriver { driver: other.to_owned(), instead },
                    None => UrlProblem::UnknownDriver(other.to_owned()),
                }));
            }
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (netloc, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        if path.is_some_and(|p| p.contains('@')) || query.is_some_and(|q| q.contains('@')) {
            return Err(fail(UrlProblem::AtAfterHosts));
        }
        let mut hosts = Vec::new();
        if !netloc.is_empty() {
            let entries: Vec<&str> = netloc.split(',').collect();
            // A password with `,` in it leaves a piece without `@` before the rest of it.
            let first_without = entries.iter().position(|e| !e.contains('@'));
            let last_with = entries.iter().rposition(|e| e.contains('@'));
            if let (Some(without), Some(with)) = (first_without, last_with)
                && without < with
            {
                return Err(fail(UrlProblem::MixedCredentials));
            }
            for entry in entries {
                hosts.push(parse_host(entry).map_err(fail)?);
            }
        }
        let virtual_host = path.map(|p| unquote(&p[1..]));
        let mut query_pairs: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // parse_qs drops blank values by default.
            if v.is_empty() {
                continue;
            }
            let (k, v) = (unquote_plus(k), unquote_plus(v));
            match query_pairs.iter_mut().find(|(key, _)| *key == k) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                None => query_pairs.push((k, v)),
            }
        }
        Ok(TransportUrl { driver, scheme: scheme.to_owned(), hosts, virtual_host, query: query_pairs })
    }

    /// A query option's value.
    #[must_use]
    pub fn option(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// oslo.messaging's drivers wasmrpc does not implement, and what to use instead.
fn unsupported(scheme: &str) -> Option<&'static str> {
    Some(match scheme {
        "amqp" => {
            "it is oslo's AMQP 1.0 driver, for message routers such as Qpid Dispatch Router; wasmrpc \
             speaks AMQP 0-9-1 to RabbitMQ: use rabbit://"
        }
        "kafka" => "oslo's Kafka driver carries notifications only, never RPC: use rabbit:// for both",
        "zmq" => "the ZeroMQ driver was removed from oslo.messaging: use rabbit://",
        _ => return None,
    })
}

impl TransportUrl {
    /// For a scheme that is another name of its driver (`fake`, `pika`): what the driver is
    /// called now, so the host can say so once.
    #[must_use]
    pub fn alias_of(&self) -> Option<&'static str> {
        match self.scheme.as_str() {
            "fake" => Some("memory"),
            "pika" => Some("rabbit"),
            _ => None,
        }
    }
}

fn parse_host(entry: &str) -> Result<TransportHost, UrlProblem> {
    let (creds, hostport) = match entry.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, entry),
    };
    let (username, password) = match creds {
        Some(c) => match c.split_once(':') {
            Some((u, p)) => (Some(unquote(u)), Some(unquote(p))),
            None => (Some(unquote(c)), None),
        },
        None => (None, None),
    };
    let (hostname, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(UrlProblem::UnterminatedIpv6)?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => {
            Some(p.parse::<u16>().map_err(|source| UrlProblem::InvalidPort { port: p.to_owned(), source })?)
        }
        _ => None,
    };
    Ok(TransportHost { hostname, port, username, password })
}

fn unquote(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn unquote_plus(s: &str) -> String {
    unquote(&s.replace('+', " "))
}

/// The URL text with every password replaced by `****`, for any text, parsable or not.
///
/// Everything up to the last `@` may hold credentials. When that part reads as a plain host
/// list (no `/` or `?`, and every host before the last has its own `@`), each host shows as
/// `user:****@host`; otherwise everything from its first `:` to the last `@` is hidden, since
/// a password with `/`, `?`, `,` or `@` in it cannot be told from the rest.
#[must_use]
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let Some(last_at) = rest.rfind('@') else {
        return text.to_owned();
    };
    let credentials = &rest[..last_at];
    let plain =
        !credentials.contains(['/', '?']) && credentials.split(',').rev().skip(1).all(|entry| entry.contains('@'));
    if !plain {
        return match credentials.find(':') {
            Some(colon) => format!("{scheme}://{}:****{}", &credentials[..colon], &rest[last_at..]),
            None => text.to_owned(),
        };
    }
    let end = rest[last_at..].find(['/', '?']).map_or(rest.len(), |i| last_at + i);
    let (netloc, tail) = rest.split_at(end);
    let hosts: Vec<String> = netloc
        .split(',')
        .map(|entry| match entry.rsplit_once('@') {
            Some((creds, host)) => match creds.split_once(':') {
                Some((user, _)) => format!("{user}:****@{host}"),
                None => entry.to_owned(),
            },
            None => entry.to_owned(),
        })
        .collect();
    format!("{scheme}://{}{tail}", hosts.join(","))
}

impl fmt::Display for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match (&h.username, &h.password) {
                (Some(u), Some(_)) => write!(f, "{u}:****@")?,
                (Some(u), None) => write!(f, "{u}@")?,
                _ => {}
            }
            if h.hostname.contains(':') {
                write!(f, "[{}]", h.hostname)?;
            } else {
                f.write_str(&h.hostname)?;
            }
            if let Some(p) = h.port {
                write!(f, ":{p}")?;
            }
        }
        if let Some(v) = &self.virtual_host {
            write!(f, "/{v}")?;
        }
        for (i, (k, v)) in self.query.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl fmt::Debug for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_oslo() {
        let u =
            TransportUrl::parse("rabbit://u%40x:p%3Aw@h1:5672,u2:pw2@[::1]:5673,h3/vh%2F1?ssl=true&a=1&a=2").unwrap();
        assert_eq!(u.driver, TransportDriver::Rabbit);
        assert_eq!(u.hosts.len(), 3);
        assert_eq!(u.hosts[0].username.as_deref(), Some("u@x"));
        assert_eq!(u.hosts[0].password.as_deref(), Some("p:w"));
        assert_eq!((u.hosts[0].hostname.as_str(), u.hosts[0].port), ("h1", Some(5672)));
        assert_eq!((u.hosts[1].hostname.as_str(), u.hosts[1].port), ("::1", Some(5673)));
        assert_eq!((u.hosts[2].hostname.as_str(), u.hosts[2].port, u.hosts[2].username.as_deref()), ("h3", None, None));
        assert_eq!(u.virtual_host.as_deref(), Some("vh/1"));
        assert_eq!(u.option("ssl"), Some("true"));
        assert_eq!(u.option("a"), Some("1,2"), "repeated keys are joined with commas");
    }

    #[test]
    fn virtual_hosts_follow_oslo() {
        let vh = |s: &str| TransportUrl::parse(s).unwrap().virtual_host;
        assert_eq!(vh("rabbit://h:5672/"), Some(String::new()));
        assert_eq!(vh("rabbit://h:5672//"), Some("/".into()));
        assert_eq!(vh("rabbit://h/%2F"), Some("/".into()));
        assert_eq!(vh("rabbit://h"), None);
        assert!(TransportUrl::parse("rabbit://").unwrap().hosts.is_empty());
        assert_eq!(TransportUrl::parse("kombu://h").unwrap().driver, TransportDriver::Rabbit);
        assert_eq!(TransportUrl::parse("memory://").unwrap().driver, TransportDriver::Memory);
        assert_eq!(TransportUrl::parse("memory://x/").unwrap().hosts[0].hostname, "x");
    }

    #[test]
    fn older_driver_names_are_aliases_and_other_drivers_say_what_to_use() {
        let fake = TransportUrl::parse("fake://").unwrap();
        assert_eq!((fake.driver, fake.alias_of()), (TransportDriver::Memory, Some("memory")));
        let pika = TransportUrl::parse("pika://u:p@h:5672/").unwrap();
        assert_eq!((pika.driver, pika.alias_of()), (TransportDriver::Rabbit, Some("rabbit")));
        assert_eq!(pika.to_string(), "pika://u:****@h:5672/");
        assert_eq!(TransportUrl::parse("rabbit://h/").unwrap().alias_of(), None);
        for (scheme, says) in [("amqp", "AMQP 1.0"), ("kafka", "notifications only"), ("zmq", "removed")] {
            let e = TransportUrl::parse(&format!("{scheme}://u:s3cret@h/")).unwrap_err().to_string();
            assert!(e.contains(&format!("the {scheme}:// driver is not supported: ")), "{e}");
            assert!(e.contains(says) && e.contains("use rabbit://") && e.contains("docs/rabbitmq.md"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn the_user_may_contain_an_at_sign_and_the_password_a_colon() {
        let u = TransportUrl::parse("rabbit://us@er:pa:ss@h").unwrap();
        assert_eq!(u.hosts[0].username.as_deref(), Some("us@er"));
        assert_eq!(u.hosts[0].password.as_deref(), Some("pa:ss"));
    }

    #[test]
    fn passwords_never_print() {
        let u = TransportUrl::parse("rabbit://guest:s3cret@h1:5672,admin:t0p@h2/?ssl=true").unwrap();
        for text in [u.to_string(), format!("{u:?}"), format!("{:?}", u.hosts)] {
            assert!(!text.contains("s3cret") && !text.contains("t0p"), "{text}");
        }
        assert_eq!(u.to_string(), "rabbit://guest:****@h1:5672,admin:****@h2/?ssl=true");
        let err = TransportUrl::parse("rabbit://guest:s3cret@h1:notaport/").unwrap_err().to_string();
        assert!(!err.contains("s3cret") && err.contains("notaport"), "{err}");
        assert!(TransportUrl::parse("amqp://guest:s3cret@h/").unwrap_err().to_string().contains("guest:****@h"));
    }

    /// Passwords with `/`, `?`, `,` in them, written unencoded, were split into the host list
    /// or the virtual host and printed (issue 17, item 4).
    #[test]
    fn passwords_with_separators_never_print() {
        for text in [
            "rabbit://guest:ab/secret@127.0.0.1/",
            "rabbit://guest:12/secret@127.0.0.1:5672/",
            "rabbit://u:se,cret@h/",
            "rabbit://u:se?cret@h/",
            "rabbit://u:,secret@h/",
        ] {
            let err = TransportUrl::parse(text).unwrap_err();
            for shown in [err.to_string(), format!("{err:?}"), redact(text)] {
                assert!(!shown.contains("secret") && !shown.contains("cret"), "{text} → {shown}");
            }
        }
        assert_eq!(redact("rabbit://guest:ab/secret@127.0.0.1/"), "rabbit://guest:****@127.0.0.1/");
        assert_eq!(redact("rabbit://u:p@h1,v:q@h2/vh?x=1"), "rabbit://u:****@h1,v:****@h2/vh?x=1");
        let u = TransportUrl::parse("rabbit://u:p%40ss%2Fw%2Cd%3F@h/").unwrap();
        assert_eq!(u.hosts[0].password.as_deref(), Some("p@ss/w,d?"), "percent-encoded, anything goes");
    }

    /// A password: letters no other part of the generated URLs (nor any message) uses, so
    /// that any piece of it showing up is caught, mixed with every separator a URL has.
    fn password() -> impl proptest::strategy::Strategy<Value = String> {
        "[QXZ]{1,3}[QXZ/?,@:%#\\[\\]=&+ .-]{0,10}"
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2000,
            // A failure prints its shrunk URL; no regression files in the source tree.
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Item 4's property: whatever the password, written raw or percent-encoded, on any
        /// host of a URL: no error, Display, Debug or redaction shows any character of it.
        #[test]
        fn no_password_ever_prints(
            hosts in proptest::collection::vec(("[a-z]{1,6}", password(), "[a-z]{1,6}", proptest::option::of(0u16..), proptest::bool::ANY), 1..4),
            vhost in proptest::option::of("[a-z/]{0,5}"),
            query in proptest::option::of("[a-z]{1,4}=[a-z0-9]{0,4}"),
        ) {
            // Unencoded, a password with both `,` and `@` is two hosts to any parser.
            proptest::prop_assume!(hosts.iter().all(|(_, pass, _, _, encoded)| *encoded || !(pass.contains(',') && pass.contains('@'))));
            let netloc: Vec<String> = hosts.iter().map(|(user, pass, host, port, encoded)| {
                let pass = if *encoded {
                    percent_encoding::utf8_percent_encode(pass, percent_encoding::NON_ALPHANUMERIC).to_string()
                } else {
                    pass.clone()
                };
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{user}:{pass}@{host}{port}")
            }).collect();
            let mut text = format!("rabbit://{}", netloc.join(","));
            if let Some(v) = &vhost { text.push('/'); text.push_str(v); }
            if let Some(q) = &query { text.push('?'); text.push_str(q); }
            let mut shown = vec![redact(&text)];
            match TransportUrl::parse(&text) {
                Ok(u) => shown.extend([u.to_string(), format!("{u:?}"), format!("{:?}", u.hosts)]),
                Err(e) => shown.extend([e.to_string(), format!("{e:?}")]),
            }
            for s in shown {
                proptest::prop_assert!(!s.contains(['Q', 'X', 'Z']), "{} → {}", text, s);
            }
        }
    }
}
