fn name(&self, fallback: bool) -> impl ::core::future::Future<Output = &str> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::name"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 3)
    };
    async move {
        let __permit = __call.admit().await;
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
    }
}
fn label(id: u32) -> impl ::core::future::Future<Output = Box<impl Display>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::label"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 3)
    };
    async move {
        let __permit = __call.admit().await;
        let id = id;
        #[allow(clippy::diverging_sub_expression)]
        let __ret: Box<_> = { Box::new(id) };
        #[allow(unreachable_code)] __ret
    }
}
fn edit(
    __arg0: String,
    #[cfg(feature = "x")]
    __arg1: (u8, u8),
) -> impl ::core::future::Future<Output = ()> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::edit"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call(__Limiter, || 3)
    };
    async move {
        let __permit = __call.admit().await;
        let mut __arg0 = __arg0;
        let ref mut text = __arg0;
        #[cfg(feature = "x")]
        let __arg1 = __arg1;
        #[cfg(feature = "x")]
        let (a, _) = __arg1;
        {
            text.push('!');
        }
    }
}
