//! A TCP server in the shape of tokio's mini-redis, in this crate's idiom: two servers in one
//! process, each with limits of its own, shut down one at a time.
//!
//! Run it with `cargo run --example server`. It starts both servers on free ports, floods
//! the first with connections, shuts the first down while the second keeps serving, then
//! shuts the second down, and checks what it prints.
//!
//! What each server does, as mini-redis does with a `Semaphore` of its own:
//!
//! - Its `connections` limiter (an `Arc<Limiter>`, one per server) caps the sockets it holds.
//!   The accept loop takes an owned permit *before* `accept()`, so while the server is full
//!   it does not accept at all: new connections wait in the kernel's backlog, not in memory.
//!   The permit moves into the connection's task, and counts for the server's `drain()`.
//! - Each connection's `Handler` runs commands through `&mut self`, limited by the server's
//!   `commands` limiter (`limiter = self.commands.clone()`), a limit on work in progress.
//! - Shutdown is per server: stop accepting, tell the connections, then a bounded
//!   `drain()` of that server's limiters alone, and a report of that server alone
//!   (`Stats` is one `stragglers()` line).
//!
//! The protocol is one command per line: `PING`, `SET key value`, `GET key`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use limit_runtime::{Limiter, concurrency_limit};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Sockets one server holds at most.
const MAX_CONNECTIONS: usize = 4;
/// Commands one server runs at most at once, over all its connections.
const MAX_COMMANDS: usize = 2;
/// How long a server's connections get to finish once it shuts down.
const GRACE: Duration = Duration::from_secs(5);
/// Clients that connect to the first server at once.
const FLOOD: usize = 40;

type Db = Arc<Mutex<HashMap<String, String>>>;

/// One server: its listener, its limiters, its data, and the sockets it holds now.
struct Server {
    name: String,
    listener: TcpListener,
    connections: Arc<Limiter>,
    commands: Arc<Limiter>,
    db: Db,
    open: Arc<Gauge>,
}

/// Sockets held now, and the most ever held at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Server {
    async fn bind(name: &str) -> std::io::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            listener: TcpListener::bind("127.0.0.1:0").await?,
            connections: Arc::new(
                Limiter::new(MAX_CONNECTIONS).with_owned_name(format!("{name}/connections")),
            ),
            commands: Arc::new(
                Limiter::new(MAX_COMMANDS).with_owned_name(format!("{name}/commands")),
            ),
            db: Db::default(),
            open: Arc::default(),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Accepts until `shutdown` says so. Each connection runs in a task of its own, which
    /// holds one of the server's connection permits.
    async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            // Wait for a free slot before accepting: a full server leaves new connections
            // in the kernel's backlog.
            let permit = tokio::select! {
                permit = Arc::clone(&self.connections).acquire_owned() => permit,
                _ = shutdown.changed() => return,
            };
            let socket = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(error) => {
                        eprintln!("{}: accept failed: {error}", self.name);
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let handler = Handler {
                lines: BufReader::new(socket),
                commands: Arc::clone(&self.commands),
                db: Arc::clone(&self.db),
                _open: Open::new(&self.open),
            };
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _permit = permit; // the socket's slot, until the connection ends
                // Moved in after the permit, so dropped before it: the socket is closed (and
                // uncounted) before its slot goes to the next connection. Left a captured
                // variable, it would be dropped after the block's locals, the permit
                // among them, and a fifth socket could be counted open.
                let mut handler = handler;
                if let Err(error) = handler.serve(shutdown).await {
                    eprintln!("connection failed: {error}");
                }
            });
        }
    }

    /// Stops this server alone: its accept loop has returned; its connections were told to
    /// close. Waits for its work, bounded by `GRACE`, and reports on it.
    async fn drain(&self) -> bool {
        let drained = tokio::time::timeout(GRACE, async {
            self.connections.drain().await;
            self.commands.drain().await;
        })
        .await
        .is_ok();
        println!(
            "{}: {} after shutdown; {}; {}",
            self.name,
            if drained { "drained" } else { "still busy" },
            self.connections.stats(),
            self.commands.stats(),
        );
        drained
    }
}

/// Counts a socket as open while it lives.
struct Open(Arc<Gauge>);

impl Open {
    fn new(gauge: &Arc<Gauge>) -> Self {
        let now = gauge.now.fetch_add(1, SeqCst) + 1;
        gauge.peak.fetch_max(now, SeqCst);
        Self(Arc::clone(gauge))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, SeqCst);
    }
}

/// One connection, as mini-redis's `Handler`: it owns the socket and is driven through
/// `&mut self`.
struct Handler {
    lines: BufReader<TcpStream>,
    commands: Arc<Limiter>,
    db: Db,
    _open: Open,
}

