//! The connection a request came on: the client's address (login limits are per address)
//! and its socket, so a WebSocket can cap its kernel send buffer before it is upgraded.
//!
//! Serve the router with `into_make_service_with_connect_info::<Peer>()`; without it
//! (tests that serve it plainly) requests have no [`Peer`] and these limits fall back to
//! defaults.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

/// The client's address and the server side of its TCP socket.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Valid while the connection is: a request is served inside it.
    fd: RawFd,
}

/// Taken as each connection is accepted; it also turns Nagle off on it (a frame written
/// while an earlier one is unacknowledged goes out at once instead of waiting for the
/// peer's possibly delayed ACK).
impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        if let Err(e) = stream.io().set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        Self {
            addr: *stream.remote_addr(),
            fd: stream.io().as_raw_fd(),
        }
    }
}

impl Peer {
    /// Caps what the kernel buffers for this socket's unsent data at `bytes` (Linux
    /// doubles it for its bookkeeping). Without a cap a client that reads nothing lets the
    /// kernel buffer up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default) for it.
    pub fn cap_send_buffer(&self, bytes: usize) {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
            .unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `fd` is the socket of the connection this request is being served on,
        // which stays open at least until the request's response (here: the upgrade) is
        // sent; `value` lives across the call and `len` is its size.
        #[allow(unsafe_code, reason = "setsockopt has no safe wrapper in std")]
        let rc = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                std::ptr::addr_of!(value).cast(),
                len,
            )
        };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "send buffer not capped"
            );
        }
    }
}

/// The client's address, when the server runs with connection info.
pub fn client_ip(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|c| c.0.addr.ip())
        .or_else(|| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
}
