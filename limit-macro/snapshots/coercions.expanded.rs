#[allow(refining_impl_trait, clippy::type_complexity)]
fn name(
    &self,
    fallback: bool,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = &str>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_method(
                    "name",
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 3,
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
                let fallback = fallback;
                if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<
                    &str,
                > {
                    #[allow(unreachable_code)] return __ret;
                }
                #[allow(clippy::diverging_sub_expression)]
                let __ret: &str = {
                    if fallback {
                        return "unknown";
                    }
                    &self.name
                };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn label(
    id: u32,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Box<impl Display>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::label"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 3,
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
                let id = id;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Box<_> = { Box::new(id) };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn edit(
    __arg0: String,
    #[cfg(feature = "x")]
    __arg1: (u8, u8),
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = ()>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::edit"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(
            __Limiter,
            || 3,
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
                let mut __arg0 = __arg0;
                let ref mut text = __arg0;
                #[cfg(feature = "x")]
                let __arg1 = __arg1;
                #[cfg(feature = "x")]
                let (a, _) = __arg1;
                {
                    text.push('!');
                }
            },
        ),
    )
}
