#!/usr/bin/env bash
# Compile cost of `#[concurrency_limit]`: generates four throwaway crates under
# target/compile-cost/ with the same 500 small async fns (a reference, a generic, a `?`, an
# early `return`, a returned borrow...): `plain`, `identity` (every fn under an attribute
# macro that returns its item unchanged), `annotated` (every fn under
# `#[concurrency_limit(4)]`) and `instrumented` (every fn under tracing's
# `#[tracing::instrument(skip_all)]`, the attribute users compare ours with: the cheapest
# form of the most common attribute on async fns). All four depend on limit-runtime by path
# (`instrumented` on tracing too, with its `attributes` feature), resolve offline from a copy
# of the workspace's Cargo.lock (which pins tracing and tracing-attributes for the test
# suite; their sources are fetched once if the local registry cache lacks them), and share
# one target dir (its own, under target/, so it never waits on another build's lock), so
# only the crate itself differs between them.
#
# After one warm-up `cargo check` of each crate (which builds limit-runtime, limit-macro,
# tokio and tracing, and proves the crates compile without warnings), the script takes the
# exact rustc command line cargo runs for each crate (`cargo check -vv`, environment
# included) and runs rustc itself, outside cargo: no fingerprinting, and no rebuild of a
# dependency that someone edits meanwhile. The wall-time rounds (plain, identity,
# annotated) rotate which crate goes first; each of their figures is the median of the
# per-round differences, divided by 500.
#
# - Instructions (the goal's measure): instructions rustc executes, counted by callgrind, for
#   the same `--emit=dep-info` command line as the next row, on plain, annotated and
#   instrumented (and identity, on stderr). Proc macros run inside the rustc process (loaded
#   as dylibs, built unoptimized by cargo's dev profile for both attributes), so the count
#   includes them, the bridge and everything the expansion costs the front end. Unlike wall
#   time, a count does not depend on the machine's load, and it repeats to within about
#   100,000 per crate (0.0002 M per fn, below the figures' last digit), so one run of each
#   is enough.
#   (annotated - plain) / 500 and (instrumented - plain) / 500 are the two attributes'
#   costs per fn; their ratio has the target <= 0.4. Callgrind runs the toolchain's real
#   rustc binary (found with `--print sysroot`), not the rustup proxy cargo may name, so
#   that only rustc is counted. Its profiles stay in
#   target/compile-cost/scratch/<crate>.callgrind.out, for `callgrind_annotate`. About 10
#   to 30 s per crate; without valgrind the row says so.
# - Expansion (the 0.1 ms budget's measure): wall time of rustc with `--emit=dep-info`
#   only, which on stable rustc stops once the dep-info file is written, right after
#   macro expansion and name resolution (no type checking). (annotated - plain) / 500 is
#   what the attribute adds to that front end per fn: running the proc macro (built by
#   cargo's dev profile, i.e. unoptimized, as a user's `cargo check` and `cargo build` run
#   it), the proc-macro bridge, parsing the expansion, expanding the macros it contains
#   (`concat!`, `module_path!`) and resolving its names. Its row compares it with the
#   0.1 ms budget. The same figure for the
#   identity attribute, the floor for any attribute macro (loading it, the bridge, re-parsing
#   the item), goes to stderr: it is within this measure's noise on a busy machine.
# - Upper bound: wall time of the crate's whole `cargo check` rustc run (non-incremental).
#   It adds type- and borrow-checking the generated code (the wrapper fn, its `static`
#   limiter and `Handle` impl, the `async move` block), which is not expansion.
# - Cross-check, on stderr only: rustc's own `expand_crate` pass time from `-Z time-passes`,
#   run with RUSTC_BOOTSTRAP=1 for that one rustc process. That flag is unstable; if it stops
#   working the script says so and the stable figures stand.
#
# Prints `RESULT|metric|baseline|contender|ratio|target` lines for scripts/bench.sh.
# Usage: scripts/compile_cost.sh [rounds]   (default 5; about two minutes once dependencies
# are built: the upper bound's full checks and the four callgrind runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

