#[allow(refining_impl_trait, clippy::type_complexity)]
pub fn lookup<'a>(
    &'a self,
    key: &str,
    retries: u32,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Option<&'a Entry>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_method(
                    "lookup",
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || MAX_LOOKUPS,
            ::core::option::Option::Some(|| ::core::any::type_name::<Self>()),
        )
    };
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let __permit = __permit;
                let _ = &self;
                let key = key;
                let mut retries = retries;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Option<&'a Entry> = {
                    retries += 1;
                    self.entries.get(key)
                };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
