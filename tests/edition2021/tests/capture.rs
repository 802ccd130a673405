//! The edition-2021 functions of this crate: their futures hold borrows of their arguments
//! (created first, awaited later), return the right values, and are limited.
//!
//! Each function and its gauge belong to one test, since tests run in parallel and a limit
//! is shared by every caller in the process.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use limit_edition2021::{
    append, describe, len, longer, position, Fields, Gauge, Lookup, Table, APPEND, COUNT_BETWEEN,
    DESCRIBE, LEN, LONGER, LOOKUP, NEXT_FIELD, PICK, POSITION,
};

/// Polls every future together in this task until all are done; a hang fails the test.
async fn together<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    tokio::time::timeout(Duration::from_secs(30), join_all(futures))
        .await
        .expect("the calls did not finish: the limit deadlocked")
}

#[track_caller]
fn assert_limited(gauge: &Gauge, limit: usize) {
    assert_eq!(gauge.current(), 0, "a body is still counted as running");
    assert_eq!(
        gauge.peak(),
        limit,
        "the peak of bodies running at once must be the limit"
    );
}

fn table() -> Table {
    Table::new(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)])
}

#[tokio::test]
async fn future_borrowing_an_elided_str_is_created_first_and_awaited_later() {
    let words: Vec<String> = (0..8).map(|n| "w".repeat(n)).collect();
    let pending: Vec<_> = words.iter().map(|word| len(word)).collect();
    // `words` is still borrowed by every pending future here.
    assert_eq!(words.len(), 8);
    assert_eq!(together(pending).await, (0..8).collect::<Vec<_>>());
    assert_limited(&LEN, 2);
}

#[tokio::test]
async fn method_with_self_and_str_returns_a_borrow_of_self_only() {
    let table = table();
    let picked = {
        let keys: Vec<String> = ["a", "x", "c", "b", "d", "y"].map(String::from).into();
        let pending: Vec<_> = keys.iter().map(|key| table.pick(key)).collect();
        together(pending).await
        // `keys` is gone here; the results borrow from `table` only.
    };
    assert_eq!(
        picked,
        vec![Some(&1), None, Some(&3), Some(&2), Some(&4), None]
    );
    assert_limited(&PICK, 2);
}

#[tokio::test]
async fn method_with_self_and_two_strs_captures_all_three_borrows() {
    let table = table();
    let bounds: Vec<(String, String)> = (0..9)
        .map(|n| {
            let from = if n % 2 == 0 { "a" } else { "b" };
            (from.to_owned(), "d".to_owned())
        })
        .collect();
    let pending: Vec<_> = bounds
        .iter()
        .map(|(from, to)| table.count_between(from, to))
        .collect();
    let counts = together(pending).await;
    assert_eq!(counts[0], 3);
    assert_eq!(counts[1], 2);
    assert_limited(&COUNT_BETWEEN, 3);
}

#[tokio::test]
async fn generic_function_with_elided_lifetimes_is_limited_across_instantiations() {
    let numbers = vec![10, 20, 30];
    let names = vec!["x".to_owned(), "y".to_owned()];
    let wanted_numbers = [20, 40, 10];
    let wanted_names = ["y".to_owned(), "z".to_owned(), "x".to_owned()];
    let by_number: Vec<_> = wanted_numbers
        .iter()
        .map(|wanted| position(&numbers, wanted))
        .collect();
    let by_name: Vec<_> = wanted_names
        .iter()
        .map(|wanted| position(&names, wanted))
        .collect();
    let (by_number, by_name) = futures::join!(together(by_number), together(by_name));
    assert_eq!(by_number, vec![Some(1), None, Some(0)]);
    assert_eq!(by_name, vec![Some(1), None, Some(0)]);
    assert_limited(&POSITION, 2);
}

#[tokio::test]
async fn output_tied_to_a_named_lifetime_outlives_the_elided_argument() {
    let long = String::from("a long string");
    let results = {
        let short: Vec<String> = (0..6).map(|n| "s".repeat(n * 3)).collect();
        let pending: Vec<_> = short.iter().map(|s| longer(&long, s)).collect();
        together(pending).await
    };
    assert_eq!(results[0], "a long string");
    assert_eq!(results[5], "");
    assert_limited(&LONGER, 2);
}

#[tokio::test]
async fn method_of_an_impl_with_a_lifetime_captures_mut_self_and_the_separator() {
    let lines: Vec<String> = (0..6).map(|n| format!("{n},b,c")).collect();
    let mut cursors: Vec<Fields<'_>> = lines.iter().map(|line| Fields::new(line)).collect();
    let separator = String::from(",");
    let firsts = {
        let pending: Vec<_> = cursors
            .iter_mut()
            .map(|cursor| cursor.next_field(&separator))
            .collect();
        together(pending).await
    };
    assert_eq!(firsts[3], Some("3"));
    let cursor = &mut cursors[0];
    assert_eq!(cursor.next_field(",").await, Some("b"));
    assert_eq!(cursor.next_field(",").await, Some("c"));
    assert_eq!(cursor.next_field(",").await, None);
    assert_limited(&NEXT_FIELD, 2);
}

#[tokio::test]
async fn impl_trait_argument_next_to_an_elided_borrow_is_limited() {
    let prefix = String::from("n=");
    let pending: Vec<_> = (0..6).map(|n| describe(n, &prefix)).collect();
    let described = together(pending).await;
    assert_eq!(described[4], "n=4");
    assert_limited(&DESCRIBE, 2);
}

#[tokio::test]
async fn mut_borrowed_arguments_are_held_by_the_future_and_written() {
    let mut outs: Vec<Vec<String>> = vec![Vec::new(); 6];
    let items: Vec<String> = (0..6).map(|n| n.to_string()).collect();
    let pending: Vec<_> = outs
        .iter_mut()
        .zip(&items)
        .map(|(out, item)| append(out, item))
        .collect();
    together(pending).await;
    assert_eq!(outs[5], vec!["5".to_owned()]);
    assert_limited(&APPEND, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trait_method_future_is_send_and_limited() {
    let table = Arc::new(table());
    let handles: Vec<_> = ["a", "b", "z", "d"]
        .into_iter()
        .map(|key| {
            let table = Arc::clone(&table);
            tokio::spawn(async move { table.lookup(key).await })
        })
        .collect();
    let spawned: Vec<Option<u32>> = together(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(spawned, vec![Some(1), Some(2), None, Some(4)]);
    assert!(LOOKUP.peak() <= 2, "the limit of `lookup` was exceeded");

    let keys: Vec<String> = (0..6).map(|n| ["a", "c"][n % 2].to_owned()).collect();
    let pending: Vec<_> = keys.iter().map(|key| table.lookup(key)).collect();
    let local = together(pending).await;
    assert_eq!(local[1], Some(3));
    assert_limited(&LOOKUP, 2);
}
