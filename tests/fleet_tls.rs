#![cfg(feature = "redis")]
//! The fleet over TLS (`--features redis-tls`), against a real `redis-server` that speaks
//! only TLS (`--port 0 --tls-port`), with certificate authorities and certificates made by
//! rcgen for each test: a fleet trusts the server given its authority, and only then; one
//! limit holds across fleets over TLS, and after the server restarts; mutual TLS works with
//! the client's certificate and is refused without it; and no message shows a password or a
//! key. Without the feature (`--features redis`), a `rediss://` URL is refused with a
//! message that names it.

#[cfg(feature = "redis-tls")]
mod with_tls {
    use std::sync::Arc;
    use std::time::Duration;

    use limit_runtime::redis::{Fleet, FleetBuilder, FleetError};
    use limit_runtime::{LimitError, Limiter};
    use limit_suite::redis_server::{RedisServer, TlsFiles};
    use limit_suite::{HANG, every_text_of};
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use tokio::time::{sleep, timeout};

    /// A password that no message may show.
    const SECRET: &str = "hunter2-tls-secret";

    /// A certificate authority of the test's own.
    struct Authority {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    impl Authority {
        fn new(name: &str) -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate().expect("a key");
            let certificate = params.self_signed(&key).expect("a CA certificate");
            Authority {
                pem: certificate.pem(),
                issuer: Issuer::new(params, key),
            }
        }

        /// A certificate for `name` (and its key), in PEM, signed by this authority.
        fn sign(&self, name: &str, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("a name");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![purpose];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().expect("a key");
            let certificate = params.signed_by(&key, &self.issuer).expect("a certificate");
            (certificate.pem(), key.serialize_pem())
        }

        /// A server's files: its certificate for `127.0.0.1`, signed by this authority.
        fn server(&self) -> TlsFiles {
            let (certificate, key) = self.sign("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
            TlsFiles {
                ca: self.pem.clone(),
                certificate,
                key,
                client_identity: None,
            }
        }

        /// A client's certificate and key, signed by this authority.
        fn client(&self) -> (String, String) {
            self.sign("fleet-client", ExtendedKeyUsagePurpose::ClientAuth)
        }
    }

    fn named(name: &str, limit: usize) -> Arc<Limiter> {
        Arc::new(Limiter::new(limit).with_owned_name(name))
    }

    fn int(reply: &str) -> i64 {
        reply.trim().parse().unwrap_or(0)
    }

    /// Reads the server through the fixture, which speaks TLS to it (and authenticates with
    /// `password`, as the fixture's `command` does not).
    fn held_in_redis(server: &RedisServer, name: &str) -> i64 {
        int(&server.command(&["HGET", &format!("limit-runtime:{{{name}}}:meta"), "held"]))
    }

    fn queued_in_redis(server: &RedisServer, name: &str) -> i64 {
        int(&server.command(&["ZCARD", &format!("limit-runtime:{{{name}}}:queue")]))
    }

    /// `build` fails with `FleetError::Unreachable` because the handshake failed, for the
    /// reason that one of its texts names (rustls's name for it), and no text shows `secret`.
    #[track_caller]
    fn refused_by_tls(result: Result<Fleet, FleetError>, because: &str, secret: &str) {
        let error = result.expect_err("the fleet connected, but TLS must refuse it");
        assert!(matches!(error, FleetError::Unreachable { .. }), "{error:?}");
        let texts = every_text_of(&error);
        for text in &texts {
            assert!(
                !text.contains(secret),
                "a FleetError shows a secret: {text}"
            );
        }
        assert!(
            texts.iter().any(|text| text.contains(because)),
            "the error does not say {because:?}: {texts:#?}"
        );
    }

    /// The lines of a PEM's body (its base64), none of which any `Debug` may show.
    fn body_lines(pem: &str) -> Vec<&str> {
        pem.lines()
            .filter(|line| !line.is_empty() && !line.starts_with("-----"))
            .collect()
    }

