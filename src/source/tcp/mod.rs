//! TCP server for CDR push: many listeners, many connections, one task per
//! connection. The accept loop never exits on errors (EMFILE, ECONNABORTED
//! are transient): it logs, backs off and keeps serving.
//!
//! Peers outside `--allow` are closed at once (like xinetd `only_from`),
//! and so is a peer's connection beyond `--max-connections-per-peer` (like
//! `per_source`). At `--max-connections` the loop stops accepting, so
//! further peers wait in the kernel's listen backlog until one closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::peers::{Claim, Peers};
use self::refused::Reason;
pub use self::refused::Refused;
use super::stream::End;
use crate::route::Router;
use crate::spool::Spool;

mod peers;
mod refused;

/// How the server treats peers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Allowed peer networks; empty allows everyone.
    pub allow: Vec<IpNet>,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Most connections from one address; `None`: no limit.
    pub max_connections_per_peer: Option<usize>,
    /// Close a connection silent for this long.
    pub idle_timeout: Option<Duration>,
    /// Close new connections at once while the spool is full.
    pub refuse_when_full: bool,
}

/// PBXs keep links open for days; keepalive notices a peer that vanished
/// (a minute of silence, then probes every 10 s).
pub fn keepalive(socket: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10));
    socket2::SockRef::from(socket).set_tcp_keepalive(&keepalive)
}

/// Pending connections the kernel may hold for us (capped by
/// `net.core.somaxconn`). A burst of PBXs reconnecting after a network
/// blip must not overflow it; tokio's default is 128.
const BACKLOG: i32 = 4096;

/// Bind every address; logs the bound address (port 0 picks a free one).
pub fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|addr| {
            let listener = listen(*addr).with_context(|| format!("listening on {addr}"))?;
            info!("listening on {}", listener.local_addr()?);
            Ok(listener)
        })
        .collect()
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Serve until `stop`; then wait for every connection to finish routing
/// what it read. Refusals are counted in `refused`.
pub async fn serve(
    listeners: Vec<TcpListener>,
    router: &Router,
    max_line: usize,
    options: &ServeOptions,
    spool: Option<Arc<Spool>>,
    refused: Arc<Refused>,
    stop: &CancellationToken,
) {
    let server = Arc::new(Server {
        options: options.clone(),
        max_line,
        spool: spool.filter(|_| options.refuse_when_full),
        slots: Arc::new(Semaphore::new(options.max_connections.max(1))),
        peers: Peers::new(options.max_connections_per_peer),
        refused,
        connections: TaskTracker::new(),
    });
    let accept_loops = TaskTracker::new();
    accept_loops.spawn(server.refused.clone().summarise(stop.clone()));
    for listener in listeners {
        accept_loops.spawn(
            server
                .clone()
                .accept_loop(listener, router.clone(), stop.clone()),
        );
    }
    accept_loops.close();
    accept_loops.wait().await;
    server.connections.close();
    server.connections.wait().await;
    if let Some(total) = server.refused.total() {
        info!("{total}");
    }
}

/// State shared by the accept loops.
struct Server {
    options: ServeOptions,
    max_line: usize,
    /// The spool, when new peers are refused while it is full.
    spool: Option<Arc<Spool>>,
    /// One permit per connection being served.
    slots: Arc<Semaphore>,
    /// Connections per peer address.
    peers: Arc<Peers>,
    /// Refusals, also read by the metrics endpoint.
    refused: Arc<Refused>,
    connections: TaskTracker,
}

impl Server {
    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        router: Router,
        stop: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let slot = tokio::select! {
                () = stop.cancelled() => return,
                slot = self.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    backoff = Duration::from_millis(10);
                    if !self.allowed(&peer) {
                        if self.refused.record(Reason::Allow) {
                            warn!("{peer}: refused, not in --allow");
                        }
                        continue;
                    }
                    if self.spool.as_ref().is_some_and(|s| s.is_full()) {
                        if self.refused.record(Reason::SpoolFull) {
                            warn!("{peer}: refused, the spool is full (--when-full reject)");
                        }
                        continue;
                    }
                    let claim = match self.peers.claim(peer.ip()) {
                        Ok(claim) => claim,
                        Err(open) => {
                            if self.refused.record(Reason::PerPeer) {
                                let ip = peer.ip().to_canonical();
                                warn!("{peer}: refused, {open} connections from {ip} already (--max-connections-per-peer)");
                            }
                            continue;
                        }
                    };
                    let local = socket
                        .local_addr()
                        .map_or_else(|_| "?".into(), |a| a.to_string());
                    info!("{peer}: connected to {local}");
                    let router = router.for_source(format!("{peer} -> {local}"));
                    let (server, stop) = (self.clone(), stop.clone());
                    self.connections.spawn(async move {
                        server
                            .connection(socket, peer, router, (slot, claim), &stop)
                            .await;
                    });
                }
                Err(e) => {
                    warn!("accept failed: {e}; retrying in {backoff:?}");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    fn allowed(&self, peer: &SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        self.options.allow.is_empty() || self.options.allow.iter().any(|net| net.contains(&ip))
    }

    async fn connection(
        &self,
        socket: TcpStream,
        peer: SocketAddr,
        mut router: Router,
        held: (OwnedSemaphorePermit, Claim),
        stop: &CancellationToken,
    ) {
        if let Err(e) = keepalive(&socket) {
            warn!("{peer}: cannot enable TCP keepalive: {e}");
        }
        let idle = self.options.idle_timeout;
        let chunk = crate::framing::SOCKET_CHUNK;
        let end = super::stream::ship(socket, &mut router, self.max_line, stop, idle, chunk).await;
        // Free the slots before saying so: a peer told "closed" may
        // reconnect at once.
        drop(held);
        match end {
            Ok(End::Closed) => info!("{peer}: closed"),
            Ok(End::Idle) => info!("{peer}: closed after --idle-timeout without data"),
            Err(e) => warn!("{peer}: connection error: {e}"),
        }
    }
}
