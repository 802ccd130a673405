//! The fleet's Lua scripts (in `lua/`), and the keys they work on. Each script is the shared
//! `preamble.lua` followed by its own body, sent as `EVALSHA` (redis-rs loads it again after
//! a `NOSCRIPT`, as after a server restart). A limiter's name reaches a script only as a key
//! or an argument, never as script text.

use std::sync::LazyLock;

use ::redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/preamble.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script, made (and hashed) once per process.
pub(super) struct Scripts {
    pub(super) join: Script,
    pub(super) acquire: Script,
    pub(super) release: Script,
    pub(super) cancel: Script,
    pub(super) renew: Script,
    pub(super) set_limit: Script,
}

impl Scripts {
    pub(super) fn all(&self) -> [&Script; 6] {
        [
            &self.join,
            &self.acquire,
            &self.release,
            &self.cancel,
            &self.renew,
            &self.set_limit,
        ]
    }
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    join: script!("join.lua"),
    acquire: script!("acquire.lua"),
    release: script!("release.lua"),
    cancel: script!("cancel.lua"),
    renew: script!("renew.lua"),
    set_limit: script!("set_limit.lua"),
});

/// The five keys of one limiter, `<prefix>:{<name>}:<part>` (what each holds: see
/// `lua/preamble.lua`). They share the hash tag `{<name>}` (the first `{…}` of each, the same
/// in all five), so a Redis Cluster keeps them in one slot, as a script that touches them all
/// needs.
#[derive(Debug)]
pub(super) struct Keys(pub(super) [String; 5]);

impl Keys {
    pub(super) fn new(prefix: &str, name: &str) -> Self {
        Self(
            ["meta", "leases", "queue", "qexp", "fences"]
                .map(|part| format!("{prefix}:{{{name}}}:{part}")),
        )
    }
}

/// A new fleet's id: `INCR <prefix>:fleets`, where the counter starts from the server's
/// clock in microseconds when it is missing. So the ids given after a restart that lost the
/// counter are larger than every id given before it (unless a million processes joined per
/// second since the counter began), and a new process never takes the id, the members and
/// the channel of one that still runs.
pub(super) static FLEET_ID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then \
           local t = redis.call('TIME') \
           redis.call('SET', KEYS[1], string.format('%d', t[1] * 1000000 + t[2])) \
         end \
         return redis.call('INCR', KEYS[1])",
    )
});

/// The channel on which the scripts tell fleet `id` that a waiter of its was granted its
/// permits (the scripts append the id to the prefix).
pub(super) fn channel_prefix(prefix: &str) -> String {
    format!("{prefix}:wake:")
}
