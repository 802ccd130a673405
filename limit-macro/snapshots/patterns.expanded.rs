/// Sums a pair.
#[must_use]
#[allow(refining_impl_trait, clippy::type_complexity)]
pub(crate) fn sum(
    __arg0: (u32, u32),
    __arg1: Guard,
    _permit: Token,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = u32>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    "pairs",
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 2,
            ::core::option::Option::None,
        )
    };
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let __permit = __permit;
                let __arg0 = __arg0;
                let (a, b) = __arg0;
                let __arg1 = __arg1;
                let _permit = _permit;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: u32 = { a + b };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
