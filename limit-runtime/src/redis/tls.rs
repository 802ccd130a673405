//! `rediss://` servers, with the `redis-tls` feature: the certificates a
//! [`FleetBuilder`] trusts and presents, and the redis-rs client built from them.
//!
//! redis-rs speaks TLS through rustls, and checks the server's certificate and name against
//! the system's root certificates, or against the ones given here instead. Everything given
//! is checked when the fleet is built, before it connects: a PEM that holds no certificate
//! (a file's name passed instead of its contents, say) would otherwise leave nothing to
//! trust, and every server would be refused with an error that does not say why.

use std::fmt;
use std::sync::Arc;

use ::redis::{Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, TlsCertificates};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::{FleetBuilder, FleetError, driver};

/// The TLS settings of a [`FleetBuilder`]: none by default, which trusts the system's root
/// certificates and presents no certificate of its own.
#[derive(Clone, Default)]
pub(super) struct Tls {
    /// The PEM of each [`FleetBuilder::tls_root_certificate`], in order. Empty: the system's
    /// roots.
    roots: Vec<Vec<u8>>,
    /// From [`FleetBuilder::tls_client_identity`].
    identity: Option<Identity>,
}

#[derive(Clone)]
struct Identity {
    certificates: Vec<u8>,
    key: Vec<u8>,
}

impl Tls {
    fn is_set(&self) -> bool {
        !self.roots.is_empty() || self.identity.is_some()
    }

    /// What redis-rs builds its rustls configuration from, checked as rustls would check it
    /// at connect, so that a mistake is an `InvalidConfig` from `build` rather than a failed
    /// handshake (an `Unreachable` that looks like a network problem).
    fn certificates(&self, provider: &Arc<CryptoProvider>) -> Result<TlsCertificates, String> {
        let mut store = RootCertStore::empty();
        for (index, pem) in self.roots.iter().enumerate() {
            let nth = index + 1;
            let certificates = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("TLS root certificate #{nth} is not PEM: {error}"))?;
            if certificates.is_empty() {
                return Err(format!(
                    "TLS root certificate #{nth} holds no PEM certificate (`-----BEGIN \
                     CERTIFICATE-----`): pass the file's contents, not its name"
                ));
            }
            for certificate in certificates {
                store.add(certificate).map_err(|error| {
                    format!("TLS root certificate #{nth} cannot be trusted: {error}")
                })?;
            }
        }
        let client_tls = match &self.identity {
            None => None,
            Some(identity) => {
                check_identity(identity, provider)?;
                Some(ClientTlsConfig {
                    client_cert: identity.certificates.clone(),
                    client_key: identity.key.clone(),
                })
            }
        };
        // One string of PEM, as redis-rs takes it: the certificates of every call, each
        // from a line of its own (a PEM whose last line has no newline would otherwise run
        // into the next one's first).
        let root_cert = (!self.roots.is_empty()).then(|| self.roots.join(&b'\n'));
        Ok(TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

/// Checks that a client identity is a chain of PEM certificates and the PEM private key of
/// the first, as rustls does when it connects. The messages never quote the key.
fn check_identity(identity: &Identity, provider: &Arc<CryptoProvider>) -> Result<(), String> {
    let chain = CertificateDer::pem_slice_iter(&identity.certificates)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("the TLS client certificate is not PEM: {error}"))?;
    if chain.is_empty() {
        return Err(
            "the TLS client certificate holds no PEM certificate (`-----BEGIN \
                    CERTIFICATE-----`): pass the file's contents, not its name"
                .to_owned(),
        );
    }
    // Not the parser's error: it may quote a line of the key.
    let key = PrivateKeyDer::from_pem_slice(&identity.key).map_err(|_| {
        "the TLS client key is not a PEM private key (PKCS #8, PKCS #1 or SEC1): pass the \
         file's contents, not its name"
            .to_owned()
    })?;
    ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map_err(|error| format!("the TLS client identity cannot be used: {error}"))?;
    Ok(())
}

impl fmt::Debug for Tls {
    /// Says what is set, never what: a builder's `Debug` ends up in logs, and the client
    /// identity holds a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = if self.roots.is_empty() {
            format_args!("system")
        } else {
            format_args!("given")
        };
        let identity = if self.identity.is_some() {
            format_args!("set")
        } else {
            format_args!("none")
        };
        f.debug_struct("Tls")
            .field("root_certificates", &roots)
            .field("client_identity", &identity)
            .finish()
    }
}

