/// Sums a pair.
#[must_use]
pub(crate) fn sum(
    __arg0: (u32, u32),
    __arg1: Guard,
    _permit: Token,
) -> impl ::core::future::Future<Output = u32> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    "pairs",
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 2)
    };
    async move {
        let __permit = __call.admit().await;
        let __arg0 = __arg0;
        let (a, b) = __arg0;
        let __arg1 = __arg1;
        let _permit = _permit;
        #[allow(clippy::diverging_sub_expression)]
        let __ret: u32 = { a + b };
        #[allow(unreachable_code)] __ret
    }
}
