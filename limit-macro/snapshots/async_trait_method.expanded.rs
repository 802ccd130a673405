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
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_method(
                    "call",
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 4,
            ::core::option::Option::Some(|| ::core::any::type_name::<Self>()),
        )
    };
    Box::pin(
        ::limit_runtime::Limited::new(
            ::limit_runtime::__private::Machine::new(
                __call,
                ::limit_runtime::__private::Call::wait,
                ::limit_runtime::__private::AtFront::wait,
                move |__permit| async move {
                    let __permit = __permit;
                    {
                        let __self = self;
                        let request = request;
                        let __ret: Response = { __self.handle(request).await };
                        #[allow(unreachable_code)] __ret
                    }
                },
            ),
        ),
    )
}
