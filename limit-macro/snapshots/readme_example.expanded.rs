fn fetch(url: String) -> impl ::core::future::Future<Output = Result<Page, Error>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::fetch"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 5)
    };
    async move {
        let __permit = __call.admit().await;
        let url = url;
        #[allow(clippy::diverging_sub_expression)]
        let __ret: Result<Page, Error> = { client().get(&url).await };
        #[allow(unreachable_code)] __ret
    }
}