/// The client for a server's URL: `rediss://` (or `valkeys://`) with the TLS settings, or
/// `redis://` without any.
pub(super) fn open(url: &str, tls: &Tls) -> Result<Client, FleetError> {
    let invalid_url = |source: Box<dyn std::error::Error + Send + Sync>| FleetError::InvalidUrl {
        url: driver::redacted(url),
        source,
    };
    let info = url
        .into_connection_info()
        .map_err(|error| invalid_url(error.into()))?;
    let ConnectionAddr::TcpTls { insecure, .. } = info.addr() else {
        // Settings for TLS on a URL without it would send the password in the clear to a
        // server the settings were meant to authenticate.
        if tls.is_set() {
            return Err(FleetError::InvalidConfig {
                reason: format!(
                    "TLS certificates were given for {:?}, which is not a TLS URL: use \
                     `rediss://`",
                    driver::redacted(url)
                ),
            });
        }
        return Client::open(info).map_err(|error| invalid_url(error.into()));
    };
    // redis-rs turns the server's certificate check off for a `#insecure` URL when some
    // crate of the build enables its `tls-rustls-insecure` feature. Refused whatever the
    // build, so that which server a fleet trusts does not depend on other crates.
    if *insecure {
        return Err(invalid_url(
            "`#insecure` (no check of the server's certificate) is not supported: trust the \
             server's certificate authority with `FleetBuilder::tls_root_certificate`"
                .into(),
        ));
    }
    let provider = crypto_provider();
    if !tls.is_set() {
        return Client::open(info).map_err(|error| invalid_url(error.into()));
    }
    let certificates = tls
        .certificates(&provider)
        .map_err(|reason| FleetError::InvalidConfig { reason })?;
    Client::build_with_tls(info, certificates).map_err(|error| FleetError::InvalidConfig {
        reason: format!("TLS: {error}"),
    })
}

/// The process's default rustls `CryptoProvider`, which redis-rs's rustls configuration
/// uses, after installing ring's when the process has none.
///
/// rustls installs one by itself only when exactly one of its backends is compiled in:
/// with both (another crate of the build enabling aws-lc-rs, rustls's default), it panics
/// at connect, on the fleet's thread. Installing ring's here, when there is none, is what
/// rustls would do with ring alone, and an application that installs its own before it
/// builds a fleet keeps it.
fn crypto_provider() -> Arc<CryptoProvider> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Arc::clone(provider);
    }
    // An `Err` is another thread's install winning the race: theirs is the default then.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default().map_or_else(
        || Arc::new(rustls::crypto::ring::default_provider()),
        Arc::clone,
    )
}

