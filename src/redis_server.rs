//! A real `redis-server` per test, for the fleet tests (`tests/fleet_*.rs`).
//!
//! Each [`RedisServer`] is a child process of the test, on a loopback port of its own, with
//! no persistence and a fresh directory, so tests stay isolated and a test can kill, restart
//! or pause (`SIGSTOP`) its own server. Only std is used: the child is spoken to over a raw
//! [`TcpStream`], and signals go through the `kill` command. A TLS server
//! ([`RedisServer::start_tls`], with the `redis-tls` feature) is spoken to through rustls
//! over that same blocking stream.
//!
//! A missing `redis-server` is a failure, never a skip: a green run must not hide that the
//! fleet tests did not run.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a start (or a restart) may take before it panics.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How many ports [`RedisServer::start`] tries when its child exits early (another process
/// took the port between `bind(0)` and the child's own bind).
const START_ATTEMPTS: usize = 5;
/// How long [`RedisServer::command`] waits for a connection or a reply.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The default Redis port: never used, so a test cannot touch a developer's own server.
const DEFAULT_REDIS_PORT: u16 = 6379;
/// The name of the server's log (its stdout and stderr) inside its directory.
const LOG_FILE: &str = "redis-server.log";

const INSTALL_HINT: &str = "redis-server not found: install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: `brew install redis`) or set REDIS_SERVER=/path/to/redis-server; `scripts/test.sh` installs it for you";

/// A `redis-server` child process for one test, on `127.0.0.1` and a port of its own, with
/// no persistence (`--save "" --appendonly no`) and a fresh temporary directory.
///
/// Dropping it kills the process (`SIGKILL`), waits for it and removes the directory.
///
/// ```no_run
/// use limit_suite::redis_server::RedisServer;
///
/// let server = RedisServer::start();
/// assert_eq!(server.command(&["PING"]), "PONG");
/// let url = server.url(); // "redis://127.0.0.1:<port>/", for `redis::Client::open`
/// # drop(url);
/// ```
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    dir: PathBuf,
    child: Child,
    /// Whether `child` has been waited for (after [`RedisServer::kill`]).
    reaped: bool,
    /// The certificates of a server that speaks only TLS, and the fixture's own client
    /// configuration for it.
    #[cfg(feature = "redis-tls")]
    tls: Option<tls::Server>,
}

