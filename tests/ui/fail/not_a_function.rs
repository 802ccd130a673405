use limit_runtime::concurrency_limit;

#[concurrency_limit(5)]
struct Job {
    id: u32,
}

fn main() {
    let job = Job { id: 1 };
    let _ = job.id;
}
