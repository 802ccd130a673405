fn fetch(url: String) -> impl ::core::future::Future<Output = Result<Page, Error>> {
    static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
        ::core::concat!(::core::module_path!(), "::fetch"),
    );
    let __call = __LIMITER.call(|| 5);
    async move {
        let __permit = __call.admit().await;
        let url = url;
        { client().get(&url).await }
    }
}
