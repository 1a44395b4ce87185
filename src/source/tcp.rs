//! TCP server for CDR push: many listeners, many connections, one task per
//! connection. The accept loop never exits on errors (EMFILE, ECONNABORTED
//! are transient): it logs, backs off and keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::route::Router;

/// Bind every address; logs the bound address (port 0 picks a free one).
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        info!("listening on {}", listener.local_addr()?);
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serve until `stop`; then wait for every connection to finish routing
/// what it read.
pub async fn serve(
    listeners: Vec<TcpListener>,
    router: &Router,
    max_line: usize,
    stop: &CancellationToken,
) {
    let connections = TaskTracker::new();
    let accept_loops = TaskTracker::new();
    for listener in listeners {
        accept_loops.spawn(accept_loop(
            listener,
            router.clone(),
            max_line,
            stop.clone(),
            connections.clone(),
        ));
    }
    accept_loops.close();
    accept_loops.wait().await;
    connections.close();
    connections.wait().await;
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    max_line: usize,
    stop: CancellationToken,
    connections: TaskTracker,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                backoff = Duration::from_millis(10);
                info!("{peer}: connected");
                let mut router = router.for_source(peer.to_string());
                let stop = stop.clone();
                connections.spawn(async move {
                    match super::stream::ship(socket, &mut router, max_line, &stop).await {
                        Ok(()) => info!("{peer}: closed"),
                        Err(e) => warn!("{peer}: connection error: {e}"),
                    }
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
