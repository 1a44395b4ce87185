//! Connections per peer address, like xinetd's `per_source`: one
//! misbehaving PBX (or anything on its address) must not hold every
//! `--max-connections` slot and lock the others out.
//!
//! Counted per IP address in canonical form, so an IPv4 peer reaching an
//! IPv6 listener (`::ffff:10.0.0.1`) is the same peer as over IPv4. The
//! port does not matter: every new connection has a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open connections per address, under a limit.
#[derive(Debug)]
pub struct Peers {
    /// Most connections per address; `None`: no limit.
    limit: Option<usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
#[derive(Debug)]
pub struct Claim {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A counter allowing `limit` connections per address (`None`: any).
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Peers {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Count one more connection from `ip`, or `Err(open)` with the
    /// number it already has when that is the limit.
    pub fn claim(self: &Arc<Self>, ip: IpAddr) -> Result<Claim, usize> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if self.limit.is_some_and(|limit| *count >= limit) {
            return Err(*count);
        }
        *count += 1;
        Ok(Claim {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                // Forget addresses without connections: a scan of many
                // addresses must not grow the map for good.
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_per_canonical_address_and_freed_on_drop() {
        let peers = Peers::new(Some(2));
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let first = peers.claim(v4).unwrap();
        let _second = peers.claim(mapped).unwrap();
        assert_eq!(peers.claim(v4).unwrap_err(), 2);
        assert!(peers.claim("10.0.0.2".parse().unwrap()).is_ok());
        drop(first);
        assert!(peers.claim(mapped).is_ok());
    }

    #[test]
    fn no_limit_counts_but_never_refuses_and_forgets_idle_addresses() {
        let peers = Peers::new(None);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let claims: Vec<_> = (0..100).map(|_| peers.claim(ip).unwrap()).collect();
        drop(claims);
        assert!(peers.open.lock().unwrap().is_empty());
    }
}
