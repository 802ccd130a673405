#[allow(refining_impl_trait, clippy::type_complexity)]
fn fetch(
    url: String,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Result<Page, Error>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::fetch"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 5,
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
                let url = url;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Result<Page, Error> = { client().get(&url).await };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