impl RedisServer {
    /// Starts a `redis-server` on a free loopback port and returns once it answers `PING`.
    ///
    /// The binary is `$REDIS_SERVER` if that is set, else `redis-server` on `PATH`, else
    /// `/usr/bin/redis-server` or `/usr/sbin/redis-server`.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// assert_eq!(server.command(&["DBSIZE"]), "0");
    /// ```
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be found (the message says how to install it), when it
    /// exits early on each of 5 ports, or when it does not answer within 10 s. The message
    /// includes the tail of the server's log.
    #[must_use]
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`start`](RedisServer::start) with extra arguments for `redis-server`, after the
    /// fixture's own (a later one wins), e.g. `&["--requirepass", "secret"]`.
    ///
    /// A server that requires a password counts as up when it answers `-NOAUTH`; with
    /// `--requirepass`, the start-up check authenticates to make sure the server that
    /// answered is this one.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start_with(&["--requirepass", "secret"]);
    /// assert!(server.command(&["PING"]).starts_with("-NOAUTH"));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](RedisServer::start) does.
    #[must_use]
    pub fn start_with(args: &[&str]) -> RedisServer {
        RedisServer::start_listening(args, &Listen::Plain)
    }

    /// Starts the server, listening as `listen` says: the body of
    /// [`start_with`](RedisServer::start_with) and [`start_tls_with`](RedisServer::start_tls_with).
    fn start_listening(args: &[&str], listen: &Listen) -> RedisServer {
        let binary = locate_binary(std::env::var_os("REDIS_SERVER"), std::env::var_os("PATH"))
            .unwrap_or_else(|message| panic!("{message}"));
        let args: Vec<String> = args.iter().map(|&arg| arg.to_owned()).collect();
        let dir = fresh_dir();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut server = match spawn(&binary, &args, port, &dir, listen) {
                Ok(child) => RedisServer {
                    binary: binary.clone(),
                    args: args.clone(),
                    port,
                    dir: dir.clone(),
                    child,
                    reaped: false,
                    #[cfg(feature = "redis-tls")]
                    tls: match listen {
                        Listen::Plain => None,
                        Listen::Tls(server) => Some(server.clone()),
                    },
                },
                Err(error) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!("could not run {}: {error}", binary.display());
                }
            };
            match server.wait_until_up(Instant::now() + START_DEADLINE) {
                Ok(()) => return server,
                Err(Exited(status)) => {
                    // Most likely a lost port race; the log says. Drop removes the
                    // directory, so the next attempt starts with a fresh one.
                    failures.push(format!(
                        "port {port}: exited early ({status})\n{}",
                        server.log_tail()
                    ));
                    drop(server);
                    fs::create_dir_all(&dir).unwrap_or_else(|error| {
                        panic!("could not create {}: {error}", dir.display())
                    });
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!(
            "redis-server ({}) exited early on {START_ATTEMPTS} ports in a row:\n{}",
            binary.display(),
            failures.join("\n")
        );
    }

    /// The URL of the server, `redis://127.0.0.1:<port>/`, for `redis::Client::open`
    /// (`rediss://127.0.0.1:<port>/` for a [TLS server](RedisServer::start_tls)).
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// assert_eq!(server.url(), format!("redis://127.0.0.1:{}/", server.port()));
    /// ```
    #[must_use]
    pub fn url(&self) -> String {
        #[cfg(feature = "redis-tls")]
        if self.tls.is_some() {
            return format!("rediss://127.0.0.1:{}/", self.port);
        }
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's TCP port on `127.0.0.1`. It stays the same across
    /// [`restart`](RedisServer::restart), and is never 6379.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// assert_ne!(server.port(), 6379);
    /// ```
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the current `redis-server` (a new one after
    /// [`restart`](RedisServer::restart)).
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// let info = server.command(&["INFO", "server"]);
    /// assert!(info.contains(&format!("process_id:{}", server.pid())));
    /// ```
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with `SIGKILL` and waits for it, as a crash would: connections are
    /// reset, new ones are refused, and nothing is saved. Killing a killed server does
    /// nothing.
    ///
    /// ```no_run
    /// let mut server = limit_suite::redis_server::RedisServer::start();
    /// server.kill();
    /// assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
    /// ```
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // An error means that it has exited already; `wait` reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Starts the server again on the same port, with the same arguments and no data,
    /// killing the current process first if it still runs. Returns once it answers `PING`.
    ///
    /// Binding the same port is retried for up to 10 s (the kernel may hold it briefly after
    /// the old process; Redis sets `SO_REUSEADDR`, so that is rare).
    ///
    /// ```no_run
    /// let mut server = limit_suite::redis_server::RedisServer::start();
    /// server.command(&["SET", "k", "v"]);
    /// server.restart();
    /// assert_eq!(server.command(&["EXISTS", "k"]), "0");
    /// ```
    ///
    /// # Panics
    ///
    /// When the server does not come back on its port within 10 s.
    pub fn restart(&mut self) {
        self.kill();
        // No data survives: nothing is saved with `--save ""`, but remove what a test may
        // have written (`SAVE`, `BGREWRITEAOF`) all the same.
        let _ = fs::remove_file(self.dir.join("dump.rdb"));
        let _ = fs::remove_dir_all(self.dir.join("appendonlydir"));
        let deadline = Instant::now() + START_DEADLINE;
        let mut last_exit = None;
        while Instant::now() < deadline {
            match spawn(
                &self.binary,
                &self.args,
                self.port,
                &self.dir,
                &self.listen(),
            ) {
                Ok(child) => {
                    self.child = child;
                    self.reaped = false;
                }
                Err(error) => panic!("could not run {}: {error}", self.binary.display()),
            }
            match self.wait_until_up(deadline) {
                Ok(()) => return,
                Err(Exited(status)) => {
                    last_exit = Some(status);
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!(
            "redis-server did not come back on port {} within {START_DEADLINE:?} (last exit: {})\n{}",
            self.port,
            last_exit.map_or_else(|| "none".to_owned(), |status| status.to_string()),
            self.log_tail()
        );
    }

    /// Pauses the server with `SIGSTOP`: it keeps its port and its connections, and the
    /// kernel still accepts new ones, but it answers nothing until
    /// [`continue_signal`](RedisServer::continue_signal). Dropping a paused server is fine.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// server.stop_signal();
    /// // … a client's timeouts fire here …
    /// server.continue_signal();
    /// ```
    ///
    /// # Panics
    ///
    /// When `kill -STOP` fails (say, the server was killed).
    pub fn stop_signal(&self) {
        self.signal("-STOP");
    }

    /// Resumes a server paused by [`stop_signal`](RedisServer::stop_signal) with `SIGCONT`;
    /// it then answers what it was sent meanwhile.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// server.stop_signal();
    /// server.continue_signal();
    /// assert_eq!(server.command(&["PING"]), "PONG");
    /// ```
    ///
    /// # Panics
    ///
    /// When `kill -CONT` fails (say, the server was killed).
    pub fn continue_signal(&self) {
        self.signal("-CONT");
    }

    /// Sends one command on a new connection and returns the reply as text, blocking (no
    /// runtime, no `redis` crate), for probes such as `INFO commandstats` or `DBSIZE`. To a
    /// [TLS server](RedisServer::start_tls), it speaks TLS, trusting the server's
    /// certificate authority (and presenting the fixture's client certificate, when the
    /// server requires one).
    ///
    /// The reply is: a simple string or a bulk string as its text (`"PONG"`, `INFO`'s lines
    /// with their `\r\n`), an integer in decimal (`"0"`), an error with its leading `-`
    /// (`"-NOAUTH Authentication required."`), a null as `"(nil)"`, and an array as its
    /// elements, each so converted, joined with `\n`.
    ///
    /// Each call is a connection of its own, so `AUTH` does not carry over to the next one.
    ///
    /// ```no_run
    /// let server = limit_suite::redis_server::RedisServer::start();
    /// assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    /// assert_eq!(server.command(&["GET", "k"]), "v");
    /// assert_eq!(server.command(&["DBSIZE"]), "1");
    /// assert!(server.command(&["INFO", "commandstats"]).contains("cmdstat_set:calls=1"));
    /// ```
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or does not reply within 10 s (say, it is killed
    /// or paused), or the reply is not RESP.
    pub fn command(&self, args: &[&str]) -> String {
        match self.try_command(args, COMMAND_TIMEOUT) {
            Ok(reply) => reply,
            Err(error) => panic!(
                "redis-server on port {}: {args:?} failed: {error}\n{}",
                self.port,
                self.log_tail()
            ),
        }
    }

    /// Sends `args` on a new connection (after `AUTH password` when given) and reads one
    /// reply per command sent, returning the last.
    fn try_command(&self, args: &[&str], timeout: Duration) -> std::io::Result<String> {
        let mut stream = self.connect(timeout)?;
        stream.write_all(&encode(args))?;
        stream.flush()?;
        read_reply(&mut BufReader::new(stream))
    }

    /// A new connection to the server, with `timeout` for each read and write: TLS over TCP
    /// for a TLS server, plain TCP otherwise.
    fn connect(&self, timeout: Duration) -> std::io::Result<Box<dyn Stream>> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        #[cfg(feature = "redis-tls")]
        if let Some(tls) = &self.tls {
            return tls.client(stream);
        }
        Ok(Box::new(stream))
    }

    /// How the server listens, for a restart.
    fn listen(&self) -> Listen {
        #[cfg(feature = "redis-tls")]
        if let Some(tls) = &self.tls {
            return Listen::Tls(tls.clone());
        }
        Listen::Plain
    }

    /// Waits until the server answers `PING` (or `-NOAUTH`) and is this child, not another
    /// process that took the port; `Err` when the child exits first.
    fn wait_until_up(&mut self, deadline: Instant) -> Result<(), Exited> {
        let password = self.password();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Err(Exited(status.to_string()));
                }
                Ok(None) => {}
                Err(error) => {
                    self.kill();
                    return Err(Exited(format!("could not be waited for: {error}")));
                }
            }
            if self.is_up(password.as_deref()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let log = self.log_tail();
                self.kill();
                panic!(
                    "redis-server on port {} did not answer PING within {START_DEADLINE:?}\n{log}",
                    self.port
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether this child answers on its port: `+PONG` or `-NOAUTH` to `PING`, then, when the
    /// fixture can speak to it, an `INFO server` that names this child's pid.
    fn is_up(&self, password: Option<&str>) -> bool {
        let probe = Duration::from_millis(500);
        match self.try_command(&["PING"], probe) {
            Ok(reply) if reply == "PONG" || reply.starts_with("-NOAUTH") => {}
            _ => return false,
        }
        let info = match password {
            None => self.try_command(&["INFO", "server"], probe),
            Some(password) => self.try_authenticated(password, &["INFO", "server"], probe),
        };
        match info {
            Ok(info) if info.starts_with("-NOAUTH") => {
                // Access it cannot check (an ACL file, say): the child is alive and the port
                // answers, which is as much as it can know.
                true
            }
            Ok(info) => info
                .lines()
                .any(|line| line == format!("process_id:{}", self.child.id())),
            Err(_) => false,
        }
    }

    /// `AUTH password` then `args` on one connection; the reply to `args`.
    fn try_authenticated(
        &self,
        password: &str,
        args: &[&str],
        timeout: Duration,
    ) -> std::io::Result<String> {
        let mut stream = self.connect(timeout)?;
        stream.write_all(&encode(&["AUTH", password]))?;
        stream.write_all(&encode(args))?;
        stream.flush()?;
        let mut reader = BufReader::new(stream);
        let auth = read_reply(&mut reader)?;
        if auth != "OK" {
            return Ok(auth);
        }
        read_reply(&mut reader)
    }

    /// The value of the last `--requirepass` in the extra arguments.
    fn password(&self) -> Option<String> {
        self.args
            .windows(2)
            .rev()
            .find(|pair| pair[0] == "--requirepass")
            .map(|pair| pair[1].clone())
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([signal, pid.as_str()])
            .status()
            .unwrap_or_else(|error| panic!("could not run `kill {signal} {pid}`: {error}"));
        assert!(
            status.success(),
            "`kill {signal} {pid}` failed ({status}): is the server still running?"
        );
    }

    /// The last lines of the server's log, for panic messages.
    fn log_tail(&self) -> String {
        log_tail(&self.dir.join(LOG_FILE))
    }
}

#[cfg(feature = "redis-tls")]
impl RedisServer {
    /// Starts a `redis-server` that speaks only TLS, on a free loopback port (`--port 0
    /// --tls-port <port>`), with the certificates of `files`, and returns once it answers
    /// `PING` over TLS. Its [`url`](RedisServer::url) is `rediss://127.0.0.1:<port>/`, and
    /// [`command`](RedisServer::command) speaks TLS to it.
    ///
    /// ```no_run
    /// use limit_suite::redis_server::{RedisServer, TlsFiles};
    ///
    /// # fn pem() -> String { String::new() }
    /// let server = RedisServer::start_tls(&TlsFiles {
    ///     ca: pem(),
    ///     certificate: pem(),
    ///     key: pem(),
    ///     client_identity: None,
    /// });
    /// assert!(server.url().starts_with("rediss://127.0.0.1:"));
    /// assert_eq!(server.command(&["PING"]), "PONG");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start`](RedisServer::start) does, and when a certificate or key of `files` is
    /// not PEM that rustls accepts.
    #[must_use]
    pub fn start_tls(files: &TlsFiles) -> RedisServer {
        RedisServer::start_tls_with(files, &[])
    }

    /// [`start_tls`](RedisServer::start_tls) with extra arguments for `redis-server`, as
    /// [`start_with`](RedisServer::start_with) takes them.
    ///
    /// ```no_run
    /// use limit_suite::redis_server::{RedisServer, TlsFiles};
    ///
    /// # fn files() -> TlsFiles { unimplemented!() }
    /// let server = RedisServer::start_tls_with(&files(), &["--requirepass", "secret"]);
    /// assert!(server.command(&["PING"]).starts_with("-NOAUTH"));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`start_tls`](RedisServer::start_tls) does.
    #[must_use]
    pub fn start_tls_with(files: &TlsFiles, args: &[&str]) -> RedisServer {
        RedisServer::start_listening(args, &Listen::Tls(tls::Server::new(files)))
    }
}

#[cfg(feature = "redis-tls")]
pub use tls::TlsFiles;

/// The TLS side of the fixture: the server's certificate files, and a blocking rustls
/// client for the fixture's own connections.
#[cfg(feature = "redis-tls")]
mod tls {
    use std::fmt;
    use std::fs;
    use std::net::{Ipv4Addr, TcpStream};
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    use super::Stream;

    /// The certificates of a TLS server, in PEM, for
    /// [`RedisServer::start_tls`](super::RedisServer::start_tls). A test makes them (with
    /// rcgen, say); the fixture writes them into the server's directory.
    #[derive(Clone)]
    pub struct TlsFiles {
        /// The certificate authority that signed `certificate`: what the fixture's own
        /// connections trust, and what the server checks clients' certificates against
        /// (`--tls-ca-cert-file`).
        pub ca: String,
        /// The server's certificate, which must name `127.0.0.1` (`--tls-cert-file`).
        pub certificate: String,
        /// Its private key (`--tls-key-file`).
        pub key: String,
        /// `Some((certificate, key))`, signed by `ca`: the server requires a certificate of
        /// every client (`--tls-auth-clients yes`), and the fixture's own connections
        /// present this one. `None`: clients present none (`--tls-auth-clients no`).
        pub client_identity: Option<(String, String)>,
    }

    impl fmt::Debug for TlsFiles {
        /// Without the keys, as a test's failure message may print a server.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TlsFiles")
                .field("client_identity", &self.client_identity.is_some())
                .finish_non_exhaustive()
        }
    }

    /// What a TLS server is started with, kept for its restarts and the fixture's
    /// connections.
    #[derive(Clone, Debug)]
    pub(super) struct Server {
        files: TlsFiles,
        client: Client,
    }

    #[derive(Clone)]
    struct Client(Arc<ClientConfig>);

    impl fmt::Debug for Client {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("ClientConfig")
        }
    }

    impl Server {
        pub(super) fn new(files: &TlsFiles) -> Self {
            let certificates = |what: &str, pem: &str| -> Vec<CertificateDer<'static>> {
                let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_else(|error| panic!("the {what} is not PEM: {error}"));
                assert!(!certificates.is_empty(), "the {what} holds no certificate");
                certificates
            };
            let mut roots = RootCertStore::empty();
            for certificate in certificates("CA certificate", &files.ca) {
                roots
                    .add(certificate)
                    .unwrap_or_else(|error| panic!("the CA certificate is unusable: {error}"));
            }
            // The provider is passed, not installed: the fixture must not be what gives the
            // process a default provider, which the library under test sees to.
            let builder = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots);
            let config = match &files.client_identity {
                None => builder.with_no_client_auth(),
                Some((certificate, key)) => {
                    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                        .unwrap_or_else(|error| panic!("the client key is not PEM: {error}"));
                    builder
                        .with_client_auth_cert(certificates("client certificate", certificate), key)
                        .unwrap_or_else(|error| panic!("the client identity is unusable: {error}"))
                }
            };
            Server {
                files: files.clone(),
                client: Client(Arc::new(config)),
            }
        }

        /// Writes the server's files into `dir`, and returns the arguments that name them.
        pub(super) fn arguments(&self, dir: &Path) -> std::io::Result<Vec<String>> {
            let mut arguments = Vec::new();
            for (option, name, pem) in [
                ("--tls-ca-cert-file", "ca.crt", &self.files.ca),
                ("--tls-cert-file", "server.crt", &self.files.certificate),
                ("--tls-key-file", "server.key", &self.files.key),
            ] {
                let path = dir.join(name);
                fs::write(&path, pem)?;
                arguments.push(option.to_owned());
                arguments.push(path.display().to_string());
            }
            arguments.push("--tls-auth-clients".to_owned());
            arguments.push(
                if self.files.client_identity.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            );
            Ok(arguments)
        }

        /// A TLS client over `stream`, for `127.0.0.1`. The handshake happens at the first
        /// write or read, under the stream's timeouts.
        pub(super) fn client(&self, stream: TcpStream) -> std::io::Result<Box<dyn Stream>> {
            let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
            let connection = ClientConnection::new(Arc::clone(&self.client.0), name)
                .map_err(std::io::Error::other)?;
            Ok(Box::new(StreamOwned::new(connection, stream)))
        }
    }
}

impl Drop for RedisServer {
    /// Kills the server (`SIGKILL`, which also ends a paused one), waits for it, and removes
    /// its directory.
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// How a start attempt ended when the child exited before it answered.
struct Exited(String);

/// A connection to the server: a `TcpStream`, or a TLS stream over one.
trait Stream: Read + Write {}

impl<S: Read + Write> Stream for S {}

/// How a server listens: on its port in plain TCP, or there in TLS alone (`--port 0`).
enum Listen {
    Plain,
    #[cfg(feature = "redis-tls")]
    Tls(tls::Server),
}

/// Finds `redis-server`: `$REDIS_SERVER` when set, else `PATH`, else the Debian locations.
fn locate_binary(env: Option<OsString>, path: Option<OsString>) -> Result<PathBuf, String> {
    if let Some(env) = env.filter(|env| !env.is_empty()) {
        let binary = PathBuf::from(env);
        return if binary.is_file() {
            Ok(binary)
        } else {
            Err(format!(
                "REDIS_SERVER={} is not a file. {INSTALL_HINT}",
                binary.display()
            ))
        };
    }
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"));
    let known = ["/usr/bin/redis-server", "/usr/sbin/redis-server"].map(PathBuf::from);
    on_path
        .chain(known)
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| INSTALL_HINT.to_owned())
}

/// A port that was free a moment ago (the listener is dropped before returning), never 6379.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|error| panic!("could not bind 127.0.0.1:0: {error}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("no local address: {error}"))
            .port();
        if port != DEFAULT_REDIS_PORT {
            return port;
        }
    }
}