#[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
impl FleetBuilder {
    /// Trusts the certificate authorities in `pem` (one certificate or several, in PEM) to
    /// sign a `rediss://` server's certificate, *instead of* the system's root
    /// certificates: for a server whose certificate a private or self-signed authority
    /// issued. Each call adds to the ones trusted.
    ///
    /// Without it, the system's root certificates are trusted, which is right for a managed
    /// server whose certificate a public authority signed. Either way the server's
    /// certificate must name the URL's host. A plain `redis://` URL with this setting is
    /// refused, rather than connected to without TLS.
    ///
    /// ```no_run
    /// use limit_runtime::redis::Fleet;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/redis/tls/ca.crt")?;
    /// let fleet = Fleet::builder("rediss://:password@redis.internal:6380/")
    ///     .tls_root_certificate(ca)
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// What is given is checked by [`build`](Self::build), before it connects: a file's
    /// name instead of its contents, say, is a [`FleetError::InvalidConfig`].
    ///
    /// ```
    /// use limit_runtime::redis::{Fleet, FleetError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let error = Fleet::builder("rediss://127.0.0.1:6380/")
    ///     .tls_root_certificate("/etc/redis/tls/ca.crt")
    ///     .build()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(error, FleetError::InvalidConfig { .. }));
    /// assert!(error.to_string().contains("not its name"));
    /// # }
    /// ```
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.roots.push(pem.into());
        self
    }

    /// Presents this certificate (in PEM, the client's own first, then any intermediate
    /// authorities) and its private key (in PEM: PKCS #8, PKCS #1 or SEC1) to a `rediss://`
    /// server that asks for one: mutual TLS, Redis's `tls-auth-clients yes`. A later call
    /// replaces it.
    ///
    /// The key is kept in memory by the builder and the fleet, and never shown: the
    /// builder's `Debug` says only whether one is set.
    ///
    /// ```no_run
    /// use limit_runtime::redis::Fleet;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fleet = Fleet::builder("rediss://redis.internal:6380/")
    ///     .tls_root_certificate(std::fs::read("/etc/redis/tls/ca.crt")?)
    ///     .tls_client_identity(
    ///         std::fs::read("/etc/redis/tls/client.crt")?,
    ///         std::fs::read("/etc/redis/tls/client.key")?,
    ///     )
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A certificate and key that do not go together, or that are not PEM, are a
    /// [`FleetError::InvalidConfig`] from [`build`](Self::build), before it connects; its
    /// message never quotes the key.
    ///
    /// ```
    /// use limit_runtime::redis::{Fleet, FleetError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let builder = Fleet::builder("rediss://127.0.0.1:6380/")
    ///     .tls_client_identity("client.crt", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n…");
    /// assert!(!format!("{builder:?}").contains("c2VjcmV0"));
    /// let error = builder.build().await.unwrap_err();
    /// assert!(matches!(error, FleetError::InvalidConfig { .. }));
    /// assert!(!error.to_string().contains("c2VjcmV0"));
    /// # }
    /// ```
    pub fn tls_client_identity(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity = Some(Identity {
            certificates: certificate_pem.into(),
            key: key_pem.into(),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
    const NOT_A_CERTIFICATE: &str =
        "-----BEGIN CERTIFICATE-----\nbm90LWEtY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

    fn reason(result: Result<Client, FleetError>) -> String {
        match result {
            Err(FleetError::InvalidConfig { reason }) => reason,
            Err(other) => panic!("expected InvalidConfig, got {other:?}"),
            Ok(client) => panic!("expected InvalidConfig, got {client:?}"),
        }
    }

    #[test]
    fn debug_says_what_is_set_never_what() {
        let tls = Tls::default();
        assert_eq!(
            format!("{tls:?}"),
            "Tls { root_certificates: system, client_identity: none }"
        );
        let tls = Tls {
            roots: vec![NOT_A_CERTIFICATE.into()],
            identity: Some(Identity {
                certificates: NOT_A_CERTIFICATE.into(),
                key: KEY.into(),
            }),
        };
        let debug = format!("{tls:?} {tls:#?}");
        assert!(
            debug.contains("Tls { root_certificates: given, client_identity: set }"),
            "{debug}"
        );
        for secret in ["c2VjcmV0", "bm90LWEt", "BEGIN"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn tls_settings_on_a_plain_url_are_refused() {
        let tls = Tls {
            roots: vec![NOT_A_CERTIFICATE.into()],
            identity: None,
        };
        let reason = reason(open("redis://:secret@127.0.0.1:6379/", &tls));
        assert!(reason.contains("use `rediss://`"), "{reason}");
        assert!(reason.contains("redis://***@127.0.0.1:6379/"), "{reason}");
        assert!(!reason.contains("secret"), "{reason}");
        // Without TLS settings, a plain URL is a plain client.
        assert!(open("redis://127.0.0.1:6379/", &Tls::default()).is_ok());
    }

    #[test]
    fn an_insecure_url_is_refused() {
        let error = open("rediss://:secret@127.0.0.1:6380/#insecure", &Tls::default()).unwrap_err();
        assert!(matches!(error, FleetError::InvalidUrl { .. }), "{error:?}");
        let message = format!("{error} {error:?}");
        assert!(message.contains("`#insecure`"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_name_instead_of_a_pem_is_refused() {
        let tls = Tls {
            roots: vec![b"/etc/redis/ca.crt".to_vec()],
            identity: None,
        };
        let reason = reason(open("rediss://127.0.0.1:6380/", &tls));
        assert!(reason.contains("#1 holds no PEM certificate"), "{reason}");
        assert!(reason.contains("not its name"), "{reason}");
    }

    #[test]
    fn a_pem_that_is_not_a_certificate_is_refused() {
        let tls = Tls {
            roots: vec![NOT_A_CERTIFICATE.into()],
            identity: None,
        };
        let reason = reason(open("rediss://127.0.0.1:6380/", &tls));
        assert!(reason.contains("#1 cannot be trusted"), "{reason}");
    }

    #[test]
    fn a_bad_key_is_refused_without_quoting_it() {
        for key in [KEY, "client.key", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0"] {
            let tls = Tls {
                roots: Vec::new(),
                identity: Some(Identity {
                    certificates: NOT_A_CERTIFICATE.into(),
                    key: key.into(),
                }),
            };
            let reason = reason(open("rediss://127.0.0.1:6380/", &tls));
            assert!(reason.contains("client"), "{reason}");
            assert!(!reason.contains("c2VjcmV0"), "{reason}");
        }
    }

    #[test]
    fn a_provider_is_installed_once_there_is_none() {
        let provider = crypto_provider();
        let default = CryptoProvider::get_default().expect("installed");
        assert!(Arc::ptr_eq(&provider, default));
        assert!(Arc::ptr_eq(&crypto_provider(), default));
    }
}
