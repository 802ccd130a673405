fn fetch(url: String) -> impl ::core::future::Future<Output = Result<Page, Error>> {
    let __call = {
        static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
            ::core::concat!(::core::module_path!(), "::fetch"),
        );
        __LIMITER.call(|| 5)
    };
    async move {
        let __permit = __call.admit().await;
        let url = url;
        #[allow(clippy::diverging_sub_expression)]
        let __ret: Result<Page, Error> = { client().get(&url).await };
        #[allow(unreachable_code)] __ret
    }
}
