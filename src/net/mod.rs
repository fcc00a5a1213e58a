//! The network layer: name lookup, TCP connect, TLS (client and server side), a small HTTP
//! client, and the PROXY protocol header a proxy in front of the listeners sends. It knows
//! targets (host, port, TLS mode, trust), never accounts or credentials, and imports nothing
//! above it.

pub mod connect;
pub mod dns;
pub mod http;
pub mod probe;
pub mod proxy_header;
pub mod target;
pub mod tls;

pub use connect::{ConnectError, UpstreamStream};
pub use target::{host_port, Target, TlsMode};
