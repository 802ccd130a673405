//! The fleet tests' fixture, `limit_suite::redis_server::RedisServer`: a real `redis-server`
//! per test, that a test can kill, restart and pause.
#![cfg(feature = "redis")]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use limit_suite::redis_server::RedisServer;

fn connect(server: &RedisServer) -> std::io::Result<TcpStream> {
    TcpStream::connect(("127.0.0.1", server.port()))
}

#[test]
fn it_starts_and_answers() {
    let server = RedisServer::start();
    assert_eq!(server.command(&["PING"]), "PONG");
    assert_eq!(server.command(&["ECHO", "a b\r\nc"]), "a b\r\nc");
    assert_eq!(server.command(&["DBSIZE"]), "0");
    assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    assert_eq!(server.command(&["GET", "k"]), "v");
    assert_eq!(server.command(&["GET", "missing"]), "(nil)");
    assert_eq!(server.command(&["RPUSH", "l", "x", "y"]), "2");
    assert_eq!(server.command(&["LRANGE", "l", "0", "-1"]), "x\ny");
    assert!(
        server
            .command(&["NOSUCHCOMMAND"])
            .starts_with("-ERR unknown command")
    );
    let stats = server.command(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_set:calls=1,"), "{stats}");
    let info = server.command(&["INFO", "server"]);
    assert!(
        info.contains(&format!("process_id:{}\r\n", server.pid())),
        "{info}"
    );
    // No persistence, and its own port.
    assert_eq!(server.command(&["CONFIG", "GET", "save"]), "save\n");
    assert_eq!(
        server.command(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );
    assert_eq!(
        server.command(&["CONFIG", "GET", "port"]),
        format!("port\n{}", server.port())
    );
}

#[test]
fn its_url_names_its_port() {
    let server = RedisServer::start();
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
    assert_ne!(server.port(), 6379);
}

#[test]
fn each_server_has_its_own_port_and_data() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.pid(), b.pid());
    assert_eq!(a.command(&["SET", "k", "a"]), "OK");
    assert_eq!(b.command(&["GET", "k"]), "(nil)");
}

#[test]
fn a_killed_server_refuses_connections() {
    let mut server = RedisServer::start();
    let mut open = connect(&server).unwrap();
    server.kill();
    let error = connect(&server).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
    // The connection it had is gone too.
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = open.write_all(b"PING\r\n");
    let mut buf = [0; 16];
    assert!(matches!(open.read(&mut buf), Ok(0) | Err(_)));
    // Killing twice is fine, and so is dropping a killed server.
    server.kill();
}

#[test]
fn a_restarted_server_is_empty_on_the_same_port() {
    let mut server = RedisServer::start();
    let (port, pid) = (server.port(), server.pid());
    assert_eq!(server.command(&["SET", "k", "v"]), "OK");
    assert_eq!(server.command(&["SAVE"]), "OK");
    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), pid);
    assert_eq!(server.command(&["EXISTS", "k"]), "0");
    assert_eq!(server.command(&["DBSIZE"]), "0");

    // And after a kill.
    server.kill();
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.command(&["PING"]), "PONG");
}

#[test]
fn a_stopped_server_answers_once_continued() {
    let server = RedisServer::start();
    server.stop_signal();
    // The kernel still accepts the connection, but nobody answers.
    let mut stream = connect(&server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    let mut buf = [0; 7];
    let error = stream.read_exact(&mut buf).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error:?}"
    );
    server.continue_signal();
    // What it was sent meanwhile is answered.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    assert_eq!(server.command(&["PING"]), "PONG");
}

#[test]
fn a_stopped_server_can_be_dropped() {
    let server = RedisServer::start();
    server.stop_signal();
    drop(server);
}

#[test]
fn extra_arguments_reach_the_server() {
    let mut server = RedisServer::start_with(&["--requirepass", "secret"]);
    assert!(server.command(&["PING"]).starts_with("-NOAUTH"));
    assert_on_authenticated_connection(&server);
    // A restart keeps them.
    server.restart();
    assert!(server.command(&["PING"]).starts_with("-NOAUTH"));
    assert_on_authenticated_connection(&server);
}

fn assert_on_authenticated_connection(server: &RedisServer) {
    let mut stream = connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"AUTH secret\r\nPING\r\n").unwrap();
    let mut buf = [0; 12];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK\r\n+PONG\r\n");
}

#[test]
fn the_directory_is_removed_on_drop() {
    let server = RedisServer::start();
    let dir = server.command(&["CONFIG", "GET", "dir"]);
    let dir = dir.strip_prefix("dir\n").unwrap().to_owned();
    assert!(std::path::Path::new(&dir).is_dir(), "{dir}");
    assert!(dir.starts_with(std::env::temp_dir().to_str().unwrap()));
    drop(server);
    assert!(!std::path::Path::new(&dir).exists(), "{dir}");
}
