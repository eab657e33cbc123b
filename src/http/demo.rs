//! How many demo-mode customers one client may start. In demo mode a browser without a
//! session cookie becomes a new customer, so per-customer limits alone would not stop one
//! client from holding the whole stock: each client address (an IPv6 client by its /64, the
//! block one subscriber gets) may start `demo_sessions_per_ip_hour` sessions in any hour.
//!
//! The address is the TCP peer; only when the peer is this host (a reverse proxy in front)
//! is the last `X-Forwarded-For` entry taken — the one that proxy added, never an entry a
//! client could write itself.

use crate::domain::Millis;
use axum::http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

const HOUR: Millis = 3_600_000;
/// Clients remembered at most; past it, those with no session in the last hour are dropped.
const MAX_CLIENTS: usize = 100_000;

/// The address a request comes from (see the module docs).
pub fn client_addr(peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !peer.is_loopback() {
        return Some(peer);
    }
    // The proxy appends the address it saw: the last entry of the last header.
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|a| a.trim().parse::<IpAddr>().ok());
    Some(forwarded.unwrap_or(peer))
}

/// The unit one limit applies to: an IPv4 address, or an IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// New sessions per client in a sliding hour.
pub struct SessionLimiter {
    per_hour: u32,
    seen: Mutex<HashMap<IpAddr, VecDeque<Millis>>>,
}

impl SessionLimiter {
    /// `per_hour` = 0: no limit.
    pub fn new(per_hour: u32) -> SessionLimiter {
        SessionLimiter { per_hour, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts a new session of `client` at `now`; false when it already started its hour's
    /// share (nothing is counted then). An unknown address shares one allowance.
    pub fn allow(&self, client: Option<IpAddr>, now: Millis) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        let key = client.map(client_key).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let Ok(mut seen) = self.seen.lock() else { return true };
        if seen.len() >= MAX_CLIENTS && !seen.contains_key(&key) {
            seen.retain(|_, times| times.back().is_some_and(|t| now - t < HOUR));
        }
        let times = seen.entry(key).or_default();
        while times.front().is_some_and(|t| now - t >= HOUR) {
            times.pop_front();
        }
        if times.len() >= self.per_hour as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_starts_its_share_of_sessions_per_hour() {
        let l = SessionLimiter::new(2);
        let a: IpAddr = "203.0.113.5".parse().unwrap();
        let b: IpAddr = "203.0.113.6".parse().unwrap();
        assert!(l.allow(Some(a), 0) && l.allow(Some(a), 1));
        assert!(!l.allow(Some(a), 2), "a's share is used");
        assert!(l.allow(Some(b), 2), "another client has its own");
        assert!(l.allow(Some(a), HOUR), "the first session left the window");
        assert!(!l.allow(Some(a), HOUR), "the second is still in it");
        // One IPv6 subscriber (/64) is one client.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(l.allow(v6("2001:db8:1:2::1"), 0) && l.allow(v6("2001:db8:1:2::ffff"), 0));
        assert!(!l.allow(v6("2001:db8:1:2:abcd::9"), 0));
        assert!(l.allow(v6("2001:db8:1:3::1"), 0));
        assert!(SessionLimiter::new(0).allow(Some(a), 0));
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_local_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.1, 203.0.113.9".parse().unwrap());
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        assert_eq!(client_addr(Some(local), &h), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(
            client_addr(Some(remote), &h),
            Some("192.0.2.7".parse().unwrap()),
            "a client's own header is ignored"
        );
        assert_eq!(client_addr(Some(local), &HeaderMap::new()), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(client_addr(None, &h), None);
    }
}