fns=500
rounds="${1:-5}"
host=$(rustc -vV | sed -n 's/^host: //p')
base="$root/target/compile-cost"
export CARGO_TARGET_DIR="$base/target"
# For the warm-up too, so that the captured command lines are non-incremental.
export CARGO_INCREMENTAL=0
# The generated crates must not inherit anything that changes what is compiled or how.
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER RUSTFLAGS CARGO_ENCODED_RUSTFLAGS \
    CARGO_BUILD_RUSTFLAGS RUSTC_BOOTSTRAP

# One function of the generated crates; $1 is its index. `@ATTR@` marks the line where the
# crates with an attribute have it. The five shapes cycle: a generic with a `?` and an
# early `return`, a slice of generics in a loop, a `&str` and a tail `await`, a returned
# borrow with an explicit lifetime, and a `where` clause.
gen_fn() {
    local i=$1
    case $((i % 5)) in
    0) cat <<EOF
@ATTR@
pub async fn load_$i<T: Display>(store: &Store, id: u64, tag: T) -> Result<String, Error> {
    let row = store.get(id + $i).await?;
    if row.is_empty() {
        return Err(Error::Invalid(format!("{tag}: empty row {id}")));
    }
    Ok(format!("{tag}/{row}"))
}

EOF
        ;;
    1) cat <<EOF
@ATTR@
pub async fn count_$i<K: AsRef<str>>(store: &Store, keys: &[K], limit: usize) -> Result<usize, Error> {
    let mut hits = 0;
    for (j, key) in keys.iter().enumerate().take(limit) {
        let row = store.get(j as u64 + $i).await?;
        hits += usize::from(row.contains(key.as_ref()));
    }
    Ok(hits)
}

EOF
        ;;
    2) cat <<EOF
@ATTR@
pub async fn save_$i(store: &Store, id: u64, value: &str) -> Result<(), Error> {
    let trimmed = value.trim();
    if trimmed.len() > $((i % 64 + 16)) {
        return Err(Error::Invalid(trimmed.to_owned()));
    }
    store.put(id, trimmed).await
}

EOF
        ;;
    3) cat <<EOF
@ATTR@
pub async fn pick_$i<'a>(store: &'a Store, ids: Vec<u64>, sep: &str) -> Result<Vec<&'a str>, Error> {
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let row = store.get(id).await?;
        if !row.contains(sep) {
            rows.push(row);
        }
    }
    Ok(rows)
}

EOF
        ;;
    *) cat <<EOF
@ATTR@
pub async fn total_$i<I>(store: &Store, ids: I) -> Result<u64, Error>
where
    I: IntoIterator<Item = u64> + Send,
    I::IntoIter: Send,
{
    let mut total = $i;
    for id in ids {
        total += store.get(id).await?.len() as u64;
    }
    Ok(total)
}

EOF
        ;;
    esac
}

# The source the crates share, with `@ATTR@` and `@USE@` lines, to $base/lib.rs.in.
gen_source() {
    mkdir -p "$base"
    {
        cat <<'EOF'
//! Generated by scripts/compile_cost.sh; do not edit.
#![deny(warnings)]
use std::collections::HashMap;
use std::fmt::Display;

#[derive(Debug)]
pub enum Error {
    NotFound(u64),
    Invalid(String),
}

pub struct Store {
    rows: HashMap<u64, String>,
}

impl Store {
    pub async fn get(&self, id: u64) -> Result<&str, Error> {
        self.rows.get(&id).map(String::as_str).ok_or(Error::NotFound(id))
    }

    pub async fn put(&self, id: u64, value: &str) -> Result<(), Error> {
        if value.is_empty() { Err(Error::NotFound(id)) } else { Ok(()) }
    }
}

@USE@
EOF
        for ((i = 0; i < fns; i++)); do gen_fn "$i"; done
    } >"$base/lib.rs.in"
}