impl Handler {
    async fn serve(&mut self, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            let read = tokio::select! {
                read = self.lines.read_line(&mut line) => read?,
                _ = shutdown.changed() => return Ok(()),
            };
            if read == 0 {
                return Ok(()); // the client closed the connection
            }
            let reply = self.apply(line.trim()).await;
            self.lines.get_mut().write_all(reply.as_bytes()).await?;
        }
    }

    /// Runs one command. A `&mut self` method can hold its limiter only through an `Arc`:
    /// its future holds `self`, so it cannot also hold a borrow of a field.
    #[concurrency_limit(limiter = self.commands.clone())]
    async fn apply(&mut self, command: &str) -> String {
        // A little work, so that the limit on commands in progress is visible.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut words = command.splitn(3, ' ');
        let mut db = self.db.lock().unwrap();
        match (words.next(), words.next(), words.next()) {
            (Some("PING"), None, None) => "PONG\n".to_owned(),
            (Some("SET"), Some(key), Some(value)) => {
                db.insert(key.to_owned(), value.to_owned());
                "OK\n".to_owned()
            }
            (Some("GET"), Some(key), None) => match db.get(key) {
                Some(value) => format!("{value}\n"),
                None => "(nil)\n".to_owned(),
            },
            _ => format!("ERR unknown command {command:?}\n"),
        }
    }
}

/// A client: connects, sends `commands` one by one, returns the replies.
async fn client(addr: SocketAddr, commands: &[String]) -> std::io::Result<Vec<String>> {
    let mut lines = BufReader::new(TcpStream::connect(addr).await?);
    let mut replies = Vec::new();
    for command in commands {
        lines
            .get_mut()
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        let mut reply = String::new();
        lines.read_line(&mut reply).await?;
        replies.push(reply.trim_end().to_owned());
    }
    Ok(replies)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Arc::new(Server::bind("server-a").await?);
    let b = Arc::new(Server::bind("server-b").await?);
    let (stop_a, stopped_a) = watch::channel(false);
    let (stop_b, stopped_b) = watch::channel(false);
    let accepting_a = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.run(stopped_a).await }
    });
    let accepting_b = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.run(stopped_b).await }
    });
    println!(
        "server-a on {}, server-b on {}: at most {MAX_CONNECTIONS} sockets and \
         {MAX_COMMANDS} commands at once, each",
        a.addr(),
        b.addr()
    );

    // A flood: FLOOD clients at once, each with a few commands.
    let mut flood = JoinSet::new();
    for n in 0..FLOOD {
        let commands = vec![
            "PING".to_owned(),
            format!("SET client-{n} {n}"),
            format!("GET client-{n}"),
        ];
        let addr = a.addr();
        flood.spawn(async move { client(addr, &commands).await });
    }
    let mut served = 0;
    while let Some(replies) = flood.join_next().await {
        let replies = replies.expect("a client task")?;
        assert_eq!(replies[0..2], ["PONG", "OK"]);
        served += 1;
    }
    let peak = a.open.peak.load(SeqCst);
    println!(
        "server-a: served {served} clients of a flood of {FLOOD}, holding at most {peak} \
         sockets at once; commands at once at most {}",
        a.commands.stats().peak_running
    );
    assert_eq!(served, FLOOD);
    assert!(peak <= MAX_CONNECTIONS, "server-a held {peak} sockets");
    assert!(a.commands.stats().peak_running <= MAX_COMMANDS);

    // Two clients stay connected to each server, so that the shutdowns have work to wait for.
    let idle_a = TcpStream::connect(a.addr()).await?;
    let idle_b = TcpStream::connect(b.addr()).await?;
    assert_eq!(client(b.addr(), &["PING".to_owned()]).await?, ["PONG"]);

    // Shut down server-a alone: its drain waits for its own connections, not server-b's.
    stop_a.send_replace(true);
    accepting_a.await.expect("server-a's accept loop");
    assert!(
        a.drain().await,
        "server-a drains while server-b still serves"
    );
    assert_eq!(a.connections.in_flight(), 0);
    assert_eq!(
        b.connections.in_flight(),
        2,
        "server-b holds its idle client, and the slot its accept loop took for the next one"
    );
    assert_eq!(
        client(
            b.addr(),
            &["SET still up".to_owned(), "GET still".to_owned()]
        )
        .await?,
        ["OK", "up"],
        "server-b serves after server-a has shut down"
    );

    stop_b.send_replace(true);
    accepting_b.await.expect("server-b's accept loop");
    assert!(b.drain().await);
    drop((idle_a, idle_b));
    println!("both servers shut down, one at a time");
    Ok(())
}