/// A new, empty directory under the system's temporary directory, unique to this process,
/// this call and this moment.
fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "limit-suite-redis-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => panic!("could not create {}: {error}", dir.display()),
        }
    }
}

/// Spawns `redis-server` on `port`, with its output appended to the log in `dir`.
fn spawn(
    binary: &Path,
    args: &[String],
    port: u16,
    dir: &Path,
    listen: &Listen,
) -> std::io::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))?;
    let log_err = log.try_clone()?;
    let port = port.to_string();
    let mut command = Command::new(binary);
    match listen {
        Listen::Plain => command.args(["--port", port.as_str()]),
        #[cfg(feature = "redis-tls")]
        Listen::Tls(server) => command
            .args(["--port", "0", "--tls-port", port.as_str()])
            .args(server.arguments(dir)?),
    };
    command
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
}

/// The last 40 lines of `log`, labelled, or a note that it could not be read.
fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    match File::open(log).and_then(|mut file| file.read_to_string(&mut text)) {
        Ok(_) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            format!("--- tail of {} ---\n{tail}", log.display())
        }
        Err(error) => format!("--- {} could not be read: {error} ---", log.display()),
    }
}

/// `args` as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        bytes.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        bytes.extend_from_slice(arg.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// Reads one RESP2 reply as text; see [`RedisServer::command`].
fn read_reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let line = line.strip_suffix("\r\n").unwrap_or(&line);
    let invalid = || {
        std::io::Error::new(
            ErrorKind::InvalidData,
            format!("not a RESP reply: {line:?}"),
        )
    };
    let (kind, rest) = line.split_at_checked(1).ok_or_else(invalid)?;
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Ok(line.to_owned()),
        "$" => {
            let Ok(length) = rest.parse::<usize>() else {
                return if rest == "-1" {
                    Ok("(nil)".to_owned())
                } else {
                    Err(invalid())
                };
            };
            let mut bulk = vec![0; length + 2];
            reader.read_exact(&mut bulk)?;
            bulk.truncate(length);
            String::from_utf8(bulk)
                .map_err(|error| std::io::Error::new(ErrorKind::InvalidData, error))
        }
        "*" => {
            let Ok(count) = rest.parse::<usize>() else {
                return if rest == "-1" {
                    Ok("(nil)".to_owned())
                } else {
                    Err(invalid())
                };
            };
            let elements = (0..count)
                .map(|_| read_reply(reader))
                .collect::<std::io::Result<Vec<String>>>()?;
            Ok(elements.join("\n"))
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_ways_to_get_one() {
        let error = locate_binary(
            Some("/nonexistent/redis-server".into()),
            Some("/usr/bin".into()),
        )
        .unwrap_err();
        assert!(error.starts_with("REDIS_SERVER=/nonexistent/redis-server is not a file."));
        assert!(error.ends_with(INSTALL_HINT));
        assert!(INSTALL_HINT.contains("sudo apt-get install -y redis-server"));
        assert!(INSTALL_HINT.contains("brew install redis"));
        assert!(INSTALL_HINT.contains("scripts/test.sh"));
    }

    #[test]
    fn replies_are_text() {
        let read = |bytes: &[u8]| read_reply(&mut &bytes[..]).unwrap();
        assert_eq!(read(b"+PONG\r\n"), "PONG");
        assert_eq!(read(b"-ERR wrong\r\n"), "-ERR wrong");
        assert_eq!(read(b":42\r\n"), "42");
        assert_eq!(read(b"$5\r\na\r\nbc\r\n"), "a\r\nbc");
        assert_eq!(read(b"$0\r\n\r\n"), "");
        assert_eq!(read(b"$-1\r\n"), "(nil)");
        assert_eq!(read(b"*-1\r\n"), "(nil)");
        assert_eq!(read(b"*0\r\n"), "");
        assert_eq!(read(b"*3\r\n$1\r\na\r\n:2\r\n*1\r\n+c\r\n"), "a\n2\nc");
        assert!(read_reply(&mut &b"?\r\n"[..]).is_err());
        assert!(read_reply(&mut &b""[..]).is_err());
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&["SET", "k", ""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }
}