# An attribute macro that returns its item unchanged, named like ours so that the same
# source serves every crate.
gen_identity_macro() {
    local dir="$base/identity-attr"
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<'TOML'
[package]
name = "identity-attr"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
proc-macro = true

[workspace]
TOML
    cat >"$dir/src/lib.rs" <<'RS'
//! Generated by scripts/compile_cost.sh; do not edit.
use proc_macro::TokenStream;

/// Returns the item unchanged: the cost floor of any attribute macro.
#[proc_macro_attribute]
pub fn concurrency_limit(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
RS
}

# Writes crate $1 (a directory under $base): `plain`, `identity`, `annotated` or
# `instrumented`.
gen_crate() {
    local name=$1 dir="$base/$1" attr="" use="" extra=""
    case $name in
    annotated)
        attr='#[concurrency_limit(4)]'
        use='use limit_runtime::concurrency_limit;'
        ;;
    identity)
        attr='#[concurrency_limit(4)]'
        use='use identity_attr::concurrency_limit;'
        extra='identity-attr = { path = "../identity-attr" }'
        ;;
    instrumented)
        # By its path, so that the crate needs no `use` (the `@USE@` line stays empty).
        attr='#[tracing::instrument(skip_all)]'
        extra='tracing = { version = "0.1", default-features = false, features = ["std", "attributes"] }'
        ;;
    esac
    mkdir -p "$dir/src"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "compile-cost-$name"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
limit-runtime = { path = "$root/limit-runtime" }
$extra

# Not part of the limit-runtime workspace.
[workspace]
TOML
    # The workspace's lock pins the versions, so the crate resolves offline to the very
    # same dependencies.
    cp "$root/Cargo.lock" "$dir/Cargo.lock"
    if [ -n "$attr" ]; then
        sed -e "s/^@ATTR@\$/$attr/" -e "s/^@USE@\$/$use/" "$base/lib.rs.in"
    else
        sed -e '/^@ATTR@$/d' -e '/^@USE@$/d' "$base/lib.rs.in"
    fi >"$dir/src/lib.rs"
}

# Checks crate $1 with cargo, and prints the rustc command line, with its environment, that
# cargo ran for it, with its output sent to a scratch dir and its diagnostics in human form.
rustc_command() {
    local line log="$base/scratch/$1.cargo.log"
    mkdir -p "$base/scratch/$1"
    # Offline first; online only for sources the local registry cache lacks (tracing's, on a
    # machine that has not built the test suite). The lock still pins their versions. For
    # this host only: other platforms' dependencies (tokio's windows-sys...) are never built.
    if ! cargo fetch --offline --target "$host" --manifest-path "$base/$1/Cargo.toml" \
        >"$log" 2>&1 &&
        ! cargo fetch --target "$host" --manifest-path "$base/$1/Cargo.toml" >"$log" 2>&1; then
        echo "compile_cost: cannot fetch the $1 crate's dependencies:" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
    # Touched, so that cargo runs rustc for it (and prints the command) even when fresh.
    touch "$base/$1/src/lib.rs"
    if ! cargo check --offline -vv --manifest-path "$base/$1/Cargo.toml" >"$log" 2>&1; then
        echo "compile_cost: the generated $1 crate does not check cleanly:" >&2
        grep -v '^ *\(Running\|Fresh\|Dirty\) ' "$log" | tail -n 40 >&2
        return 1
    fi
    line=$(sed -n "s/^ *Running \`\(.*--crate-name compile_cost_$1 .*\)\`\$/\1/p" "$log")
    case $line in
    *" --emit=dep-info,metadata "*" --out-dir "*) ;;
    *)
        echo "compile_cost: cannot find cargo's rustc command for the $1 crate (got: '$line')" >&2
        return 1
        ;;
    esac
    printf '%s\n' "$line" | sed -e "s|--out-dir [^ ]*|--out-dir $base/scratch/$1|" \
        -e 's/ --error-format=json / /' -e 's/ --json=[^ ]* / /'
}

now_us() {
    echo $(($(date +%s%N) / 1000))
}

# Runs the command line $2 in crate $1's directory; prints its wall time in microseconds. A
# failure stops the script, with rustc's messages.
time_rustc() {
    local start end log="$base/scratch/$1.log"
    start=$(now_us)
    if ! (cd "$base/$1" && eval "$2") >/dev/null 2>"$log"; then
        echo "compile_cost: rustc failed on the $1 crate:" >&2
        cat "$log" >&2
        exit 1
    fi
    end=$(now_us)
    echo $((end - start))
}

# Whole check: the command as cargo runs it.
time_check() {
    time_rustc "$1" "${cmd[$1]}"
}

# The front end up to the end of name resolution.
time_front_end() {
    time_rustc "$1" "${front_cmd[$1]}"
}

