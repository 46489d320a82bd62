//! Serving the router over TCP, one hyper connection per task, so a fault can drop a
//! connection without answering.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Put into every request's extensions; `kill` closes the request's connection at once,
/// without writing a response.
#[derive(Clone)]
pub(crate) struct ConnectionKiller(Arc<Notify>);

impl ConnectionKiller {
    pub fn kill(&self) {
        self.0.notify_one();
    }
}

/// A running emulator server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// The emulator served, whose deliveries stop with the server.
    pub(crate) emulator: Option<crate::Emulator>,
}

impl Server {
    /// The base URL, e.g. `http://127.0.0.1:8787`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes every open connection and stops every delivery schedule.
    pub async fn shutdown(self) {
        if let Some(emulator) = &self.emulator {
            emulator.stop_deliveries();
        }
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves `router` on the current tokio runtime.
pub(crate) async fn serve(router: Router, addr: &str) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    connections.spawn(serve_connection(router.clone(), stream));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    Ok(Server {
        addr,
        stop,
        task,
        emulator: None,
    })
}

async fn serve_connection(router: Router, stream: tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let killer = ConnectionKiller(Arc::new(Notify::new()));
    let per_request = killer.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(per_request.clone());
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future closes the socket with no response written.
        _ = killer.0.notified() => {}
    }
}
