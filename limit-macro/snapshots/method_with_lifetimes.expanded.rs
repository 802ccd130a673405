pub fn lookup<'a>(
    &'a self,
    key: &str,
    retries: u32,
) -> impl ::core::future::Future<Output = Option<&'a Entry>> {
    static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
        ::core::concat!(::core::module_path!(), "::lookup"),
    );
    let __call = __LIMITER.call(|| MAX_LOOKUPS);
    async move {
        let __permit = __call.admit().await;
        let _ = &self;
        let key = key;
        let mut retries = retries;
        {
            retries += 1;
            self.entries.get(key)
        }
    }
}