# Microseconds rustc reports for its `expand_crate` pass on crate $1 (empty if it cannot
# tell: `-Z` flags are unstable).
time_expand_pass() {
    (
        cd "$base/$1" &&
            RUSTC_BOOTSTRAP=1 eval "${front_cmd[$1]} -Z time-passes" 2>&1 >/dev/null |
            awk '$NF == "expand_crate" { sub(";", "", $2); printf "%d\n", $2 * 1e6; exit }'
    ) || true
}

# Instructions rustc executes, proc macros included, for crate $1's front-end command line,
# counted by callgrind. Cargo's command line names the rustup proxy or the real rustc; the
# proxy would add its own instructions (and a child process), so callgrind runs the real
# binary of the same toolchain, with the same environment and arguments.
count_front_end() {
    local line=${front_cmd[$1]} pre prog envs real count
    local log="$base/scratch/$1.callgrind.log" out="$base/scratch/$1.callgrind.out"
    pre=${line%% --crate-name compile_cost_"$1" *}
    prog=${pre##* } envs=${pre% *}
    real="$(cd "$base/$1" && eval "$envs $prog --print sysroot")/bin/rustc"
    if [ ! -x "$real" ]; then
        echo "compile_cost: cannot find the rustc binary behind '$prog' (got: '$real')" >&2
        exit 1
    fi
    if ! (cd "$base/$1" && eval "$envs valgrind --tool=callgrind --trace-children=no" \
        "--log-file=$(printf %q "$log") --callgrind-out-file=$(printf %q "$out")" \
        "$(printf %q "$real") ${line#"$pre"}") >/dev/null 2>"$base/scratch/$1.log"; then
        echo "compile_cost: rustc under callgrind failed on the $1 crate:" >&2
        cat "$base/scratch/$1.log" "$log" >&2
        exit 1
    fi
    count=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
    if [ -z "$count" ]; then
        echo "compile_cost: no instruction count in $log" >&2
        exit 1
    fi
    echo "$count"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

crates=(plain identity annotated instrumented)
# The crates whose wall time is measured, and those whose instructions are counted.
timed=(plain identity annotated)
counted=(plain identity annotated instrumented)
gen_source
gen_identity_macro
for c in "${crates[@]}"; do gen_crate "$c"; done
# Warm-up: builds limit-runtime, limit-macro, identity-attr, tokio and tracing once (shared
# target dir), and takes each crate's rustc command. The crates `deny(warnings)`, so this
# also proves that they compile cleanly.
declare -A cmd front_cmd
for c in "${crates[@]}"; do
    # Assigned apart from the declaration so that a failure stops the script.
    line=$(rustc_command "$c")
    cmd[$c]=$line
    # Stable rustc stops right after writing dep-info when that is all it is asked for.
    # (Replaced, not appended: rustc takes the union of its `--emit` flags.)
    front_cmd[$c]=${line/ --emit=dep-info,metadata / --emit=dep-info }
done
echo "compile_cost: generated, warmed up and command lines taken in ${SECONDS} s" >&2
warm=$SECONDS

# Every row is per fn: (crate - plain) / $fns, from microseconds to milliseconds.
declare -A check front pass
check_plain=() check_diff=() front_id=() front_ann=() pass_id=() pass_ann=()
for ((r = 0; r < rounds; r++)); do
    # Rotate which crate goes first.
    order=("${timed[@]:r%3}" "${timed[@]:0:r%3}")
    for c in "${order[@]}"; do
        if [ "$c" != identity ]; then check[$c]=$(time_check "$c"); fi
        # The front end is short; the fastest of five runs is the least disturbed one.
        runs=()
        for ((i = 0; i < 5; i++)); do
            # (Assigned apart, so that a failure stops the script.)
            t=$(time_front_end "$c")
            runs+=("$t")
        done
        front[$c]=$(printf '%s\n' "${runs[@]}" | sort -n | head -1)
        pass[$c]=$(time_expand_pass "$c")
    done
    check_plain+=("${check[plain]}") check_diff+=($((check[annotated] - check[plain])))
    front_id+=($((front[identity] - front[plain])))
    front_ann+=($((front[annotated] - front[plain])))
    if [ -n "${pass[plain]}" ] && [ -n "${pass[identity]}" ] && [ -n "${pass[annotated]}" ]; then
        pass_id+=($((pass[identity] - pass[plain])))
        pass_ann+=($((pass[annotated] - pass[plain])))
    fi
    echo "compile cost round $r, ms: check plain $((check[plain] / 1000)), annotated" \
        "$((check[annotated] / 1000)); front end plain $((front[plain] / 1000)), identity" \
        "$((front[identity] / 1000)), annotated $((front[annotated] / 1000)); expand_crate" \
        "pass plain ${pass[plain]:+$((pass[plain] / 1000))}, identity" \
        "${pass[identity]:+$((pass[identity] / 1000))}, annotated" \
        "${pass[annotated]:+$((pass[annotated] / 1000))}" >&2
done

# Instructions: one callgrind run per crate, after the wall-time rounds so as not to slow
# them down (a count does not depend on what else runs).
declare -A instr
if command -v valgrind >/dev/null; then
    for c in "${counted[@]}"; do
        start=$SECONDS
        # (Assigned apart, so that a failure stops the script.)
        n=$(count_front_end "$c")
        instr[$c]=$n
        echo "compile_cost: $c front end under callgrind: $n instructions, $((SECONDS - start)) s" >&2
    done
else
    echo "compile_cost: valgrind not found; no instruction counts" >&2
fi

per_fn() {
    awk -v us="$1" -v n="$fns" 'BEGIN { printf "%.3f", us / n / 1000 }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# Millions of instructions per fn, (crate $1 - plain) / $fns.
instr_per_fn() {
    awk -v a="${instr[$1]}" -v p="${instr[plain]}" -v n="$fns" \
        'BEGIN { printf "%.3f", (a - p) / n / 1e6 }'
}
if [ -n "${instr[plain]:-}" ]; then
    ours=$(instr_per_fn annotated)
    theirs=$(instr_per_fn instrumented)
    # From the exact counts, not the rounded figures.
    vs=$(ratio $((instr[annotated] - instr[plain])) $((instr[instrumented] - instr[plain])))
    echo "RESULT|compile: rustc front-end instructions per annotated fn, millions: callgrind, rustc --emit=dep-info (proc macro included), (crate - plain) / $fns; baseline = tracing's #[instrument(skip_all)]|$theirs|$ours|$vs|<= 0.4"
    echo "compile_cost: front-end instructions per fn over plain, M: identity $(instr_per_fn identity)" \
        "(the floor for any attribute macro), annotated $ours, instrumented $theirs;" \
        "annotated / instrumented $vs (target <= 0.4)" >&2
else
    echo "RESULT|compile: rustc front-end instructions per annotated fn (valgrind not found, not measured)|-|-|-|<= 0.4"
fi
ann=$(per_fn "$(median "${front_ann[@]}")")
id=$(per_fn "$(median "${front_id[@]}")")
echo "RESULT|compile: macro expansion per annotated fn, ms: rustc --emit=dep-info (expansion and name resolution, no type check), (annotated - plain) / $fns; baseline = the 0.1 ms budget|0.100|$ann|$(ratio "$ann" 0.1)|<= 1.0"
plain_fn=$(per_fn "$(median "${check_plain[@]}")")
extra=$(per_fn "$(median "${check_diff[@]}")")
echo "RESULT|compile: upper bound, whole cargo check rustc run, non-incremental, ms per fn: plain crate / $fns vs (annotated - plain) / $fns (adds type-checking the expansion)|$plain_fn|$extra|$(ratio "$extra" "$plain_fn")|(reference)"
# The identity attribute's cost is within this measure's noise on a busy machine, so it is
# a detail here rather than a row.
echo "compile_cost: front end per fn, ms: identity attribute $id (the floor for any" \
    "attribute macro), annotated $ann" >&2
if ((${#pass_ann[@]} == rounds)); then
    echo "compile_cost: cross-check, rustc's expand_crate pass (-Z time-passes) per fn, ms:" \
        "annotated $(per_fn "$(median "${pass_ann[@]}")"), identity $(per_fn "$(median "${pass_id[@]}")")" >&2
else
    echo "compile_cost: rustc -Z time-passes gave no expand_crate time (unstable flag); no cross-check" >&2
fi
echo "compile_cost: measured in $((SECONDS - warm)) s, ${SECONDS} s in all" >&2