    /// Both ways to build: the builder's `Debug` must never show `pem`'s body.
    #[track_caller]
    fn assert_debug_hides(builder: &FleetBuilder, pem: &str) {
        for shown in [format!("{builder:?}"), format!("{builder:#?}")] {
            for line in body_lines(pem) {
                assert!(
                    !shown.contains(line),
                    "the builder's Debug shows {line:?}: {shown}"
                );
            }
            assert!(!shown.contains("-----BEGIN"), "{shown}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_limit_holds_across_fleets_over_tls() {
        let ca = Authority::new("limit-suite test CA");
        let server = RedisServer::start_tls(&ca.server());
        assert!(server.url().starts_with("rediss://"), "{}", server.url());
        assert_eq!(server.command(&["PING"]), "PONG");
        let a = Fleet::builder(&server.url())
            .tls_root_certificate(ca.pem.as_str())
            .build()
            .await
            .expect("connect over TLS with the server's CA");
        // Each call adds to the authorities trusted: an unrelated one first changes nothing.
        let b = Fleet::builder(&server.url())
            .tls_root_certificate(Authority::new("unrelated CA").pem)
            .tls_root_certificate(ca.pem.as_bytes())
            .build()
            .await
            .expect("connect over TLS with the server's CA among others");
        let (on_a, on_b) = (named("tls-shared", 2), named("tls-shared", 2));
        a.share_arc(&on_a).await.expect("share on a");
        b.share_arc(&on_b).await.expect("share on b");

        let first = on_a.acquire().await;
        let second = on_b.acquire().await;
        assert_eq!(held_in_redis(&server, "tls-shared"), 2);
        // The third call waits in Redis's line, whichever process makes it…
        let third = {
            let on_a = Arc::clone(&on_a);
            tokio::spawn(async move { on_a.acquire().await.permits() })
        };
        let deadline = tokio::time::Instant::now() + HANG;
        while queued_in_redis(&server, "tls-shared") < 1 {
            assert!(
                !third.is_finished(),
                "the third call ran: {:?}",
                third.await
            );
            assert!(tokio::time::Instant::now() < deadline, "never queued");
            sleep(Duration::from_millis(5)).await;
        }
        assert!(!third.is_finished());
        let refused = std::thread::spawn({
            let on_b = Arc::clone(&on_b);
            move || matches!(on_b.try_acquire(), Err(LimitError::NoPermit { .. }))
        })
        .join()
        .unwrap();
        assert!(refused, "a fourth call was admitted beyond the limit of 2");
        // …until a call of the other process ends.
        drop(second);
        assert_eq!(timeout(HANG, third).await.unwrap().unwrap(), 1);
        drop(first);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fleet_reconnects_over_tls_after_a_restart() {
        let ca = Authority::new("limit-suite test CA");
        let mut server = RedisServer::start_tls(&ca.server());
        // A restarted server grants nothing for one lease (the leases it lost may still be
        // held): a short one keeps the test short.
        let fleet = Fleet::builder(&server.url())
            .tls_root_certificate(ca.pem.as_str())
            .lease(Duration::from_secs(1))
            .renew_every(Duration::from_millis(300))
            .build()
            .await
            .expect("connect over TLS");
        let limiter = named("tls-restart", 1);
        fleet.share_arc(&limiter).await.unwrap();
        drop(timeout(HANG, limiter.acquire()).await.unwrap());
        server.restart();
        assert_eq!(held_in_redis(&server, "tls-restart"), 0);
        // Both of the fleet's connections come back over TLS: the grant is the new
        // server's.
        let permit = timeout(HANG, limiter.acquire())
            .await
            .expect("never admitted after the restart");
        assert_eq!(held_in_redis(&server, "tls-restart"), 1);
        drop(permit);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_of_another_authority_is_refused_without_showing_the_password() {
        let ca = Authority::new("limit-suite test CA");
        let server = RedisServer::start_tls_with(&ca.server(), &["--requirepass", SECRET]);
        assert!(
            server.command(&["PING"]).starts_with("-NOAUTH"),
            "the server must ask for the password, or this test proves nothing"
        );
        let url = format!("rediss://:{SECRET}@127.0.0.1:{}/", server.port());
        let wrong = Authority::new("another CA");
        let builder = Fleet::builder(&url).tls_root_certificate(wrong.pem.as_str());
        let shown = format!("{builder:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        refused_by_tls(builder.build().await, "UnknownIssuer", SECRET);
        // The same URL with the right authority connects: the password and the TLS
        // settings were right but for the authority.
        let fleet = Fleet::builder(&url)
            .tls_root_certificate(ca.pem.as_str())
            .build()
            .await
            .expect("connect with the right CA and the password");
        let limiter = named("tls-password", 1);
        fleet.share_arc(&limiter).await.unwrap();
        drop(limiter.acquire().await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_its_authority_a_self_signed_server_is_refused() {
        // A certificate that signs itself: no system root vouches for it.
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let files = TlsFiles {
            ca: cert.pem(),
            certificate: cert.pem(),
            key: signing_key.serialize_pem(),
            client_identity: None,
        };
        let server = RedisServer::start_tls_with(&files, &["--requirepass", SECRET]);
        let url = format!("rediss://:{SECRET}@127.0.0.1:{}/", server.port());
        // The system's roots, by default.
        refused_by_tls(Fleet::builder(&url).build().await, "UnknownIssuer", SECRET);
        refused_by_tls(Fleet::connect(&url).await, "UnknownIssuer", SECRET);
        // Trusted explicitly, it is accepted.
        Fleet::builder(&url)
            .tls_root_certificate(cert.pem())
            .build()
            .await
            .expect("connect to the self-signed server that is trusted");
        // And its port speaks nothing but TLS.
        let plain = format!("redis://:{SECRET}@127.0.0.1:{}/", server.port());
        let error = Fleet::builder(&plain)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .await
            .expect_err("plain RESP to a TLS port");
        assert!(matches!(error, FleetError::Unreachable { .. }), "{error:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutual_tls_needs_the_clients_certificate() {
        let ca = Authority::new("limit-suite test CA");
        let mut files = ca.server();
        // The fixture's own connections present a certificate of their own.
        files.client_identity = Some(ca.client());
        let server = RedisServer::start_tls(&files);
        assert_eq!(server.command(&["PING"]), "PONG");
        let (certificate, key) = ca.client();

        let builder = Fleet::builder(&server.url())
            .tls_root_certificate(ca.pem.as_str())
            .tls_client_identity(certificate.as_str(), key.as_str());
        assert_debug_hides(&builder, &key);
        assert!(
            format!("{builder:?}")
                .contains("tls: Tls { root_certificates: given, client_identity: set }"),
            "{builder:?}"
        );
        let fleet = builder
            .build()
            .await
            .expect("connect with a client certificate");
        let limiter = named("tls-mutual", 1);
        fleet.share_arc(&limiter).await.unwrap();
        let permit = limiter.acquire().await;
        assert_eq!(held_in_redis(&server, "tls-mutual"), 1);
        drop(permit);

        // Without a certificate, the server refuses the client.
        refused_by_tls(
            Fleet::builder(&server.url())
                .tls_root_certificate(ca.pem.as_str())
                .build()
                .await,
            "CertificateRequired",
            &key,
        );
        // With one that another authority signed, too.
        let (stranger, stranger_key) = Authority::new("another CA").client();
        refused_by_tls(
            Fleet::builder(&server.url())
                .tls_root_certificate(ca.pem.as_str())
                .tls_client_identity(stranger, stranger_key.as_str())
                .build()
                .await,
            "UnknownCA",
            &stranger_key,
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_certificate_with_another_key_is_refused_before_connecting() {
        let ca = Authority::new("limit-suite test CA");
        let (certificate, _) = ca.client();
        let (_, other_key) = ca.client();
        // Nothing listens on port 1: only a check made before connecting can answer with
        // anything but `Unreachable`.
        let error = Fleet::builder("rediss://127.0.0.1:1/")
            .tls_root_certificate(ca.pem.as_str())
            .tls_client_identity(certificate, other_key.as_str())
            .build()
            .await
            .expect_err("a certificate with a key not its own");
        assert!(
            matches!(error, FleetError::InvalidConfig { .. }),
            "{error:?}"
        );
        for text in every_text_of(&error) {
            assert!(text.contains("client identity"), "{text}");
            for line in body_lines(&other_key) {
                assert!(!text.contains(line), "the error shows the key: {text}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_builders_debug_shows_no_certificate_or_key() {
        let ca = Authority::new("limit-suite test CA");
        let (certificate, key) = ca.client();
        let plain = Fleet::builder("rediss://127.0.0.1:6380/");
        assert!(
            format!("{plain:?}")
                .contains("tls: Tls { root_certificates: system, client_identity: none }"),
            "{plain:?}"
        );
        let builder = plain
            .tls_root_certificate(ca.pem.as_str())
            .tls_client_identity(certificate.as_str(), key.as_str());
        for pem in [&ca.pem, &certificate, &key] {
            assert_debug_hides(&builder, pem);
        }
        assert!(
            format!("{builder:?}").contains("client_identity: set"),
            "{builder:?}"
        );
    }
}

#[cfg(not(feature = "redis-tls"))]
mod without_tls {
    use limit_runtime::redis::{Fleet, FleetError};

    #[tokio::test]
    async fn a_tls_url_needs_the_redis_tls_feature() {
        for url in [
            "rediss://:hunter2@127.0.0.1:1/",
            "valkeys://:hunter2@127.0.0.1:1/",
        ] {
            let error = Fleet::builder(url).build().await.unwrap_err();
            assert!(matches!(error, FleetError::InvalidUrl { .. }), "{error:?}");
            let message = error.to_string();
            assert!(message.contains("`redis-tls`"), "{message}");
            for shown in [message, format!("{error:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
    }
}
