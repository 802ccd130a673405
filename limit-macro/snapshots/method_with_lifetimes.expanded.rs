pub fn lookup<'a>(
    &'a self,
    key: &str,
    retries: u32,
) -> impl ::core::future::Future<Output = Option<&'a Entry>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::lookup"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || MAX_LOOKUPS)
    };
    async move {
        let __permit = __call.admit().await;
        let _ = &self;
        let key = key;
        let mut retries = retries;
        #[allow(clippy::diverging_sub_expression)]
        let __ret: Option<&'a Entry> = {
            retries += 1;
            self.entries.get(key)
        };
        #[allow(unreachable_code)] __ret
    }
}
