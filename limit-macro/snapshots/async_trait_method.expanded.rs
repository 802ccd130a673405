fn call<'life0, 'async_trait>(
    &'life0 self,
    request: Request,
) -> ::core::pin::Pin<
    Box<
        dyn ::core::future::Future<
            Output = Response,
        > + ::core::marker::Send + 'async_trait,
    >,
>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::call"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 4)
    };
    Box::pin(async move {
        let __permit = __call.admit().await;
        {
            let __self = self;
            let request = request;
            let __ret: Response = { __self.handle(request).await };
            #[allow(unreachable_code)] __ret
        }
    })
}
