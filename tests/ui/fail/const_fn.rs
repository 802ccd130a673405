use limit_runtime::concurrency_limit;

#[concurrency_limit(5)]
const fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _: u32 = job(1);
}
