#[allow(refining_impl_trait, clippy::type_complexity)]
fn load_user(
    id: u64,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = User>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                &DATABASE
            }
        }
        ::limit_runtime::__private::Limiter::call_shared(__Limiter).sampled()
    };
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            ::limit_runtime::__private::Call::wait,
            ::limit_runtime::__private::AtFront::wait,
            move |__permit| async move {
                let mut __permit = __permit;
                __permit.start();
                let id = id;
                let __ret = {
                    #[allow(clippy::diverging_sub_expression)]
                    let __ret: User = { db().load(id).await };
                    #[allow(unreachable_code)] __ret
                };
                #[allow(unreachable_code)] __permit.complete(false);
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn call_api(
    req: Request,
) -> ::limit_runtime::Limited<
    impl ::limit_runtime::__private::Spec<Output = Result<Response, ApiError>>,
> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    "github-api",
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
    let __policy = ::limit_runtime::__private::Policy::new()
        .max_wait(Duration::from_millis(200))
        .queue(100);
    ::limit_runtime::Limited::new(
        ::limit_runtime::__private::Machine::new(
            __call,
            move |__call| __call.wait_with(__policy),
            ::limit_runtime::__private::never_front,
            move |__permit| async move {
                let __permit = match __permit {
                    ::core::result::Result::Ok(__permit) => __permit,
                    ::core::result::Result::Err(__refused) => {
                        let __error = __refused.error();
                        return ::limit_runtime::__private::refusal(__error);
                    }
                };
                let req = req;
                #[allow(clippy::diverging_sub_expression)]
                let __ret: Result<Response, ApiError> = { client().send(req).await };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
#[allow(refining_impl_trait, clippy::type_complexity)]
fn crawl(
    url: String,
) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = Page>> {
    let __call = {
        struct __Limiter;
        impl ::limit_runtime::__private::Handle for __Limiter {
            #[inline]
            fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
                    ::core::concat!(::core::module_path!(), "::crawl"),
                );
                &__LIMITER
            }
        }
        ::limit_runtime::__private::Limiter::call_keyed(
            __Limiter,
            || 2,
            ::core::option::Option::None,
            host_of(&url),
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
                let __ret: Page = { get(&url).await };
                #[allow(unreachable_code)] __ret
            },
        ),
    )
}
