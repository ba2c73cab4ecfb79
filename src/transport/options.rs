//! gRPC connection options shared by the store transport and the PD client.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Errors of building a gRPC endpoint.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EndpointError {
    /// The address is not a valid URI.
    #[error("invalid address {addr}: {message}")]
    InvalidAddr {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// A TLS file could not be read or used.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// TLS files (PEM), re-read on every (re)connect so rotated certificates are picked up
/// (client-go `config.Security` + `grpc credentials`; rotation as TiKV's `SecurityManager`
/// reloads them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificate(s) that sign the server certificates.
    pub ca_path: Option<PathBuf>,
    /// Client certificate chain (mutual TLS), with `key_path`.
    pub cert_path: Option<PathBuf>,
    /// Client private key (mutual TLS), with `cert_path`.
    pub key_path: Option<PathBuf>,
    /// Server name to verify instead of the address's host.
    pub domain_name: Option<String>,
}

impl TlsConfig {
    /// Reads the files now and builds tonic's TLS configuration.
    pub fn load(&self) -> Result<ClientTlsConfig, EndpointError> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| EndpointError::Tls(format!("{}: {e}", p.display())))
        };
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &self.ca_path {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        } else {
            tls = tls.with_native_roots();
        }
        match (&self.cert_path, &self.key_path) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?))
            }
            (None, None) => {}
            _ => {
                return Err(EndpointError::Tls(
                    "cert_path and key_path must be given together".into(),
                ))
            }
        }
        if let Some(d) = &self.domain_name {
            tls = tls.domain_name(d.clone());
        }
        Ok(tls)
    }
}

/// Connection options (client-go `config.TiKVClient`: `GrpcConnectionCount`,
/// `GrpcKeepAliveTime`, `GrpcKeepAliveTimeout`, `MaxSendMsgSize`/`MaxRecvMsgSize`, dial
/// timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcOptions {
    /// Channels per store address, used round-robin (client-go `GrpcConnectionCount`, 4).
    pub connection_count: usize,
    /// Dial timeout (client-go `dialTimeout`, 5 s).
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive ping interval (client-go `GrpcKeepAliveTime`, 10 s).
    pub keepalive_time: Duration,
    /// Keep-alive ack timeout (client-go `GrpcKeepAliveTimeout`, 3 s).
    pub keepalive_timeout: Duration,
    /// Largest message sent (client-go `MaxSendMsgSize`, effectively unbounded).
    pub max_send_message_size: usize,
    /// Largest message received (client-go `MaxRecvMsgSize`, effectively unbounded).
    pub max_recv_message_size: usize,
    /// TLS; plain-text HTTP/2 when `None`.
    pub tls: Option<TlsConfig>,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            connection_count: 4,
            connect_timeout: Duration::from_secs(5),
            keepalive_time: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(3),
            max_send_message_size: i32::MAX as usize,
            max_recv_message_size: i32::MAX as usize,
            tls: None,
        }
    }
}

impl GrpcOptions {
    /// The URI for `addr`: `http://` or `https://` is prepended when no scheme is given
    /// (TiKV registers store addresses without a scheme).
    pub fn uri_for(&self, addr: &str) -> String {
        if addr.contains("://") {
            addr.to_string()
        } else if self.tls.is_some() {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        }
    }

    /// A configured endpoint for `addr`; TLS files are read now.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, EndpointError> {
        let uri = self.uri_for(addr);
        let mut ep = Endpoint::from_shared(uri.clone())
            .map_err(|e| EndpointError::InvalidAddr {
                addr: addr.to_string(),
                message: e.to_string(),
            })?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_time)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            ep = ep
                .tls_config(tls.load()?)
                .map_err(|e| EndpointError::InvalidAddr {
                    addr: addr.to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(ep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_scheme_is_added_once() {
        let plain = GrpcOptions::default();
        assert_eq!(plain.uri_for("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(plain.uri_for("http://h:1"), "http://h:1");
        let tls = GrpcOptions {
            tls: Some(TlsConfig::default()),
            ..GrpcOptions::default()
        };
        assert_eq!(tls.uri_for("h:1"), "https://h:1");
    }

    #[test]
    fn tls_half_identity_is_rejected() {
        let t = TlsConfig {
            cert_path: Some("/nonexistent".into()),
            ..TlsConfig::default()
        };
        assert!(t.load().is_err());
        let missing = TlsConfig {
            ca_path: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        assert!(matches!(missing.load(), Err(EndpointError::Tls(_))));
    }
}
