// Methods, written here as free functions with their receivers (the attribute cannot tell).
#[concurrency_limit(limiter = &self.connections)]
async fn serve(&self, socket: TcpStream) -> io::Result<()> {
    self.handle(socket).await
}

#[concurrency_limit(limiter = self.limits.clone())]
async fn run(&mut self) {
    self.step().await;
}

#[concurrency_limit(limiter = pool)]
async fn query(pool: &Limiter, sql: &str) -> usize {
    sql.len()
}
